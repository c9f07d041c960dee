package group

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"convpipe/pipeline"

	"go.yaml.in/yaml/v3"
)

// layouts of generated input.
const (
	layoutContiguous = "contiguous" // the lines of an order are adjacent
	layoutShuffled   = "shuffled"   // lines anywhere
	layoutLocal      = "local"      // adjacent orders' lines interleave
	layoutLate       = "late"       // contiguous, but some lines come at the end
)

type groupGen struct {
	orders   int
	maxLines int // lines per order: 1..maxLines
	layout   string
	seed     uint64
	odd      bool // add rows with nil/empty Values, nulls, unicode, long values
	values   int  // values per row besides the key; default 4
}

// groupRows generates the rows of one object; Line is the row's position
// plus one (the header).
func groupRows(obj *pipeline.Object, hdr *pipeline.Header, o groupGen) []pipeline.Row {
	rnd := rand.New(rand.NewPCG(o.seed, o.seed^0x9e3779b97f4a7c15))
	if o.values == 0 {
		o.values = 4
	}
	type line struct{ order, n int }
	var lines []line
	for i := range o.orders {
		for n := range 1 + rnd.IntN(o.maxLines) {
			lines = append(lines, line{i, n})
		}
	}
	switch o.layout {
	case layoutShuffled:
		rnd.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	case layoutLocal:
		for i := range lines {
			j := min(len(lines)-1, i+rnd.IntN(10))
			lines[i], lines[j] = lines[j], lines[i]
		}
	case layoutLate:
		var keep, late []line
		for _, l := range lines {
			if l.n > 0 && rnd.IntN(50) == 0 {
				late = append(late, l)
			} else {
				keep = append(keep, l)
			}
		}
		lines = append(keep, late...)
	}
	rows := make([]pipeline.Row, len(lines))
	for i, l := range lines {
		vals := make([]string, 1+o.values)
		vals[0] = fmt.Sprintf("order-%05d", l.order)
		for j := 1; j < len(vals); j++ {
			vals[j] = fmt.Sprintf("v%d-%d-%d", l.order, l.n, rnd.IntN(1000))
		}
		r := pipeline.Row{Object: obj, Header: hdr, Line: int64(i + 2), Values: vals}
		if o.odd {
			switch rnd.IntN(12) {
			case 0:
				r.Nulls = make([]bool, len(vals)+rnd.IntN(10))
				for j := range r.Nulls {
					r.Nulls[j] = rnd.IntN(2) == 0
				}
			case 1:
				r.Values[1] = ""
				r.Nulls = []bool{}
			case 2:
				r.Values[len(vals)-1] = "Zoë, \"quoted\"\n€ " + strings.Repeat("x", rnd.IntN(300))
			case 3:
				r.Values = r.Values[:1]
			case 4:
				r.Line = -r.Line
			}
		}
		rows[i] = r
	}
	if o.odd && len(rows) > 2 {
		// Rows without values all have the key "": one order at the end.
		rows[len(rows)-2].Values, rows[len(rows)-2].Nulls = nil, nil
		rows[len(rows)-1].Values = []string{}
	}
	return rows
}

func groupKey(r pipeline.Row) string {
	if len(r.Values) == 0 {
		return ""
	}
	return r.Values[0]
}

// groupCollector records emitted orders; failAt > 0 makes the failAt-th emit
// fail with err.
type groupCollector struct {
	orders [][]pipeline.Row
	failAt int
	err    error
}

func (c *groupCollector) emit(lines []pipeline.Row) error {
	if c.failAt > 0 && len(c.orders)+1 == c.failAt {
		return c.err
	}
	c.orders = append(c.orders, lines)
	return nil
}

// groupWant groups rows the simple way: all lines of a key, in first-seen
// order of the keys. With adjacent, only adjacent lines group (sorted). A
// row with an empty key is an order alone.
func groupWant(rows []pipeline.Row, adjacent bool) [][]pipeline.Row {
	var out [][]pipeline.Row
	index := map[string]int{}
	for _, r := range rows {
		k := groupKey(r)
		if k == "" {
			out = append(out, []pipeline.Row{r})
			continue
		}
		if adjacent {
			if n := len(out); n > 0 && groupKey(out[n-1][0]) == k {
				out[n-1] = append(out[n-1], r)
			} else {
				out = append(out, []pipeline.Row{r})
			}
			continue
		}
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], r)
	}
	return out
}

