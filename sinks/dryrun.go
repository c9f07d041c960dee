package sinks

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"

	"convpipe/pipeline"
)

// DryRun is a sink that sends nothing: it writes, for each conversion,
// one JSON line with exactly what would be sent:
//
//	{"key":"EventType/OrderID","body":"<form body>","fields":{"Name":"value",...}}
//
// with the fields in the body's order. It is safe for concurrent use;
// lines are never interleaved.
//
// Its outcomes are not final: every Outcome has State pipeline.StatePending
// (nothing was accepted or refused) and must not be written to the ledger.
type DryRun struct {
	mu sync.Mutex
	w  io.Writer
	n  int64
}

var _ pipeline.Sink = (*DryRun)(nil)

// NewDryRun returns a dry-run sink writing to w. The caller closes w.
func NewDryRun(w io.Writer) *DryRun { return &DryRun{w: w} }

// Send writes the conversion's line and returns a pending Outcome. An
// error (wrapping pipeline.ErrFatal) means the line could not be written.
func (d *DryRun) Send(ctx context.Context, c *pipeline.Conversion) (pipeline.Outcome, error) {
	out := pipeline.Outcome{Key: c.Key, State: pipeline.StatePending, Messages: msgs("dry run: not sent")}
	if ctx.Err() != nil {
		out.Messages = msgs("stopped before an answer")
		return out, nil
	}
	line := dryRunLine(c)
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.w.Write(line); err != nil {
		return out, fmt.Errorf("dry run: write: %w: %w", err, pipeline.ErrFatal)
	}
	d.n++
	return out, nil
}

// Count returns the number of lines written.
func (d *DryRun) Count() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

func dryRunLine(c *pipeline.Conversion) []byte {
	str := func(s string) []byte {
		b, _ := json.Marshal(s)
		return b
	}
	b := make([]byte, 0, 512)
	b = append(b, `{"key":`...)
	b = append(b, str(c.Key.String())...)
	b = append(b, `,"body":`...)
	b = append(b, str(c.Encode())...)
	b = append(b, `,"fields":{`...)
	for i, f := range c.Form() {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, str(f.Name)...)
		b = append(b, ':')
		b = append(b, str(f.Value)...)
	}
	return append(b, "}}\n"...)
}

// Discard is a sink for benchmarks: it sends nothing, counts, and answers
// every conversion as accepted. It is safe for concurrent use.
type Discard struct{ n atomic.Int64 }

var _ pipeline.Sink = (*Discard)(nil)

// Send counts the conversion and returns an accepted Outcome.
func (d *Discard) Send(_ context.Context, c *pipeline.Conversion) (pipeline.Outcome, error) {
	n := d.n.Add(1)
	return pipeline.Outcome{Key: c.Key, State: pipeline.StateAccepted, Attempts: 1, HTTPStatus: 200,
		SubmissionID: "discard-" + strconv.FormatInt(n, 10)}, nil
}

// Count returns the number of conversions sent.
func (d *Discard) Count() int64 { return d.n.Load() }
