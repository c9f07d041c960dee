package correct

import (
	"context"
	"fmt"
	"sync"

	"convpipe/pipeline"
)

// Store is the ledger corrections are kept in.
type Store interface {
	pipeline.Ledger
	pipeline.CorrectionLedger
}

// Detected counts what a Recorder saw in one run.
type Detected struct {
	// Accepted counts the orders of the run that impact had accepted
	// before (unchanged, changed, or now left out by a reversal filter):
	// the basis of the mass-change guard.
	Accepted int64 `json:"accepted"`
	// Planned counts the corrections planned; Manual and Refused those
	// that need a person.
	Planned int64 `json:"planned"`
	Manual  int64 `json:"manual"`
	Refused int64 `json:"refused"`
}

// Recorder is the engine's hooks for corrections in a run that sends:
// it keeps the lines of every payload impact accepts, and records the
// correction of every accepted order that changed or that a reversal
// filter now leaves out. Its methods are safe for concurrent use.
type Recorder struct {
	ledger Store
	runID  string

	mu      sync.Mutex
	sending map[pipeline.Key]pipeline.Lines
	det     Detected
	err     error
}

// NewRecorder returns the recorder of run runID on l.
func NewRecorder(l Store, runID string) *Recorder {
	return &Recorder{ledger: l, runID: runID, sending: map[pipeline.Key]pipeline.Lines{}}
}

// Detected returns the counts so far.
func (r *Recorder) Detected() Detected {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.det
}

// Err returns the first ledger error the recorder met: the run's
// corrections are then incomplete, and the run must say so.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *Recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
}

// Decided is the hook of a decision: action is the engine's ("send",
// "already-sent", "changed", "skip"), m the mapped order, hash its
// payload hash, prev the ledger's entry (nil when the ledger's index
// answered alone).
func (r *Recorder) Decided(ctx context.Context, action string, m pipeline.Mapped, hash string, prev *pipeline.Entry) {
	c := m.Conversion
	final := prev != nil && (prev.State == pipeline.StateAccepted || prev.State == pipeline.StateTracked || prev.State == pipeline.StateChanged)
	switch {
	case action == "send":
		r.mu.Lock()
		r.sending[c.Key] = pipeline.LinesOf(c, hash)
		r.mu.Unlock()
	case action == "already-sent":
		r.count(func(d *Detected) { d.Accepted++ })
	case action == "changed":
		r.count(func(d *Detected) { d.Accepted++ })
		now := pipeline.LinesOf(c, hash)
		r.record(ctx, c.Key, prev, func(e pipeline.Entry, accepted *pipeline.Lines) pipeline.Correction {
			if accepted == nil {
				return Unknown(c.Key, e, pipeline.CorrectAmount, &now, "")
			}
			return Detect(c.Key, *accepted, now)
		}, &now)
	case action == "skip" && final && m.Reversal != "":
		r.count(func(d *Detected) { d.Accepted++ })
		r.record(ctx, c.Key, prev, func(e pipeline.Entry, accepted *pipeline.Lines) pipeline.Correction {
			if accepted == nil {
				return Unknown(c.Key, e, pipeline.CorrectReversal, nil, m.Reversal)
			}
			return Reverse(c.Key, *accepted, m.Reversal)
		}, nil)
	case action == "skip" && final:
		r.count(func(d *Detected) { d.Accepted++ })
	}
}

func (r *Recorder) count(f func(*Detected)) {
	r.mu.Lock()
	f(&r.det)
	r.mu.Unlock()
}

// Outcome is the hook of a send's outcome: the lines of an accepted
// payload are kept (before the engine records the entry as accepted).
func (r *Recorder) Outcome(ctx context.Context, out pipeline.Outcome) {
	r.mu.Lock()
	l, ok := r.sending[out.Key]
	delete(r.sending, out.Key)
	r.mu.Unlock()
	if ok && out.State == pipeline.StateAccepted {
		if err := r.ledger.PutLines(ctx, out.Key, l); err != nil {
			r.fail(err)
		}
	}
}

// record records the correction that make builds for key, unless one
// for the same change is recorded already. now, when set, is kept as the
// lines of its payload.
func (r *Recorder) record(ctx context.Context, key pipeline.Key, prev *pipeline.Entry, make func(pipeline.Entry, *pipeline.Lines) pipeline.Correction, now *pipeline.Lines) {
	if err := r.recordErr(ctx, key, prev, make, now); err != nil {
		r.fail(fmt.Errorf("corrections: %s: %w", key, err))
	}
}

func (r *Recorder) recordErr(ctx context.Context, key pipeline.Key, prev *pipeline.Entry, make func(pipeline.Entry, *pipeline.Lines) pipeline.Correction, now *pipeline.Lines) error {
	if prev == nil {
		e, ok, err := r.ledger.Get(ctx, key)
		if err != nil || !ok {
			return err
		}
		prev = &e
	}
	var earlier []pipeline.Correction
	if err := r.ledger.Corrections(ctx, pipeline.CorrectionFilter{OrderID: key.OrderID}, func(c pipeline.Correction) error {
		if c.Key == key {
			earlier = append(earlier, c)
		}
		return nil
	}); err != nil {
		return err
	}
	var accepted *pipeline.Lines
	if l, ok, err := r.ledger.Lines(ctx, key, acceptedHash(*prev)); err != nil {
		return err
	} else if ok {
		accepted = &l
	}
	c := make(*prev, accepted)
	c.DetectedBy = r.runID
	todo, ok := Plan(c, earlier)
	if !ok {
		return nil
	}
	if now != nil {
		if err := r.ledger.PutLines(ctx, key, *now); err != nil {
			return err
		}
	}
	for _, s := range todo {
		s.RunID = r.runID
		if err := r.ledger.PutCorrection(ctx, s, nil); err != nil {
			return err
		}
	}
	r.count(func(d *Detected) {
		switch c.State {
		case pipeline.CorrectionManual:
			d.Manual++
		case pipeline.CorrectionRefused:
			d.Refused++
		default:
			d.Planned++
		}
	})
	return nil
}
