package engine_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"convpipe/mapping"
	"convpipe/pipeline"
)

// countingMapper counts Map calls; it fingerprints as the Mapping does.
type countingMapper struct {
	*mapping.Mapping
	maps atomic.Int64
}

func (m *countingMapper) Map(lines []pipeline.Row) pipeline.Mapped {
	m.maps.Add(1)
	return m.Mapping.Map(lines)
}

// plainMapper maps and cannot fingerprint: every rerun maps every order.
type plainMapper struct{ m *mapping.Mapping }

func (m plainMapper) Map(lines []pipeline.Row) pipeline.Mapped { return m.m.Map(lines) }
func (m plainMapper) OrderKey(r pipeline.Row) string           { return m.m.OrderKey(r) }
func (m plainMapper) CheckHeader(obj pipeline.Object, h *pipeline.Header) error {
	return m.m.CheckHeader(obj, h)
}

// agedMapper's ledger may vouch for no EventDate: all are too old.
type agedMapper struct{ *countingMapper }

func (agedMapper) OldestEvent() time.Time { return time.Now().Add(time.Hour) }

// TestRunRerunSkipsMappingOfUnchangedOrders: a run records what each
// payload was built from; a rerun with --all maps only the orders whose
// lines changed, and decides every order as a rerun that maps them all
// does.
func TestRunRerunSkipsMappingOfUnchangedOrders(t *testing.T) {
	h := newHarness(t)
	h.write("a.csv", orders(1, 20))
	cm := &countingMapper{Mapping: h.mapper}
	s, err := h.run(runOpts{mapper: cm})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.Accepted != 20 || cm.maps.Load() != 20 {
		t.Fatalf("first run: %+v, %d orders mapped", s.Total, cm.maps.Load())
	}
	for k, e := range h.entries() {
		fp, bound, ok := strings.Cut(e.Source, "/")
		if !ok || len(fp) != 32 || len(e.PayloadHash) < 16 || bound != e.PayloadHash[:16] {
			t.Errorf("%s: Source %q, want its lines' fingerprint bound to payload %s", k, e.Source, e.PayloadHash)
		}
	}

	rerun := func(name string, m pipeline.Mapper) pipeline.Counts {
		t.Helper()
		before := len(h.sim.Requests())
		s, err := h.run(runOpts{all: true, mapper: m})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := len(h.sim.Requests()); n != before {
			t.Fatalf("%s: %d requests sent", name, n-before)
		}
		return s.Total
	}
	cm.maps.Store(0)
	fast := rerun("rerun", cm)
	if fast.AlreadySent != 20 || fast.Orders != 20 || fast.Rows != 40 || cm.maps.Load() != 0 {
		t.Errorf("rerun --all: %+v, %d orders mapped; want 20 already sent, none mapped", fast, cm.maps.Load())
	}
	if slow := rerun("rerun that maps", plainMapper{h.mapper}); slow != fast {
		t.Errorf("rerun that maps every order: %+v; the fingerprinting one: %+v", slow, fast)
	}
	aged := &countingMapper{Mapping: h.mapper}
	if c := rerun("rerun, EventDates too old to vouch for", agedMapper{aged}); c.AlreadySent != 20 || aged.maps.Load() != 20 {
		t.Errorf("EventDates older than OldestEvent: %+v, %d orders mapped; want all 20 mapped", c, aged.maps.Load())
	}

	// One changed line: that order alone is mapped, and found changed;
	// still changed (and mapped) the next time.
	h.write("a.csv", strings.Replace(orders(1, 20), "A-3,"+testDate+",clk3,SKU-1,1,11.50", "A-3,"+testDate+",clk3,SKU-1,1,9.99", 1))
	for _, name := range []string{"changed line", "changed line again"} {
		cm.maps.Store(0)
		c := rerun(name, cm)
		if c.Changed != 1 || c.AlreadySent != 19 || cm.maps.Load() != 1 {
			t.Errorf("%s: %+v, %d orders mapped; want 1 changed (mapped), 19 already sent", name, c, cm.maps.Load())
		}
	}
	if slow := rerun("changed line, mapping all", plainMapper{h.mapper}); slow.Changed != 1 || slow.AlreadySent != 19 {
		t.Errorf("changed line, a rerun that maps all: %+v", slow)
	}
}
