package engine

import (
	"context"
	"math"
	"testing"

	"convpipe/pipeline"
)

// pacedSink is a sink that only tells its pace: stageSize reads nothing
// else.
type pacedSink struct{ perSecond float64 }

func (s pacedSink) Send(context.Context, *pipeline.Conversion) (pipeline.Outcome, error) {
	return pipeline.Outcome{}, nil
}
func (s pacedSink) Pace() pipeline.Pace { return pipeline.Pace{PerSecond: s.perSecond} }

type unpacedSink struct{}

func (unpacedSink) Send(context.Context, *pipeline.Conversion) (pipeline.Outcome, error) {
	return pipeline.Outcome{}, nil
}

// TestStageSize: a tenth of a second of the pace, at least one send per
// worker, at most 256 (or the workers when there are more).
func TestStageSize(t *testing.T) {
	for _, c := range []struct {
		name    string
		sink    pipeline.Sink
		workers int
		want    int
	}{
		{"no pace", unpacedSink{}, 4, 4},
		{"the API's default, 1000 an hour", pacedSink{1000.0 / 3600}, 4, 4},
		{"500/s", pacedSink{500}, 4, 50},
		{"2000/s", pacedSink{2000}, 4, 200},
		{"unlimited (rate.Inf is MaxFloat64)", pacedSink{math.MaxFloat64}, 4, 256},
		{"infinite", pacedSink{math.Inf(1)}, 4, 256},
		{"not a number", pacedSink{math.NaN()}, 4, 4},
		{"more workers than the cap", pacedSink{math.MaxFloat64}, 300, 300},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &runner{opt: Options{Sink: c.sink, Workers: c.workers}}
			if got := r.stageSize(); got != c.want {
				t.Errorf("stageSize = %d, want %d", got, c.want)
			}
		})
	}
}
