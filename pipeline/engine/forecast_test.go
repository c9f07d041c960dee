package engine

import (
	"math"
	"testing"
)

// TestForecast feeds the estimator the orders of typical runs and checks
// what it expects of the rows still to come.
func TestForecast(t *testing.T) {
	type order struct {
		lines       int
		known, send bool
	}
	repeat := func(n int, o order) []order {
		out := make([]order, n)
		for i := range out {
			out[i] = o
		}
		return out
	}
	// mixed is n new orders of 2 lines, one in ten invalid (not sent).
	mixed := func(n int) []order {
		out := make([]order, n)
		for i := range out {
			out[i] = order{lines: 2, send: i%10 != 0}
		}
		return out
	}
	// knownWithInvalid is n orders of 2 lines sent before, one in five
	// invalid (new, not sent).
	knownWithInvalid := func(n int) []order {
		out := make([]order, n)
		for i := range out {
			out[i] = order{lines: 2, known: i%5 != 0}
		}
		return out
	}
	cases := []struct {
		name   string
		orders []order
		rows   float64 // rows to come
		want   float64
	}{
		{"nothing decided yet", nil, 1000, 0},
		{"nothing to come", mixed(100), 0, 0},
		{"a new export: 9 in 10 sent", mixed(100), 1000, 450},
		{"a rerun: every order already sent", repeat(500, order{lines: 2, known: true}), 1000, 0},
		// A resume: 500 orders sent by the run that stopped come first,
		// then new ones. Over the whole run, 9 in 10 of the orders would
		// look known and the estimate would be a tenth of the truth.
		{"a resume, past the block sent before", append(repeat(500, order{lines: 2, known: true}), mixed(60)...), 1000, 450},
		{"a resume, still in the block sent before", append(mixed(60), repeat(500, order{lines: 2, known: true})...), 1000, 0},
		// The block sent before holds the invalid orders of its part of
		// the export too: they are new each time, and must not count
		// against the share of new orders sent.
		{"a resume whose sent block holds invalid orders", append(knownWithInvalid(500), mixed(60)...), 1000, 450},
		// A rerun where all but the invalid orders were sent: nothing to
		// send, even though some orders are new each time.
		{"a rerun of an export with invalid orders", knownWithInvalid(500), 1000, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newForecast()
			for _, o := range tc.orders {
				f.add(o.lines, o.known, o.send)
			}
			if got := f.toSend(tc.rows); math.Abs(got-tc.want) > 0.01*tc.want+0.5 {
				t.Errorf("toSend(%v) = %.1f, want %.1f", tc.rows, got, tc.want)
			}
		})
	}
}
