package group

import (
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"unsafe"

	"convpipe/pipeline"
)

// Stats counts what a Grouper did, over every object since it was
// made.
type Stats struct {
	// Objects counts the objects flushed that had rows.
	Objects int64
	// Rows counts the rows added.
	Rows int64
	// Orders counts the orders emitted.
	Orders int64
	// PeakBuffered is the largest estimate of bytes held in memory at
	// once: buffered rows, their keys, and the set of keys auto mode
	// tracks. Write buffers of temporary files (32 KiB each, at most 128
	// files open) come on top.
	PeakBuffered int64
	// Scattered counts the objects in which auto mode found the lines of
	// an order apart.
	Scattered int64
	// RunSpills counts the objects that auto mode spilled to one
	// sequential file because their orders were contiguous.
	RunSpills int64
	// PartitionSpills counts the objects spilled to hash partitions (an
	// object may count as a run spill first).
	PartitionSpills int64
	// SpilledRows and SpilledBytes count the rows and bytes written to
	// temporary files, every pass included.
	SpilledRows  int64
	SpilledBytes int64
	// Partitions counts the partition files created, at every level.
	Partitions int64
	// Repartitions counts the partitions split again because they
	// exceeded the budget.
	Repartitions int64
	// OverBudget counts the orders (sorted mode) and partitions held in
	// memory beyond the budget because a single order was larger than it.
	OverBudget int64
}

// Grouper groups the rows of one object at a time into orders: the lines
// that share a key. Rows are pushed with Add; orders come out through the
// emit function given to New, each with its lines in the order
// they were added. Flush ends an object.
//
// What each mode guarantees:
//   - sorted: an order is emitted when a row with another key arrives, or
//     at Flush; memory holds one order. Lines of one key that are not
//     next to each other are emitted as separate orders (callers detect a
//     key seen twice).
//   - scattered: every order is emitted once, with all of its lines, at
//     Flush. Memory holds at most the budget; beyond it rows are spilled
//     to hash partitions, which are read back one at a time (split again
//     with another hash seed while larger than the budget).
//   - auto: like scattered, every order is emitted once, with all of its
//     lines, at Flush, never earlier. While the orders are contiguous,
//     rows beyond the budget go to one sequential file, streamed back at
//     Flush one order at a time; the keys seen are kept as a set of 64-bit
//     hashes (counted in the budget). When a key comes back after another
//     one, or the set outgrows the budget, the object is handled as
//     scattered from then on; a hash collision only costs that detour.
//
// Orders held in memory are emitted in the order their first line was
// added. After a spill to partitions they are emitted partition by
// partition, each partition in first-line order. Rows read back from
// temporary files are equal to the rows added, with the Object and Header
// of the object's first row.
//
// Memory is estimated, not measured: per row its values' bytes, 16 bytes
// per value, and the Row itself; per order its key and some overhead. A
// single order larger than the budget is still held whole. The process's
// resident memory can reach about twice the budget while it is full, since
// Go's collector lets the heap grow to twice its live size (GOGC=100).
// Spilling adds the files' buffers: 32 KiB per partition, at most 128
// partitions.
//
// The key function is called once per row. A row whose key is empty
// belongs to the order of the row above it when Config.FillDown is set
// (and that row is of the same object); otherwise it is an order of its
// own. The emit function owns the
// slice it is given; an error from it stops the object and is returned,
// unwrapped, from Add or Flush. After any error, Add returns that error
// until Flush or Discard. A Grouper is not safe for concurrent use.
type Grouper struct {
	cfg    Config
	budget int64
	key    func(pipeline.Row) string
	emit   func(lines []pipeline.Row) error
	cfgErr error
	seed   maphash.Seed
	stats  Stats

	// The current object.
	err       error // sticky until Flush or Discard
	started   bool
	obj       *pipeline.Object
	hdr       *pipeline.Header
	state     groupState
	scattered bool
	dir       string // temporary directory, created at the first spill

	// Rows in memory (memory state, and partitions read back).
	index    map[string]int
	groups   []memGroup
	cur      int
	memBytes int64

	// The current order, in sorted mode and while streaming the run file
	// back; reused from order to order.
	sorted []pipeline.Row

	// fillKey is the last non-empty key of the object (FillDown);
	// emptyRows numbers the rows given a key of their own.
	fillKey   string
	emptyRows int64

	// Run state: the sequential file and the hashes of the keys in it.
	curKey string
	run    *spillFile
	seen   hashSet

	// Partitioned state.
	parts []*spillFile

	files []*spillFile // every temporary file of the object, closed by reset
}

type groupState uint8

const (
	stateMemory      groupState = iota // rows buffered in memory
	stateSorted                        // sorted mode: one order in memory
	stateRun                           // auto, contiguous: rows appended to one file
	statePartitioned                   // rows appended to hash partitions
)

type memGroup struct {
	key  string
	rows []pipeline.Row
}

// Estimates of memory use.
const (
	rowStructBytes = int64(unsafe.Sizeof(pipeline.Row{}))
	rowAllocBytes  = 32  // allocation overhead of a row's slices
	groupBytes     = 128 // per order: map entry, key header, group slot
)

// Limits of spilling.
const (
	minFanout   = 16
	maxFanout   = 128       // partition files open at once
	maxDepth    = 8         // partition levels
	writeBuffer = 32 << 10  // per partition file written
	runBuffer   = 256 << 10 // for the run file, and for reading

)