// checkGroups checks that got holds exactly the orders of want, each line
// once and equal to the row added, with the object's Object and Header.
// With inOrder the orders must also come in want's order.
func checkGroups(t *testing.T, obj *pipeline.Object, hdr *pipeline.Header, got, want [][]pipeline.Row, inOrder bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("emitted %d orders, want %d", len(got), len(want))
	}
	// An order of a line with an empty key is known by its line.
	idOf := func(r pipeline.Row) string {
		if k := groupKey(r); k != "" {
			return k
		}
		return fmt.Sprintf("(empty key, line %d)", r.Line)
	}
	byKey := map[string][]pipeline.Row{}
	for _, o := range want {
		byKey[idOf(o[0])] = o
	}
	seen := map[string]bool{}
	for i, o := range got {
		if len(o) == 0 {
			t.Errorf("order %d: no lines", i)
			continue
		}
		k := idOf(o[0])
		if inOrder {
			if i < len(want) && !reflect.DeepEqual(o, want[i]) {
				t.Fatalf("order %d: got %s, want %s", i, describeLines(o), describeLines(want[i]))
			}
			continue
		}
		if seen[k] {
			t.Fatalf("order %q emitted twice", k)
		}
		seen[k] = true
		if !reflect.DeepEqual(o, byKey[k]) {
			t.Fatalf("order %q: got %s, want %s", k, describeLines(o), describeLines(byKey[k]))
		}
		for _, r := range o {
			if r.Object != obj || r.Header != hdr {
				t.Fatalf("order %q line %d: object or header not re-attached", k, r.Line)
			}
		}
	}
}

func describeLines(lines []pipeline.Row) string {
	var b strings.Builder
	for _, r := range lines {
		fmt.Fprintf(&b, "[%d %q %v] ", r.Line, r.Values, r.Nulls)
	}
	return b.String()
}

func checkNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("temporary file left: %s", filepath.Join(dir, e.Name()))
	}
}

func groupObject(name string) (*pipeline.Object, *pipeline.Header) {
	return &pipeline.Object{Key: name}, pipeline.NewHeader([]string{"order_id", "a", "b", "c", "d"})
}

