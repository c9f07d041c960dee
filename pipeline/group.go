package pipeline

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unsafe"
)

// GroupMode says how the lines of an order are laid out in an object.
type GroupMode string

// The grouping modes.
const (
	// GroupAuto, the default, accepts any layout and never hands out an
	// order before the whole object is read: every order has all of its
	// lines. Contiguous input beyond the memory budget spills to one
	// sequential temporary file that is streamed back; scattered input
	// spills to hash partitions.
	GroupAuto GroupMode = "auto"
	// GroupSorted trusts the object to keep the lines of an order next to
	// each other and streams: an order is handed out as soon as the key
	// changes, and memory holds one order. A key that shows up again later
	// is handed out again, as a separate order.
	GroupSorted GroupMode = "sorted"
	// GroupScattered expects the lines of an order anywhere in the object:
	// rows are held in memory up to the budget, then spilled to hash
	// partitions.
	GroupScattered GroupMode = "scattered"
)

// DefaultMemoryBudget is the memory budget of grouping when none is
// configured.
const DefaultMemoryBudget ByteSize = 64 << 20

// MinMemoryBudget is the smallest memory budget accepted. A smaller one
// is most likely a size written without its unit.
const MinMemoryBudget ByteSize = 1 << 10

// GroupConfig configures how the rows of an object are grouped into
// orders.
type GroupConfig struct {
	// Mode is auto (the default), sorted or scattered; see GroupMode.
	Mode GroupMode `yaml:"mode"`
	// MemoryBudget bounds the estimated bytes of rows held in memory
	// before they are spilled to temporary files; DefaultMemoryBudget when
	// zero. In YAML a byte count or a size with a unit ("64MiB").
	MemoryBudget ByteSize `yaml:"memory_budget"`
	// TempDir is where temporary files are created; os.TempDir() when
	// empty.
	TempDir string `yaml:"temp_dir"`
}

// Validate reports the first invalid field, named as in YAML under
// "group".
func (c GroupConfig) Validate() error {
	switch c.Mode {
	case "", GroupAuto, GroupSorted, GroupScattered:
	default:
		return fmt.Errorf("group.mode: %q is not one of auto, sorted, scattered", string(c.Mode))
	}
	if c.MemoryBudget < 0 {
		return fmt.Errorf("group.memory_budget: must not be negative")
	}
	if c.MemoryBudget != 0 && c.MemoryBudget < MinMemoryBudget {
		return fmt.Errorf("group.memory_budget: %s is below the minimum of %s; give a unit, e.g. 64MiB", c.MemoryBudget, MinMemoryBudget)
	}
	if c.TempDir != "" {
		fi, err := os.Stat(c.TempDir)
		if err != nil {
			return fmt.Errorf("group.temp_dir: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("group.temp_dir: %s is not a directory", c.TempDir)
		}
	}
	return nil
}

// ByteSize is a number of bytes. As text (YAML, flags) it is a plain
// integer or a number with a unit: B; KiB, MiB, GiB, TiB (powers of 1024,
// also written Ki or K, Mi or M, Gi or G, Ti or T); KB, MB, GB, TB (powers
// of 1000). Units are case-insensitive and may follow a space: "64MiB",
// "1.5 GiB", "512k".
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   float64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"ki", 1 << 10}, {"mi", 1 << 20}, {"gi", 1 << 30}, {"ti", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// ParseByteSize parses a size such as "65536", "64MiB" or "1.5 GB".
func ParseByteSize(s string) (ByteSize, error) {
	num := strings.ToLower(strings.TrimSpace(s))
	mult := 1.0
	for _, u := range byteUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("invalid size %q: want a byte count or a number with a unit such as 64MiB", s)
	}
	v = math.Round(v * mult)
	if v < 0 {
		return 0, fmt.Errorf("invalid size %q: must not be negative", s)
	}
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return ByteSize(v), nil
}