// New returns a Grouper that calls key to find the order of each
// row and emit with the lines of each order. An invalid cfg, or a nil
// function, makes Add and Flush return the configuration error. New does
// no I/O: cfg.Validate, called once per run, checks the temporary folder.
func New(cfg Config, key func(pipeline.Row) string, emit func(lines []pipeline.Row) error) *Grouper {
	g := &Grouper{key: key, emit: emit, seed: maphash.MakeSeed(), cur: -1}
	if key == nil || emit == nil {
		g.cfgErr = errors.New("group: key and emit functions are required")
	} else {
		g.cfgErr = cfg.checkFields()
	}
	cfg = cfg.WithDefaults()
	g.cfg, g.budget = cfg, int64(cfg.MemoryBudget)
	g.state = g.initialState()
	return g
}

func (g *Grouper) initialState() groupState {
	if g.cfg.Mode == Sorted {
		return stateSorted
	}
	return stateMemory
}

// Stats returns the counts so far.
func (g *Grouper) Stats() Stats { return g.stats }

// Add adds the next row of the current object. It may emit orders (sorted
// mode) and spill to temporary files. All rows between two Flushes must
// come from the same object.
func (g *Grouper) Add(r pipeline.Row) error {
	if g.cfgErr != nil {
		return g.cfgErr
	}
	if g.err != nil {
		return g.err
	}
	if !g.started || r.Object != g.obj || r.Header != g.hdr {
		if err := g.adopt(r); err != nil {
			g.err = err
			return err
		}
	}
	k := g.key(r)
	if k == "" {
		k = g.emptyKey()
	} else if g.cfg.FillDown {
		g.fillKey = k
	}
	g.stats.Rows++
	var err error
	switch g.state {
	case stateSorted:
		err = g.addSorted(k, r)
	case stateMemory:
		err = g.addMemory(k, r)
	case stateRun:
		err = g.addRun(k, r)
	case statePartitioned:
		err = g.addPartitioned(k, r)
	}
	if err != nil {
		g.err = err
	}
	return err
}

// emptyKeyPrefix starts the keys given to rows whose key is empty; an
// order key never starts with a NUL byte in practice.
const emptyKeyPrefix = "\x00empty-key\x00"

// emptyKey returns the key of a row whose key is empty: the key of the
// row above with FillDown, else (and for the object's first rows) a key
// of its own, so that the row is an order alone.
func (g *Grouper) emptyKey() string {
	if g.cfg.FillDown && g.fillKey != "" {
		return g.fillKey
	}
	g.emptyRows++
	return emptyKeyPrefix + strconv.FormatInt(g.emptyRows, 10)
}

// adopt takes the object and header of the first row, and checks that
// later rows come from the same object.
func (g *Grouper) adopt(r pipeline.Row) error {
	if !g.started {
		g.started, g.obj, g.hdr = true, r.Object, r.Header
		return nil
	}
	if objectKey(r.Object) != objectKey(g.obj) {
		return fmt.Errorf("group: row %s comes from another object than %q: flush between objects", r.Ref(), objectKey(g.obj))
	}
	if r.Header != g.hdr && !sameColumns(r.Header, g.hdr) {
		return fmt.Errorf("group: row %s has other columns than the earlier rows of its object", r.Ref())
	}
	return nil
}

func objectKey(o *pipeline.Object) string {
	if o == nil {
		return ""
	}
	return o.Key
}

func sameColumns(a, b *pipeline.Header) bool {
	if a == nil || b == nil {
		return a == b
	}
	an, bn := a.Names(), b.Names()
	if len(an) != len(bn) {
		return false
	}
	for i := range an {
		if an[i] != bn[i] {
			return false
		}
	}
	return true
}

func (g *Grouper) addSorted(k string, r pipeline.Row) error {
	if len(g.sorted) > 0 && k != g.curKey {
		if err := g.emitBuffer(); err != nil {
			return err
		}
	}
	if len(g.sorted) == 0 {
		g.curKey, g.memBytes = k, groupBytes+int64(len(k))
	}
	before := g.memBytes
	g.memBytes += appendRow(&g.sorted, r)
	g.notePeak(g.memBytes)
	if g.memBytes > g.budget && before <= g.budget {
		g.stats.OverBudget++
	}
	return nil
}

func (g *Grouper) addMemory(k string, r pipeline.Row) error {
	g.group(k, r)
	if g.memBytes > g.budget {
		return g.spill()
	}
	return nil
}

// group adds r to the order k held in memory.
func (g *Grouper) group(k string, r pipeline.Row) {
	i := g.cur
	if i < 0 || g.groups[i].key != k {
		j, ok := g.index[k]
		if ok {
			// A key seen before that is not the current one: its lines
			// are apart.
			g.scattered = true
		} else {
			if g.index == nil {
				g.index = make(map[string]int)
			}
			j = len(g.groups)
			g.groups = append(g.groups, memGroup{key: k})
			g.index[k] = j
			g.memBytes += groupBytes + int64(len(k))
		}
		i, g.cur = j, j
	}
	g.memBytes += appendRow(&g.groups[i].rows, r)
	g.notePeak(g.memBytes)
}

// appendRow appends r to rows and returns the estimated bytes it added.
func appendRow(rows *[]pipeline.Row, r pipeline.Row) int64 {
	c := cap(*rows)
	*rows = append(*rows, r)
	n := rowDataBytes(&r)
	if d := cap(*rows) - c; d > 0 {
		n += int64(d) * rowStructBytes
	}
	return n
}

// rowDataBytes estimates the memory of a row's values and nulls.
func rowDataBytes(r *pipeline.Row) int64 {
	n := int64(rowAllocBytes + 16*len(r.Values) + len(r.Nulls))
	for _, v := range r.Values {
		n += int64(len(v))
	}
	return n
}

func (g *Grouper) notePeak(n int64) {
	if n > g.stats.PeakBuffered {
		g.stats.PeakBuffered = n
	}
}

func (g *Grouper) clearMemory() {
	g.index, g.groups, g.cur, g.memBytes = nil, nil, -1, 0
}
