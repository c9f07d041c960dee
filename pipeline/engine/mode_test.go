package engine

import (
	"context"
	"strings"
	"testing"

	"convpipe/pipeline"
)

type nopSource struct{}

func (nopSource) Objects(context.Context) ([]pipeline.Object, error) { return nil, nil }
func (nopSource) Open(context.Context, pipeline.Object) (pipeline.RowReader, error) {
	return nil, nil
}

type nopMapper struct{}

func (nopMapper) CheckHeader(pipeline.Object, *pipeline.Header) error { return nil }
func (nopMapper) OrderKey(pipeline.Row) string                        { return "" }
func (nopMapper) Map([]pipeline.Row) pipeline.Mapped                  { return pipeline.Mapped{} }

type nopLedger struct{ pipeline.Ledger }

type unpacedSink struct{}

func (unpacedSink) Send(context.Context, *pipeline.Conversion) (pipeline.Outcome, error) {
	return pipeline.Outcome{}, nil
}

// TestModes: each mode takes what it needs and nothing it would ignore,
// and gets the writer and the queue its mode implies.
func TestModes(t *testing.T) {
	base := Options{Source: nopSource{}, Mapper: nopMapper{}}
	with := func(m Mode, sink pipeline.Sink, led pipeline.Ledger) Options {
		o := base
		o.Mode, o.Sink, o.Ledger = m, sink, led
		return o
	}
	for _, c := range []struct {
		name    string
		opt     Options
		err     string
		writes  bool
		enqueue string
	}{
		{"check", with(Check, nil, nil), "", false, "count"},
		{"check with a ledger", with(Check, nil, nopLedger{}), "", false, "count"},
		{"check with a sink", with(Check, unpacedSink{}, nil), "takes no sink", false, ""},
		{"dry run", with(DryRun, unpacedSink{}, nil), "", false, "queue"},
		{"dry run with a ledger", with(DryRun, unpacedSink{}, nopLedger{}), "", false, "queue"},
		{"dry run without a sink", with(DryRun, nil, nil), "needs a sink", false, ""},
		{"send", with(Send, unpacedSink{}, nopLedger{}), "", true, "queue"},
		{"send without a ledger", with(Send, unpacedSink{}, nil), "needs a ledger", false, ""},
		{"send without a sink", with(Send, nil, nopLedger{}), "needs a sink", false, ""},
		{"unknown mode", with(Mode(7), unpacedSink{}, nopLedger{}), "unknown mode Mode(7)", false, ""},
		{"no source", Options{Mapper: nopMapper{}}, "a source and a mapper", false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := newRunner(c.opt)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("newRunner: %v, want an error containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, none := r.w.(noWrites); none == c.writes {
				t.Errorf("writer %T, want a ledger writer: %t", r.w, c.writes)
			}
			// Which enqueue: countOnly leaves nothing in flight.
			o := &objectState{}
			p := prepared{m: pipeline.Mapped{Conversion: &pipeline.Conversion{}}, key: pipeline.Key{EventType: "1", OrderID: "O1"}}
			jobs := make(chan job, 1)
			if err := r.enqueue(context.Background(), o, p, nil, jobs); err != nil {
				t.Fatal(err)
			}
			got := "count"
			if len(jobs) == 1 {
				got = "queue"
			}
			if got != c.enqueue || r.toSend != 1 {
				t.Errorf("enqueue %s (to send %d), want %s", got, r.toSend, c.enqueue)
			}
			if s := r.summary(context.Background()); s.DryRun != (c.opt.Mode != Send) {
				t.Errorf("summary's DryRun %t in mode %s", s.DryRun, c.opt.Mode)
			}
		})
	}
}