// String returns the size with the largest binary unit that divides it
// ("64MiB"), or in bytes ("1000B").
func (b ByteSize) String() string {
	for _, u := range []struct {
		name string
		size ByteSize
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// MarshalText returns the size as String does.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText parses the size as ParseByteSize does.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// GroupStats counts what a Grouper did, over every object since it was
// made.
type GroupStats struct {
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
// emit function given to NewGrouper, each with its lines in the order
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
// The key function is called once per row. The emit function owns the
// slice it is given; an error from it stops the object and is returned,
// unwrapped, from Add or Flush. After any error, Add returns that error
// until Flush or Discard. A Grouper is not safe for concurrent use.
type Grouper struct {
	cfg    GroupConfig
	budget int64
	key    func(Row) string
	emit   func(lines []Row) error
	cfgErr error
	seed   maphash.Seed
	stats  GroupStats

	// The current object.
	err       error // sticky until Flush or Discard
	started   bool
	obj       *Object
	hdr       *Header
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
	sorted []Row

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
	rows []Row
}

// Estimates of memory use.
const (
	rowStructBytes = int64(unsafe.Sizeof(Row{}))
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

// NewGrouper returns a Grouper that calls key to find the order of each
// row and emit with the lines of each order. An invalid cfg, or a nil
// function, makes Add and Flush return the configuration error.
func NewGrouper(cfg GroupConfig, key func(Row) string, emit func(lines []Row) error) *Grouper {
	g := &Grouper{key: key, emit: emit, seed: maphash.MakeSeed(), cur: -1}
	if key == nil || emit == nil {
		g.cfgErr = errors.New("group: key and emit functions are required")
	} else {
		g.cfgErr = cfg.Validate()
	}
	if cfg.Mode == "" {
		cfg.Mode = GroupAuto
	}
	if cfg.MemoryBudget <= 0 {
		cfg.MemoryBudget = DefaultMemoryBudget
	}
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	g.cfg, g.budget = cfg, int64(cfg.MemoryBudget)
	g.state = g.initialState()
	return g
}

func (g *Grouper) initialState() groupState {
	if g.cfg.Mode == GroupSorted {
		return stateSorted
	}
	return stateMemory
}

// Stats returns the counts so far.
func (g *Grouper) Stats() GroupStats { return g.stats }

// Add adds the next row of the current object. It may emit orders (sorted
// mode) and spill to temporary files. All rows between two Flushes must
// come from the same object.
func (g *Grouper) Add(r Row) error {
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

// adopt takes the object and header of the first row, and checks that
// later rows come from the same object.
func (g *Grouper) adopt(r Row) error {
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

func objectKey(o *Object) string {
	if o == nil {
		return ""
	}
	return o.Key
}

func sameColumns(a, b *Header) bool {
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

func (g *Grouper) addSorted(k string, r Row) error {
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

func (g *Grouper) addMemory(k string, r Row) error {
	g.group(k, r)
	if g.memBytes > g.budget {
		return g.spill()
	}
	return nil
}

// group adds r to the order k held in memory.
func (g *Grouper) group(k string, r Row) {
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
func appendRow(rows *[]Row, r Row) int64 {
	c := cap(*rows)
	*rows = append(*rows, r)
	n := rowDataBytes(&r)
	if d := cap(*rows) - c; d > 0 {
		n += int64(d) * rowStructBytes
	}
	return n
}

// rowDataBytes estimates the memory of a row's values and nulls.
func rowDataBytes(r *Row) int64 {
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

// spill moves the rows held in memory to temporary files.
func (g *Grouper) spill() error {
	if g.cfg.Mode == GroupAuto && !g.scattered {
		return g.memoryToRun()
	}
	return g.memoryToPartitions()
}

func (g *Grouper) memoryToRun() error {
	run, err := g.createSpill("run", runBuffer)
	if err != nil {
		return err
	}
	g.run = run
	collision := false
	for i := range g.groups {
		gr := &g.groups[i]
		if !g.seen.insert(maphash.String(g.seed, gr.key)) {
			collision = true
		}
		for j := range gr.rows {
			if err := g.write(run, gr.key, &gr.rows[j]); err != nil {
				return err
			}
		}
		gr.rows = nil
	}
	g.curKey = g.groups[g.cur].key
	g.clearMemory()
	g.state = stateRun
	g.stats.RunSpills++
	g.notePeak(g.seen.bytes())
	if collision || g.seen.bytes() > g.budget {
		return g.runToPartitions()
	}
	return nil
}

func (g *Grouper) addRun(k string, r Row) error {
	if k != g.curKey {
		fresh := g.seen.insert(maphash.String(g.seed, k))
		g.curKey = k
		g.notePeak(g.seen.bytes())
		if !fresh {
			g.scattered = true
		}
		if !fresh || g.seen.bytes() > g.budget {
			if err := g.runToPartitions(); err != nil {
				return err
			}
			return g.addPartitioned(k, r)
		}
	}
	return g.write(g.run, k, &r)
}

func (g *Grouper) memoryToPartitions() error {
	parts, err := g.createPartitions("p", g.topFanout())
	if err != nil {
		return err
	}
	g.parts = parts
	for i := range g.groups {
		gr := &g.groups[i]
		p := g.parts[partition(g.seed, gr.key, len(g.parts))]
		for j := range gr.rows {
			if err := g.write(p, gr.key, &gr.rows[j]); err != nil {
				return err
			}
		}
		gr.rows = nil
	}
	g.clearMemory()
	g.state = statePartitioned
	g.stats.PartitionSpills++
	return nil
}

// runToPartitions moves the run file's rows to hash partitions, once the
// object turned out scattered.
func (g *Grouper) runToPartitions() error {
	run := g.run
	if err := run.finish(); err != nil {
		return err
	}
	parts, err := g.createPartitions("p", g.topFanout())
	if err != nil {
		return err
	}
	g.parts = parts
	if err := g.route(run, parts, g.seed); err != nil {
		return err
	}
	g.run = nil
	if err := run.remove(); err != nil {
		return err
	}
	g.seen = hashSet{}
	g.state = statePartitioned
	g.stats.PartitionSpills++
	return nil
}

func (g *Grouper) addPartitioned(k string, r Row) error {
	return g.write(g.parts[partition(g.seed, k, len(g.parts))], k, &r)
}

func partition(seed maphash.Seed, key string, n int) int {
	return int(maphash.String(seed, key) % uint64(n))
}

// topFanout chooses the number of partitions from the object's size: its
// rows take roughly three times their file size in memory, and each
// partition should come back at half the budget.
func (g *Grouper) topFanout() int {
	est := int64(0)
	if g.obj != nil && g.obj.Size > 0 && g.obj.Size < math.MaxInt64/8 {
		est = 3 * g.obj.Size
	}
	return fanout(est, g.budget, minFanout)
}

func fanout(bytes, budget int64, lo int) int {
	n := int64(math.Ceil(2 * float64(bytes) / float64(budget)))
	return int(max(int64(lo), min(n, maxFanout)))
}

// write appends one row to a temporary file.
func (g *Grouper) write(sf *spillFile, key string, r *Row) error {
	// Encode into the writer's buffer when the record fits.
	rec := appendRecord(sf.w.AvailableBuffer(), key, r)
	if err := sf.write(rec, key, recordMem(r, len(key))); err != nil {
		return err
	}
	g.stats.SpilledRows++
	g.stats.SpilledBytes += int64(len(rec))
	return nil
}

// route copies every record of src, which is finished, to dst by the hash
// of its key.
func (g *Grouper) route(src *spillFile, dst []*spillFile, seed maphash.Seed) error {
	rr, err := src.reader()
	if err != nil {
		return err
	}
	defer rr.close()
	for {
		body, err := rr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		h, err := parseHead(body)
		if err != nil {
			return rr.corrupt(err)
		}
		// The key is used only until the next record is read.
		key := unsafeString(body[h.dataStart : h.dataStart+h.keyLen])
		d := dst[partition(seed, key, len(dst))]
		rec := binary.AppendUvarint(d.w.AvailableBuffer(), uint64(len(body)))
		rec = append(rec, body...)
		if err := d.write(rec, key, h.mem()); err != nil {
			return err
		}
		g.stats.SpilledRows++
		g.stats.SpilledBytes += int64(len(rec))
	}
	return rr.close()
}

// unsafeString returns the bytes of b as a string without copying; b must
// not change while the string is in use.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// Flush ends the current object: it emits every order not yet emitted,
// removes the temporary files and makes the Grouper ready for the next
// object. It returns the first error of the object (from Add, emit or a
// temporary file); the object's remaining orders are then dropped.
func (g *Grouper) Flush() error {
	if g.cfgErr != nil {
		return g.cfgErr
	}
	err := g.err
	if err == nil && g.started {
		g.stats.Objects++
		if g.scattered && g.cfg.Mode == GroupAuto {
			g.stats.Scattered++
		}
		err = g.flush()
	}
	if cerr := g.reset(); err == nil {
		err = cerr
	}
	return err
}

func (g *Grouper) flush() error {
	switch g.state {
	case stateSorted:
		if len(g.sorted) > 0 {
			return g.emitBuffer()
		}
	case stateMemory:
		return g.emitMemory()
	case stateRun:
		return g.streamRun()
	case statePartitioned:
		for _, p := range g.parts {
			if err := p.finish(); err != nil {
				return err
			}
		}
		for i, p := range g.parts {
			g.parts[i] = nil
			if err := g.processPartition(p, 1); err != nil {
				return err
			}
		}
	}
	return nil
}

// emitBuffer emits a copy of the sorted buffer, of the exact size, and
// empties the buffer for reuse: one allocation per order.
func (g *Grouper) emitBuffer() error {
	lines := slices.Clone(g.sorted)
	clear(g.sorted) // drop the rows' references
	g.sorted, g.memBytes = g.sorted[:0], 0
	if cap(g.sorted) > 1024 {
		g.sorted = nil // after a huge order
	}
	return g.emitLines(lines)
}

func (g *Grouper) emitLines(lines []Row) error {
	g.stats.Orders++
	return g.emit(lines)
}

// emitMemory emits the orders held in memory in first-seen order.
func (g *Grouper) emitMemory() error {
	for i := range g.groups {
		lines := g.groups[i].rows
		g.groups[i].rows = nil
		if err := g.emitLines(lines); err != nil {
			return err
		}
	}
	g.clearMemory()
	return nil
}

// streamRun reads the run file back, emitting one order at a time.
func (g *Grouper) streamRun() error {
	run := g.run
	if err := run.finish(); err != nil {
		return err
	}
	err := g.readBack(run, func(key string, row Row) error {
		if len(g.sorted) > 0 && key != g.curKey {
			if err := g.emitBuffer(); err != nil {
				return err
			}
		}
		if len(g.sorted) == 0 {
			g.curKey = key
		}
		g.sorted = append(g.sorted, row)
		return nil
	})
	if err != nil {
		return err
	}
	if len(g.sorted) > 0 {
		return g.emitBuffer()
	}
	return nil
}

// readBack calls fn with each record of a spill file, in file order.
func (g *Grouper) readBack(f *spillFile, fn func(key string, row Row) error) error {
	rr, err := f.reader()
	if err != nil {
		return err
	}
	defer rr.close()
	dec := rowDecoder{obj: g.obj, hdr: g.hdr}
	for {
		body, err := rr.next()
		if err == io.EOF {
			return rr.close()
		}
		if err != nil {
			return err
		}
		key, row, err := dec.decode(body)
		if err != nil {
			return rr.corrupt(err)
		}
		if err := fn(key, row); err != nil {
			return err
		}
	}
}

// processPartition emits the orders of one finished partition, splitting
// it first while it is larger than the budget and holds more than one key.
func (g *Grouper) processPartition(p *spillFile, depth int) error {
	if p.rows > 0 && p.mem > g.budget && p.mixed && depth < maxDepth {
		return g.split(p, depth)
	}
	if p.rows > 0 {
		if p.mem > g.budget {
			g.stats.OverBudget++
		}
		if err := g.load(p); err != nil {
			return err
		}
	}
	return p.remove()
}

func (g *Grouper) split(p *spillFile, depth int) error {
	subs, err := g.createPartitions(p.name+".", fanout(p.mem, g.budget, 2))
	if err != nil {
		return err
	}
	g.stats.Repartitions++
	if err := g.route(p, subs, maphash.MakeSeed()); err != nil {
		return err
	}
	if err := p.remove(); err != nil {
		return err
	}
	for _, s := range subs {
		if err := s.finish(); err != nil {
			return err
		}
	}
	for i, s := range subs {
		subs[i] = nil
		if err := g.processPartition(s, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// load reads a partition into memory and emits its orders.
func (g *Grouper) load(p *spillFile) error {
	g.clearMemory()
	err := g.readBack(p, func(key string, row Row) error {
		g.group(key, row)
		return nil
	})
	if err != nil {
		return err
	}
	return g.emitMemory()
}

// Discard drops the current object without emitting what it holds, and
// removes its temporary files. The Grouper can take a new object
// afterwards.
func (g *Grouper) Discard() error { return g.reset() }

// Close removes any temporary files and drops what the current object
// holds, without emitting it; use it (deferred) for an early stop. It is
// safe to call more than once and after Flush.
func (g *Grouper) Close() error { return g.reset() }

func (g *Grouper) reset() error {
	var err error
	for _, f := range g.files {
		f.close()
	}
	if g.dir != "" {
		if e := os.RemoveAll(g.dir); e != nil {
			err = fmt.Errorf("group: remove temporary files: %w", e)
		}
	}
	g.err, g.started, g.obj, g.hdr, g.scattered, g.dir = nil, false, nil, nil, false, ""
	g.state = g.initialState()
	g.clearMemory()
	g.sorted, g.curKey, g.run, g.seen, g.parts, g.files = nil, "", nil, hashSet{}, nil, nil
	return err
}

// Temporary files.

func (g *Grouper) createSpill(name string, bufSize int) (*spillFile, error) {
	if g.dir == "" {
		dir, err := os.MkdirTemp(g.cfg.TempDir, spillPrefix+strconv.Itoa(os.Getpid())+"-")
		if err != nil {
			return nil, fmt.Errorf("group: create temporary directory in %s: %w", g.cfg.TempDir, err)
		}
		g.dir = dir
	}
	path := filepath.Join(g.dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fileErr("create", path, err)
	}
	sf := &spillFile{name: name, path: path, f: f, w: bufio.NewWriterSize(f, bufSize)}
	g.files = append(g.files, sf)
	return sf, nil
}

func (g *Grouper) createPartitions(prefix string, n int) ([]*spillFile, error) {
	parts := make([]*spillFile, n)
	for i := range parts {
		p, err := g.createSpill(prefix+strconv.Itoa(i), writeBuffer)
		if err != nil {
			return nil, err
		}
		parts[i] = p
		g.stats.Partitions++
	}
	return parts, nil
}

// spillFile is one temporary file of records.
type spillFile struct {
	name, path string
	f          *os.File // open for writing until finish
	w          *bufio.Writer
	rows       int64
	mem        int64 // estimated memory of its rows when read back
	firstKey   string
	mixed      bool // holds more than one key
}

func (s *spillFile) write(rec []byte, key string, mem int64) error {
	if _, err := s.w.Write(rec); err != nil {
		return fileErr("write", s.path, err)
	}
	if s.rows == 0 {
		s.firstKey = strings.Clone(key)
	} else if !s.mixed && key != s.firstKey {
		s.mixed = true
	}
	s.rows++
	s.mem += mem
	return nil
}

// finish flushes and closes the file for writing.
func (s *spillFile) finish() error {
	if s.f == nil {
		return nil
	}
	f := s.f
	s.f = nil
	if err := s.w.Flush(); err != nil {
		f.Close()
		return fileErr("write", s.path, err)
	}
	s.w = nil
	if err := f.Close(); err != nil {
		return fileErr("close", s.path, err)
	}
	return nil
}

func (s *spillFile) close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

func (s *spillFile) remove() error {
	s.close()
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fileErr("remove", s.path, err)
	}
	return nil
}

func (s *spillFile) reader() (*recordReader, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fileErr("open", s.path, err)
	}
	return &recordReader{path: s.path, f: f, br: bufio.NewReaderSize(f, runBuffer)}, nil
}

// fileErr names the file once: an *fs.PathError names it already.
func fileErr(op, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("group: temporary file: %w", err)
	}
	return fmt.Errorf("group: %s %s: %w", op, path, err)
}

type recordReader struct {
	path    string
	f       *os.File
	br      *bufio.Reader
	buf     []byte
	pending int   // bytes peeked for the last record, to discard
	off     int64 // offset of the record being read
	end     int64 // offset of the next record
}

// maxRecord bounds the size of one record read back.
const maxRecord = 1 << 30

// next returns the body of the next record, valid until the next call,
// or io.EOF at the end.
func (rr *recordReader) next() ([]byte, error) {
	if rr.pending > 0 {
		if _, err := rr.br.Discard(rr.pending); err != nil {
			return nil, rr.fail(err)
		}
		rr.pending = 0
	}
	rr.off = rr.end
	n, err := binary.ReadUvarint(rr.br)
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, rr.fail(err)
	}
	if n > maxRecord {
		return nil, rr.corrupt(fmt.Errorf("record of %d bytes", n))
	}
	rr.end = rr.off + int64(uvarintLen(n)) + int64(n)
	if n <= uint64(rr.br.Size()) {
		// Use the reader's buffer: no copy.
		body, err := rr.br.Peek(int(n))
		if err != nil {
			return nil, rr.fail(err)
		}
		rr.pending = int(n)
		return body, nil
	}
	if uint64(cap(rr.buf)) < n {
		rr.buf = make([]byte, n)
	}
	body := rr.buf[:n]
	if _, err := io.ReadFull(rr.br, body); err != nil {
		return nil, rr.fail(err)
	}
	return body, nil
}

// fail reports a failed read: the file system's error, or a record cut
// short or malformed.
func (rr *recordReader) fail(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fileErr("read", rr.path, err)
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return rr.corrupt(err)
}

func (rr *recordReader) corrupt(err error) error {
	return fmt.Errorf("group: read %s: corrupt record at offset %d: %w", rr.path, rr.off, err)
}

func (rr *recordReader) close() error {
	if rr.f == nil {
		return nil
	}
	f := rr.f
	rr.f = nil
	if err := f.Close(); err != nil {
		return fileErr("close", rr.path, err)
	}
	return nil
}

// The record format of temporary files. A record is a uvarint length and
// a body:
//
//	flags    byte: 1 Values not nil, 2 Nulls not nil
//	line     varint
//	keyLen   uvarint
//	nValues  uvarint
//	nNulls   uvarint, then ceil(nNulls/8) bytes of bits (only with flag 2)
//	lengths  nValues uvarints
//	data     the key's bytes, then the values' bytes
//
// The object and header are the same for every row of an object and are
// attached again when reading back.
const (
	flagValues = 1
	flagNulls  = 2
)

// appendRecord appends the record of row r with key to dst.
func appendRecord(dst []byte, key string, r *Row) []byte {
	size := 1 + varintLen(r.Line) + uvarintLen(uint64(len(key))) + uvarintLen(uint64(len(r.Values))) + len(key)
	for _, v := range r.Values {
		size += uvarintLen(uint64(len(v))) + len(v)
	}
	flags := byte(0)
	if r.Values != nil {
		flags |= flagValues
	}
	if r.Nulls != nil {
		flags |= flagNulls
		size += uvarintLen(uint64(len(r.Nulls))) + (len(r.Nulls)+7)/8
	}
	dst = binary.AppendUvarint(dst, uint64(size))
	dst = append(dst, flags)
	dst = binary.AppendVarint(dst, r.Line)
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = binary.AppendUvarint(dst, uint64(len(r.Values)))
	if r.Nulls != nil {
		dst = binary.AppendUvarint(dst, uint64(len(r.Nulls)))
		var b byte
		for i, null := range r.Nulls {
			if null {
				b |= 1 << (i & 7)
			}
			if i&7 == 7 {
				dst, b = append(dst, b), 0
			}
		}
		if len(r.Nulls)&7 != 0 {
			dst = append(dst, b)
		}
	}
	for _, v := range r.Values {
		dst = binary.AppendUvarint(dst, uint64(len(v)))
	}
	dst = append(dst, key...)
	for _, v := range r.Values {
		dst = append(dst, v...)
	}
	return dst
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func varintLen(x int64) int {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	return uvarintLen(ux)
}

// recordHead is the parsed fixed part of a record body.
type recordHead struct {
	flags      byte
	line       int64
	keyLen     int
	nValues    int
	nNulls     int
	bits       []byte
	lensStart  int
	dataStart  int
	valueBytes int
}

var errRecord = errors.New("malformed")

func parseHead(b []byte) (recordHead, error) {
	var h recordHead
	if len(b) == 0 {
		return h, errRecord
	}
	h.flags = b[0]
	if h.flags&^(flagValues|flagNulls) != 0 {
		return h, errRecord
	}
	off := 1
	line, n := binary.Varint(b[off:])
	if n <= 0 {
		return h, errRecord
	}
	h.line, off = line, off+n
	var ok bool
	if h.keyLen, off, ok = uvarintInt(b, off); !ok {
		return h, errRecord
	}
	if h.nValues, off, ok = uvarintInt(b, off); !ok || h.nValues > len(b) {
		return h, errRecord
	}
	if h.flags&flagValues == 0 && h.nValues != 0 {
		return h, errRecord
	}
	if h.flags&flagNulls != 0 {
		if h.nNulls, off, ok = uvarintInt(b, off); !ok {
			return h, errRecord
		}
		nb := (h.nNulls + 7) / 8
		if nb > len(b)-off {
			return h, errRecord
		}
		h.bits, off = b[off:off+nb], off+nb
	}
	h.lensStart = off
	for range h.nValues {
		var l int
		if l, off, ok = uvarintInt(b, off); !ok || l > len(b) {
			return h, errRecord
		}
		h.valueBytes += l
	}
	h.dataStart = off
	if h.keyLen > len(b) || h.valueBytes > len(b) || off+h.keyLen+h.valueBytes != len(b) {
		return h, errRecord
	}
	return h, nil
}

// uvarintInt reads a uvarint at b[off:] that fits an int.
func uvarintInt(b []byte, off int) (int, int, bool) {
	if off > len(b) {
		return 0, off, false
	}
	v, n := binary.Uvarint(b[off:])
	if n <= 0 || v > math.MaxInt32 {
		return 0, off, false
	}
	return int(v), off + n, true
}

// mem estimates the memory of the record's row when read back, as
// recordMem does for the row written.
func (h *recordHead) mem() int64 {
	return rowStructBytes + rowAllocBytes + int64(16*h.nValues+h.nNulls+h.valueBytes+h.keyLen)
}

// recordMem estimates the memory of a row read back with its key.
func recordMem(r *Row, keyLen int) int64 {
	return rowStructBytes + rowDataBytes(r) + int64(keyLen)
}

// rowDecoder decodes records into rows of one object. It takes the
// rows' Values from shared blocks, to allocate less.
type rowDecoder struct {
	obj  *Object
	hdr  *Header
	slab []string
}

// values returns a slice of n strings.
func (d *rowDecoder) values(n int) []string {
	const block = 1024
	if n == 0 {
		return []string{}
	}
	if n > block/8 {
		return make([]string, n)
	}
	if len(d.slab)+n > cap(d.slab) {
		d.slab = make([]string, 0, block)
	}
	i := len(d.slab)
	d.slab = d.slab[:i+n]
	return d.slab[i : i+n : i+n]
}

// decode decodes a record body into its key and row. The key and values
// share one string.
func (d *rowDecoder) decode(b []byte) (string, Row, error) {
	h, err := parseHead(b)
	if err != nil {
		return "", Row{}, err
	}
	data := string(b[h.dataStart:])
	key := data[:h.keyLen]
	r := Row{Object: d.obj, Line: h.line, Header: d.hdr}
	if h.flags&flagValues != 0 {
		r.Values = d.values(h.nValues)
		p, off := h.keyLen, h.lensStart
		for i := range r.Values {
			l, n := binary.Uvarint(b[off:])
			off += n
			r.Values[i] = data[p : p+int(l)]
			p += int(l)
		}
	}
	if h.flags&flagNulls != 0 {
		r.Nulls = make([]bool, h.nNulls)
		for i := range r.Nulls {
			r.Nulls[i] = h.bits[i>>3]&(1<<(i&7)) != 0
		}
	}
	return key, r, nil
}

// hashSet is a set of 64-bit hashes with open addressing; its memory is
// 8 bytes per slot.
type hashSet struct {
	slots []uint64
	n     int
}

// insert adds h and reports whether it was new. Zero is stored as one,
// which at worst makes two keys look alike.
func (s *hashSet) insert(h uint64) bool {
	if h == 0 {
		h = 1
	}
	if 4*(s.n+1) > 3*len(s.slots) {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			s.slots[i] = h
			s.n++
			return true
		case h:
			return false
		}
	}
}

func (s *hashSet) grow() {
	old := s.slots
	s.slots = make([]uint64, max(64, 2*len(old)))
	s.n = 0
	for _, h := range old {
		if h != 0 {
			s.insert(h)
		}
	}
}

func (s *hashSet) bytes() int64 { return int64(8 * len(s.slots)) }