func TestGrouper(t *testing.T) {
	tests := []struct {
		name   string
		mode   Mode
		budget ByteSize
		size   int64 // pipeline.Object.Size, for the number of partitions
		gen    groupGen
		// adjacent: want only adjacent lines grouped (sorted mode);
		// inOrder: want the orders in first-seen order.
		adjacent, inOrder bool
		check             func(t *testing.T, s Stats)
	}{
		{
			name: "sorted", mode: Sorted, budget: 4 << 10,
			gen:      groupGen{orders: 300, maxLines: 8, layout: layoutContiguous, seed: 1, odd: true},
			adjacent: true, inOrder: true,
			check: func(t *testing.T, s Stats) { checkNoSpill(t, s) },
		},
		{
			name: "sorted emits a key again when it comes back", mode: Sorted,
			gen:      groupGen{orders: 40, maxLines: 4, layout: layoutLocal, seed: 2},
			adjacent: true, inOrder: true,
			check: func(t *testing.T, s Stats) { checkNoSpill(t, s) },
		},
		{
			name: "sorted order larger than the budget", mode: Sorted, budget: 1 << 10,
			gen:      groupGen{orders: 3, maxLines: 60, layout: layoutContiguous, seed: 3},
			adjacent: true, inOrder: true,
			check: func(t *testing.T, s Stats) {
				if s.OverBudget == 0 {
					t.Errorf("OverBudget = 0, want > 0")
				}
			},
		},
		{
			name: "scattered fits in memory", mode: Scattered,
			gen:     groupGen{orders: 300, maxLines: 8, layout: layoutShuffled, seed: 4, odd: true},
			inOrder: true,
			check:   func(t *testing.T, s Stats) { checkNoSpill(t, s) },
		},
		{
			name: "scattered beyond the budget", mode: Scattered, budget: 4 << 10,
			gen: groupGen{orders: 600, maxLines: 8, layout: layoutShuffled, seed: 5, odd: true},
			check: func(t *testing.T, s Stats) {
				if s.PartitionSpills != 1 || s.Partitions < 16 || s.Repartitions == 0 {
					t.Errorf("stats %+v: want one partition spill, >= 16 partitions, repartitions", s)
				}
			},
		},
		{
			name: "scattered many partitions", mode: Scattered, budget: 4 << 10, size: 1 << 20,
			gen: groupGen{orders: 400, maxLines: 8, layout: layoutShuffled, seed: 6},
			check: func(t *testing.T, s Stats) {
				if s.Partitions < maxFanout {
					t.Errorf("Partitions = %d, want >= %d", s.Partitions, maxFanout)
				}
			},
		},
		{
			name: "scattered contiguous input beyond the budget", mode: Scattered, budget: 4 << 10,
			gen: groupGen{orders: 300, maxLines: 8, layout: layoutContiguous, seed: 7},
			check: func(t *testing.T, s Stats) {
				if s.PartitionSpills != 1 || s.RunSpills != 0 {
					t.Errorf("stats %+v: want a partition spill only", s)
				}
			},
		},
		{
			name: "scattered order larger than the budget", mode: Scattered, budget: 1 << 10,
			gen: groupGen{orders: 4, maxLines: 100, layout: layoutShuffled, seed: 8},
			check: func(t *testing.T, s Stats) {
				if s.OverBudget == 0 {
					t.Errorf("OverBudget = 0, want > 0")
				}
			},
		},
		{
			name: "auto contiguous fits in memory", mode: Auto,
			gen:     groupGen{orders: 300, maxLines: 8, layout: layoutContiguous, seed: 9, odd: true},
			inOrder: true,
			check:   func(t *testing.T, s Stats) { checkNoSpill(t, s) },
		},
		{
			name: "auto scattered fits in memory", mode: Auto,
			gen:     groupGen{orders: 300, maxLines: 8, layout: layoutShuffled, seed: 10},
			inOrder: true,
			check: func(t *testing.T, s Stats) {
				checkNoSpill(t, s)
				if s.Scattered != 1 {
					t.Errorf("Scattered = %d, want 1", s.Scattered)
				}
			},
		},
		{
			name: "auto contiguous beyond the budget streams a run", mode: Auto, budget: 16 << 10,
			gen:     groupGen{orders: 500, maxLines: 8, layout: layoutContiguous, seed: 11, odd: true},
			inOrder: true,
			check: func(t *testing.T, s Stats) {
				if s.RunSpills != 1 || s.PartitionSpills != 0 || s.Scattered != 0 {
					t.Errorf("stats %+v: want one run spill, no partitions", s)
				}
			},
		},
		{
			name: "auto contiguous with more keys than the budget holds", mode: Auto, budget: 4 << 10,
			gen: groupGen{orders: 500, maxLines: 8, layout: layoutContiguous, seed: 11},
			check: func(t *testing.T, s Stats) {
				if s.RunSpills != 1 || s.PartitionSpills != 1 || s.Scattered != 0 {
					t.Errorf("stats %+v: want a run spill, then a partition spill", s)
				}
			},
		},
		{
			name: "auto scattered beyond the budget", mode: Auto, budget: 4 << 10,
			gen: groupGen{orders: 500, maxLines: 8, layout: layoutShuffled, seed: 12, odd: true},
			check: func(t *testing.T, s Stats) {
				if s.RunSpills != 0 || s.PartitionSpills != 1 || s.Scattered != 1 || s.Repartitions == 0 {
					t.Errorf("stats %+v: want a partition spill only, repartitions", s)
				}
			},
		},
		{
			name: "auto contiguous then scattered", mode: Auto, budget: 16 << 10,
			gen: groupGen{orders: 500, maxLines: 8, layout: layoutLate, seed: 13, odd: true},
			check: func(t *testing.T, s Stats) {
				if s.RunSpills != 1 || s.PartitionSpills != 1 || s.Scattered != 1 {
					t.Errorf("stats %+v: want a run spill, then a partition spill", s)
				}
			},
		},
		{
			name: "auto one order larger than the budget", mode: Auto, budget: 1 << 10,
			gen:     groupGen{orders: 2, maxLines: 200, layout: layoutContiguous, seed: 14},
			inOrder: true,
			check: func(t *testing.T, s Stats) {
				if s.RunSpills != 1 {
					t.Errorf("RunSpills = %d, want 1", s.RunSpills)
				}
			},
		},
		{
			name: "empty input", mode: Auto,
			check: func(t *testing.T, s Stats) {
				if s != (Stats{}) {
					t.Errorf("stats %+v, want zero", s)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			obj, hdr := groupObject("orders.csv")
			obj.Size = tt.size
			rows := groupRows(obj, hdr, tt.gen)
			var c groupCollector
			g := New(Config{Mode: tt.mode, MemoryBudget: tt.budget, TempDir: dir}, groupKey, c.emit)
			defer g.Close()
			for _, r := range rows {
				if err := g.Add(r); err != nil {
					t.Fatalf("Add line %d: %v", r.Line, err)
				}
			}
			if tt.mode != Sorted && len(c.orders) > 0 {
				t.Fatalf("%d orders emitted before Flush", len(c.orders))
			}
			if err := g.Flush(); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			checkNoTempFiles(t, dir)
			checkGroups(t, obj, hdr, c.orders, groupWant(rows, tt.adjacent), tt.inOrder)
			s := g.Stats()
			if s.Rows != int64(len(rows)) || s.Orders != int64(len(c.orders)) {
				t.Errorf("stats Rows %d Orders %d, want %d and %d", s.Rows, s.Orders, len(rows), len(c.orders))
			}
			if tt.check != nil {
				tt.check(t, s)
			}
		})
	}
}

func checkNoSpill(t *testing.T, s Stats) {
	t.Helper()
	if s.SpilledRows != 0 || s.RunSpills != 0 || s.PartitionSpills != 0 {
		t.Errorf("stats %+v: want no spill", s)
	}
}

// TestGrouperRandom compares every mode, over random layouts and budgets,
// with the simple in-memory grouping.
func TestGrouperRandom(t *testing.T) {
	layouts := []string{layoutContiguous, layoutShuffled, layoutLocal, layoutLate}
	for seed := range uint64(24) {
		rnd := rand.New(rand.NewPCG(seed, 42))
		gen := groupGen{
			orders:   1 + rnd.IntN(400),
			maxLines: 1 + rnd.IntN(10),
			layout:   layouts[seed%uint64(len(layouts))],
			seed:     seed,
			odd:      rnd.IntN(2) == 0,
			values:   1 + rnd.IntN(8),
		}
		budget := ByteSize(1<<10 + rnd.IntN(64<<10))
		for _, mode := range []Mode{Auto, Scattered, Sorted} {
			t.Run(fmt.Sprintf("%d/%s/%s/%s", seed, gen.layout, mode, budget), func(t *testing.T) {
				dir := t.TempDir()
				obj, hdr := groupObject("random.csv")
				obj.Size = rnd.Int64N(1 << 20)
				rows := groupRows(obj, hdr, gen)
				var c groupCollector
				g := New(Config{Mode: mode, MemoryBudget: budget, TempDir: dir}, groupKey, c.emit)
				defer g.Close()
				for _, r := range rows {
					if err := g.Add(r); err != nil {
						t.Fatalf("Add: %v", err)
					}
				}
				if err := g.Flush(); err != nil {
					t.Fatalf("Flush: %v", err)
				}
				checkNoTempFiles(t, dir)
				sorted := mode == Sorted
				checkGroups(t, obj, hdr, c.orders, groupWant(rows, sorted), sorted)
			})
		}
	}
}

// TestGrouperObjects runs several objects through one Grouper.
func TestGrouperObjects(t *testing.T) {
	dir := t.TempDir()
	var c groupCollector
	g := New(Config{MemoryBudget: 4 << 10, TempDir: dir}, groupKey, c.emit)
	defer g.Close()
	layouts := []string{layoutShuffled, layoutContiguous, layoutLate, layoutContiguous}
	for i, layout := range layouts {
		obj, hdr := groupObject(fmt.Sprintf("part-%d.csv", i))
		rows := groupRows(obj, hdr, groupGen{orders: 50 + 100*i, maxLines: 5, layout: layout, seed: uint64(i)})
		c.orders = nil
		for _, r := range rows {
			if err := g.Add(r); err != nil {
				t.Fatalf("object %d: Add: %v", i, err)
			}
		}
		if err := g.Flush(); err != nil {
			t.Fatalf("object %d: Flush: %v", i, err)
		}
		checkNoTempFiles(t, dir)
		checkGroups(t, obj, hdr, c.orders, groupWant(rows, false), false)
	}
	if s := g.Stats(); s.Objects != int64(len(layouts)) {
		t.Errorf("Objects = %d, want %d", s.Objects, len(layouts))
	}
}

func TestGrouperErrors(t *testing.T) {
	errStop := errors.New("stop here")
	tests := []struct {
		name   string
		mode   Mode
		budget ByteSize
		layout string
		failAt int
		// addErr: the emit error comes from Add (sorted mode), not Flush.
		addErr bool
	}{
		{name: "sorted", mode: Sorted, layout: layoutContiguous, failAt: 3, addErr: true},
		{name: "sorted last order", mode: Sorted, layout: layoutContiguous, failAt: 100},
		{name: "memory", mode: Auto, layout: layoutShuffled, failAt: 5},
		{name: "run", mode: Auto, budget: 4 << 10, layout: layoutContiguous, failAt: 5},
		{name: "partitions", mode: Scattered, budget: 4 << 10, layout: layoutShuffled, failAt: 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			obj, hdr := groupObject("orders.csv")
			rows := groupRows(obj, hdr, groupGen{orders: 100, maxLines: 5, layout: tt.layout, seed: 1})
			c := groupCollector{failAt: tt.failAt, err: errStop}
			g := New(Config{Mode: tt.mode, MemoryBudget: tt.budget, TempDir: dir}, groupKey, c.emit)
			defer g.Close()
			var addErr error
			for _, r := range rows {
				if addErr = g.Add(r); addErr != nil {
					break
				}
			}
			if tt.addErr != (addErr != nil) || (addErr != nil && addErr != errStop) {
				t.Fatalf("Add: %v, want the emit error: %v", addErr, tt.addErr)
			}
			if addErr != nil {
				if err := g.Add(rows[len(rows)-1]); err != errStop {
					t.Errorf("Add after an error: %v, want the same error", err)
				}
			}
			if err := g.Flush(); err != errStop {
				t.Fatalf("Flush: %v, want %v", err, errStop)
			}
			if len(c.orders) != tt.failAt-1 {
				t.Errorf("emitted %d orders before the error, want %d", len(c.orders), tt.failAt-1)
			}
			checkNoTempFiles(t, dir)
			// The Grouper takes the next object.
			c.failAt, c.orders = 0, nil
			obj2, hdr2 := groupObject("next.csv")
			rows2 := groupRows(obj2, hdr2, groupGen{orders: 10, maxLines: 3, layout: layoutContiguous, seed: 2})
			for _, r := range rows2 {
				if err := g.Add(r); err != nil {
					t.Fatalf("next object: Add: %v", err)
				}
			}
			if err := g.Flush(); err != nil {
				t.Fatalf("next object: Flush: %v", err)
			}
			checkGroups(t, obj2, hdr2, c.orders, groupWant(rows2, false), false)
		})
	}
}

// TestGrouperClose checks that Close and Discard remove the temporary
// files of an object stopped early, without emitting.
func TestGrouperClose(t *testing.T) {
	for _, layout := range []string{layoutContiguous, layoutShuffled} {
		t.Run(layout, func(t *testing.T) {
			dir := t.TempDir()
			obj, hdr := groupObject("orders.csv")
			rows := groupRows(obj, hdr, groupGen{orders: 200, maxLines: 5, layout: layout, seed: 3})
			var c groupCollector
			g := New(Config{MemoryBudget: 4 << 10, TempDir: dir}, groupKey, c.emit)
			for _, r := range rows[:len(rows)/2] {
				if err := g.Add(r); err != nil {
					t.Fatal(err)
				}
			}
			if s := g.Stats(); s.SpilledRows == 0 {
				t.Fatalf("no spill: %+v", s)
			}
			if err := g.Discard(); err != nil {
				t.Fatal(err)
			}
			checkNoTempFiles(t, dir)
			for _, r := range rows {
				if err := g.Add(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := g.Close(); err != nil {
				t.Fatal(err)
			}
			if err := g.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if len(c.orders) != 0 {
				t.Errorf("emitted %d orders, want none", len(c.orders))
			}
			checkNoTempFiles(t, dir)
		})
	}
}

func TestGrouperFileErrors(t *testing.T) {
	t.Run("temp dir gone", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "spill")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		obj, hdr := groupObject("orders.csv")
		var c groupCollector
		g := New(Config{MemoryBudget: 1 << 10, TempDir: dir}, groupKey, c.emit)
		defer g.Close()
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		var err error
		for _, r := range groupRows(obj, hdr, groupGen{orders: 50, maxLines: 3, seed: 4}) {
			if err = g.Add(r); err != nil {
				break
			}
		}
		if err == nil || !strings.Contains(err.Error(), dir) || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Add: %v, want an error naming %s", err, dir)
		}
		if ferr := g.Flush(); ferr != err {
			t.Errorf("Flush: %v, want %v", ferr, err)
		}
	})
	t.Run("partition file gone", func(t *testing.T) {
		dir := t.TempDir()
		obj, hdr := groupObject("orders.csv")
		var c groupCollector
		g := New(Config{Mode: Scattered, MemoryBudget: 1 << 10, TempDir: dir}, groupKey, c.emit)
		defer g.Close()
		for _, r := range groupRows(obj, hdr, groupGen{orders: 50, maxLines: 3, seed: 5}) {
			if err := g.Add(r); err != nil {
				t.Fatal(err)
			}
		}
		// Remove a partition that holds rows: the partitions are chosen by
		// a hash with a random seed, so which ones are empty differs from
		// run to run, and an empty one is never read back.
		var gone string
		for _, p := range g.parts {
			if p.rows > 0 {
				gone = p.path
				break
			}
		}
		if gone == "" {
			t.Fatalf("no partition holds rows (%d partitions)", len(g.parts))
		}
		if err := os.Remove(gone); err != nil {
			t.Fatal(err)
		}
		err := g.Flush()
		if err == nil || !strings.Contains(err.Error(), gone) || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Flush: %v, want an error naming %s", err, gone)
		}
		checkNoTempFiles(t, dir)
	})
	t.Run("corrupt run file", func(t *testing.T) {
		dir := t.TempDir()
		obj, hdr := groupObject("orders.csv")
		var c groupCollector
		g := New(Config{MemoryBudget: 1 << 10, TempDir: dir}, groupKey, c.emit)
		defer g.Close()
		for _, r := range groupRows(obj, hdr, groupGen{orders: 50, maxLines: 3, seed: 5}) {
			if err := g.Add(r); err != nil {
				t.Fatal(err)
			}
		}
		runs, _ := filepath.Glob(filepath.Join(dir, "*", "run"))
		if len(runs) != 1 {
			t.Fatalf("run files %q, want one", runs)
		}
		// Flush the writer's buffer first, then cut the file short.
		if err := g.run.finish(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(runs[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(runs[0], fi.Size()-3); err != nil {
			t.Fatal(err)
		}
		err = g.Flush()
		if err == nil || !strings.Contains(err.Error(), runs[0]) || !strings.Contains(err.Error(), "corrupt record") {
			t.Fatalf("Flush: %v, want a corrupt record error naming %s", err, runs[0])
		}
		checkNoTempFiles(t, dir)
	})
}

// TestGrouperLargeRows spills rows larger than the read buffer.
func TestGrouperLargeRows(t *testing.T) {
	for _, layout := range []string{layoutContiguous, layoutShuffled} {
		t.Run(layout, func(t *testing.T) {
			dir := t.TempDir()
			obj, hdr := groupObject("orders.csv")
			rows := groupRows(obj, hdr, groupGen{orders: 30, maxLines: 3, layout: layout, seed: 9})
			for _, i := range []int{3, len(rows) / 2, len(rows) - 1} {
				rows[i].Values[2] = strings.Repeat("large ", 100_000)
			}
			var c groupCollector
			g := New(Config{MemoryBudget: 1 << 10, TempDir: dir}, groupKey, c.emit)
			defer g.Close()
			for _, r := range rows {
				if err := g.Add(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := g.Flush(); err != nil {
				t.Fatal(err)
			}
			checkGroups(t, obj, hdr, c.orders, groupWant(rows, false), false)
			checkNoTempFiles(t, dir)
		})
	}
}

// TestGrouperNoObject groups rows that name no object or header.
func TestGrouperNoObject(t *testing.T) {
	for _, mode := range []Mode{Auto, Scattered, Sorted} {
		t.Run(string(mode), func(t *testing.T) {
			dir := t.TempDir()
			rows := groupRows(nil, nil, groupGen{orders: 100, maxLines: 4, layout: layoutLate, seed: 7})
			if mode == Sorted {
				rows = groupRows(nil, nil, groupGen{orders: 100, maxLines: 4, seed: 7})
			}
			var c groupCollector
			g := New(Config{Mode: mode, MemoryBudget: 4 << 10, TempDir: dir}, groupKey, c.emit)
			defer g.Close()
			for _, r := range rows {
				if err := g.Add(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := g.Flush(); err != nil {
				t.Fatal(err)
			}
			checkGroups(t, nil, nil, c.orders, groupWant(rows, false), false)
			checkNoTempFiles(t, dir)
		})
	}
}

func TestGrouperMisuse(t *testing.T) {
	emit := func([]pipeline.Row) error { return nil }
	t.Run("rows of two objects", func(t *testing.T) {
		g := New(Config{TempDir: t.TempDir()}, groupKey, emit)
		defer g.Close()
		a, ha := groupObject("a.csv")
		b, _ := groupObject("b.csv")
		if err := g.Add(pipeline.Row{Object: a, Header: ha, Line: 2, Values: []string{"1"}}); err != nil {
			t.Fatal(err)
		}
		// Another pointer to an equal object and header is the same object.
		a2, ha2 := groupObject("a.csv")
		if err := g.Add(pipeline.Row{Object: a2, Header: ha2, Line: 3, Values: []string{"1"}}); err != nil {
			t.Fatalf("same object, other pointers: %v", err)
		}
		err := g.Add(pipeline.Row{Object: b, Header: ha, Line: 2, Values: []string{"2"}})
		if err == nil || !strings.Contains(err.Error(), "b.csv:2") || !strings.Contains(err.Error(), "a.csv") {
			t.Fatalf("Add: %v, want an error naming both objects", err)
		}
		if err := g.Flush(); err == nil {
			t.Fatal("Flush: no error")
		}
	})
	t.Run("other columns", func(t *testing.T) {
		g := New(Config{TempDir: t.TempDir()}, groupKey, emit)
		defer g.Close()
		a, ha := groupObject("a.csv")
		if err := g.Add(pipeline.Row{Object: a, Header: ha, Line: 2, Values: []string{"1"}}); err != nil {
			t.Fatal(err)
		}
		err := g.Add(pipeline.Row{Object: a, Header: pipeline.NewHeader([]string{"x"}), Line: 3, Values: []string{"1"}})
		if err == nil || !strings.Contains(err.Error(), "a.csv:3") {
			t.Fatalf("Add: %v, want an error naming the row", err)
		}
	})
	t.Run("config", func(t *testing.T) {
		for _, g := range []*Grouper{
			New(Config{}, nil, emit),
			New(Config{}, groupKey, nil),
			New(Config{Mode: "fast"}, groupKey, emit),
		} {
			if err := g.Add(pipeline.Row{}); err == nil {
				t.Error("Add: no error")
			}
			if err := g.Flush(); err == nil {
				t.Error("Flush: no error")
			}
		}
	})
}

func TestGroupConfigValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for none
	}{
		{"zero", Config{}, ""},
		{"full", Config{Mode: Scattered, MemoryBudget: 64 << 20, TempDir: dir}, ""},
		{"mode", Config{Mode: "fast"}, `group.mode: "fast"`},
		{"negative budget", Config{MemoryBudget: -1}, "group.memory_budget: must not be negative"},
		{"budget without unit", Config{MemoryBudget: 64}, "group.memory_budget: 64B is below the minimum of 1KiB"},
		{"temp dir missing", Config{TempDir: filepath.Join(dir, "nope")}, "group.temp_dir:"},
		{"temp dir a file", Config{TempDir: file}, "group.temp_dir: " + file + " is not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestGroupConfigYAML(t *testing.T) {
	tests := []struct {
		in   string
		want Config
		err  string
	}{
		{in: "mode: sorted\nmemory_budget: 64MiB\ntemp_dir: /tmp\n", want: Config{Mode: Sorted, MemoryBudget: 64 << 20, TempDir: "/tmp"}},
		{in: "memory_budget: 65536\n", want: Config{MemoryBudget: 65536}},
		{in: "memory_budget: \"1.5 GB\"\n", want: Config{MemoryBudget: 1_500_000_000}},
		{in: "memory_budget: lots\n", err: `invalid size "lots"`},
		{in: "memory: 1\n", err: "field memory not found"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			dec := yaml.NewDecoder(strings.NewReader(tt.in))
			dec.KnownFields(true)
			var got Config
			err := dec.Decode(&got)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Decode: %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Decode: %+v, %v; want %+v", got, err, tt.want)
			}
			out, err := yaml.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			var back Config
			if err := yaml.Unmarshal(out, &back); err != nil || back != got {
				t.Fatalf("round trip through %q: %+v, %v", out, back, err)
			}
		})
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		err  bool
	}{
		{in: "0", want: 0},
		{in: "4096", want: 4096},
		{in: "64MiB", want: 64 << 20},
		{in: "64 mib", want: 64 << 20},
		{in: "64Mi", want: 64 << 20},
		{in: "64M", want: 64 << 20},
		{in: "512k", want: 512 << 10},
		{in: "1.5GiB", want: 3 << 29},
		{in: "2TiB", want: 2 << 40},
		{in: "64MB", want: 64_000_000},
		{in: "1kb", want: 1000},
		{in: "100B", want: 100},
		{in: " 1e3 ", want: 1000},
		{in: "", err: true},
		{in: "MiB", err: true},
		{in: "-1KiB", err: true},
		{in: "NaN", err: true},
		{in: "1e30", err: true},
		{in: "12 parsecs", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseByteSize(tt.in)
			if tt.err {
				if err == nil {
					t.Fatalf("ParseByteSize(%q) = %d, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
			back, err := ParseByteSize(got.String())
			if err != nil || back != got {
				t.Fatalf("round trip through %q: %d, %v", got.String(), back, err)
			}
		})
	}
}

func TestRecordRoundTrip(t *testing.T) {
	obj, hdr := groupObject("x.parquet")
	rows := []pipeline.Row{
		{Line: 1, Values: []string{"a", "", "Zoë"}},
		{Line: -5},
		{Line: math.MaxInt64, Values: []string{}, Nulls: []bool{}},
		{Line: math.MinInt64, Values: []string{strings.Repeat("y", 70000)}, Nulls: []bool{true, false, false, true, true, false, false, false, true}},
		{Line: 7, Nulls: []bool{false}},
	}
	for i, r := range rows {
		r.Object, r.Header = obj, hdr
		for _, key := range []string{"", "k", strings.Repeat("key", 100)} {
			rec := appendRecord(nil, key, &r)
			n, m := recordPrefix(rec)
			if m <= 0 || int(n) != len(rec)-m {
				t.Fatalf("row %d: length prefix %d, body %d", i, n, len(rec)-m)
			}
			body := rec[m:]
			gotKey, got, err := (&rowDecoder{obj: obj, hdr: hdr}).decode(body)
			if err != nil {
				t.Fatalf("row %d: %v", i, err)
			}
			if gotKey != key || !reflect.DeepEqual(got, r) {
				t.Fatalf("row %d key %q: got %q %+v", i, key, gotKey, got)
			}
			h, _ := parseHead(body)
			if h.mem() != recordMem(&r, len(key)) {
				t.Errorf("row %d: mem %d from the record, %d from the row", i, h.mem(), recordMem(&r, len(key)))
			}
			// Every truncation is an error, not a panic.
			for cut := range len(body) {
				if _, _, err := (&rowDecoder{}).decode(body[:cut]); err == nil {
					t.Fatalf("row %d: truncated to %d bytes: no error", i, cut)
				}
			}
		}
	}
}

func recordPrefix(b []byte) (uint64, int) {
	var x uint64
	for i, c := range b {
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return x, i + 1
		}
	}
	return 0, 0
}

// FuzzGroupRecord checks that any row survives a temporary file and that
// decoding any bytes never panics.
func FuzzGroupRecord(f *testing.F) {
	f.Add("order-1", int64(2), "a,b,,c", []byte{1, 0, 1})
	f.Add("", int64(-1), "", []byte(nil))
	f.Fuzz(func(t *testing.T, key string, line int64, values string, nulls []byte) {
		r := pipeline.Row{Line: line, Values: strings.Split(values, ",")}
		if nulls != nil {
			r.Nulls = make([]bool, len(nulls))
			for i, b := range nulls {
				r.Nulls[i] = b&1 == 1
			}
		}
		rec := appendRecord(nil, key, &r)
		_, m := recordPrefix(rec)
		gotKey, got, err := (&rowDecoder{}).decode(rec[m:])
		if err != nil || gotKey != key || !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip: %q %+v %v; want %q %+v", gotKey, got, err, key, r)
		}
		(&rowDecoder{}).decode([]byte(values))
		(&rowDecoder{}).decode(nulls)
	})
}

func TestHashSet(t *testing.T) {
	var s hashSet
	rnd := rand.New(rand.NewPCG(1, 2))
	var hs []uint64
	for range 20000 {
		h := rnd.Uint64()
		hs = append(hs, h)
		if !s.insert(h) {
			t.Fatalf("insert(%d): not new", h)
		}
	}
	hs = append(hs, 0)
	if !s.insert(0) {
		t.Fatal("insert(0): not new")
	}
	for _, h := range hs {
		if s.insert(h) {
			t.Fatalf("insert(%d) again: new", h)
		}
	}
	if s.n != len(hs) || s.bytes() != int64(8*len(s.slots)) {
		t.Errorf("n = %d, want %d", s.n, len(hs))
	}
}

// groupBenchRows returns n rows of 15 columns in orders of 1-8 lines.
func groupBenchRows(n int, layout string) []pipeline.Row {
	obj, _ := groupObject("bench.csv")
	names := make([]string, 15)
	for i := range names {
		names[i] = "col" + strconv.Itoa(i)
	}
	hdr := pipeline.NewHeader(names)
	rows := groupRows(obj, hdr, groupGen{orders: n * 2 / 9, maxLines: 8, layout: layout, seed: 1, values: 14})
	// Lay the values out as encoding/csv does: substrings of one string
	// per record.
	for i := range rows {
		line := strings.Join(rows[i].Values, "")
		p := 0
		for j, v := range rows[i].Values {
			rows[i].Values[j] = line[p : p+len(v)]
			p += len(v)
		}
	}
	return rows
}

func runGroupBench(b *testing.B, cfg Config, rows []pipeline.Row) {
	cfg.TempDir = b.TempDir()
	orders := 0
	g := New(cfg, groupKey, func(lines []pipeline.Row) error { orders++; return nil })
	defer g.Close()
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range rows {
			if err := g.Add(r); err != nil {
				b.Fatal(err)
			}
		}
		if err := g.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	s := g.Stats()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(s.Rows), "ns/row")
	b.ReportMetric(float64(s.SpilledBytes)/float64(s.Rows), "spilled-B/row")
	b.ReportMetric(float64(s.PeakBuffered)/(1<<20), "peak-MiB")
}

// The benchmarks group 20,000 rows (about 7 MiB in memory), few enough
// to stay in the CPU's caches as freshly read rows would be.
const groupBenchN = 20_000

func BenchmarkGroupSorted(b *testing.B) {
	runGroupBench(b, Config{Mode: Sorted}, groupBenchRows(groupBenchN, layoutContiguous))
}

// BenchmarkGroupScattered spills shuffled rows to partitions.
func BenchmarkGroupScattered(b *testing.B) {
	runGroupBench(b, Config{Mode: Scattered, MemoryBudget: 1 << 20}, groupBenchRows(groupBenchN, layoutShuffled))
}

// BenchmarkGroupAuto runs auto mode over contiguous rows beyond the
// budget: the run-file path.
func BenchmarkGroupAuto(b *testing.B) {
	runGroupBench(b, Config{Mode: Auto, MemoryBudget: 1 << 20}, groupBenchRows(groupBenchN, layoutContiguous))
}

// BenchmarkGroupAutoMemory runs auto mode over contiguous rows that fit in
// the budget.
func BenchmarkGroupAutoMemory(b *testing.B) {
	runGroupBench(b, Config{Mode: Auto}, groupBenchRows(groupBenchN, layoutContiguous))
}

// TestNewChecksFieldsOnly: New does no I/O (a run validates its temporary
// folder once, with Validate); a folder that is missing when the grouper
// must spill is an error naming it, not a lost order.
func TestNewChecksFieldsOnly(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "gone")
	var c groupCollector
	g := New(Config{Mode: Scattered, MemoryBudget: MinMemoryBudget, TempDir: missing}, groupKey, c.emit)
	defer g.Close()
	obj, hdr := groupObject("a.csv")
	var err error
	for _, r := range groupRows(obj, hdr, groupGen{orders: 200, maxLines: 3, layout: layoutShuffled, seed: 1}) {
		if err = g.Add(r); err != nil {
			break
		}
	}
	if err == nil {
		err = g.Flush()
	}
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("spilling to a missing folder: %v, want an error naming %s", err, missing)
	}
	if bad := New(Config{Mode: "sideways"}, groupKey, c.emit); bad.Add(pipeline.Row{}) == nil {
		t.Error("New with mode sideways: Add succeeded, want the configuration error")
	}
}
