package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"convpipe/pipeline"
	"convpipe/pipeline/group"
)

// readObject reads obj, unless it was processed before or another run
// holds it (then it reports held: see claim.go).
func (r *runner) readObject(ctx context.Context, obj pipeline.Object, jobs chan<- job) (held bool) {
	o := &objectState{obj: obj, sum: pipeline.ObjectSummary{Key: obj.Key}}
	if r.unchanged(ctx, o) || r.fatalErr() != nil {
		return false
	}
	if r.claimObject(ctx, obj) {
		return true
	}
	if r.fatalErr() != nil {
		return false
	}
	if r.claimsObjects() && (r.unchanged(ctx, o) || r.fatalErr() != nil) {
		// Processed by the run that held it until a moment ago.
		r.releaseObject(obj)
		return false
	}
	r.mu.Lock()
	r.objects = append(r.objects, o)
	o.outstanding++ // held by the reader until the object is read
	r.mu.Unlock()

	ok := r.readRows(ctx, o, jobs)

	r.mu.Lock()
	o.readDone = ok
	r.objectsDone++
	r.bytesDone += obj.Size
	if ctx.Err() == nil {
		// Read to its end, or to a file error: no more rows come from it.
		// A stopped run keeps where it was, for the estimate of what is left.
		r.bytesRead += obj.Size
		r.bytesReading = 0
	}
	r.mu.Unlock()
	r.release(o, false)
	return false
}

// unchanged reports whether the ledger has o's object as processed before
// (unless the run reads everything), and then counts it as unchanged. A
// ledger failure is fatal.
func (r *runner) unchanged(ctx context.Context, o *objectState) bool {
	if r.opt.All || r.opt.Ledger == nil {
		return false
	}
	done, err := r.opt.Ledger.ObjectDone(ctx, o.obj)
	if err != nil {
		r.setFatal(fmt.Errorf("ledger: %s: %w", o.obj.Key, err))
		return false
	}
	if !done {
		return false
	}
	o.sum.Unchanged = true
	r.mu.Lock()
	r.bytesSkipped += o.obj.Size
	r.objects = append(r.objects, o)
	r.objectsDone++
	r.bytesDone += o.obj.Size
	r.mu.Unlock()
	return true
}

// fileError records that obj could not be read (or read to its end).
func (r *runner) fileError(o *objectState, err error) {
	// The ref names the object; the text need not say it again.
	msg := pipeline.Message{Text: strings.TrimPrefix(err.Error(), o.obj.Key+": "), Refs: []pipeline.Ref{{Object: o.obj.Key}}}
	r.mu.Lock()
	o.sum.Error = err.Error()
	r.mu.Unlock()
	r.log.Error("cannot read object", "object", o.obj.Key, "err", err)
	if r.opt.OnRowError != nil {
		r.opt.OnRowError(msg)
	}
	r.put(pipeline.Entry{Key: pipeline.Key{EventType: "!file", OrderID: o.obj.Key}, State: pipeline.StateInvalid, Messages: []pipeline.Message{msg}, Refs: msg.Refs})
}

// flushRows is how many rows a reader counts before it adds them to the
// run's counts (and samples its position, for the estimate of what is
// left): often enough that the estimate follows a slow run.
const flushRows = 256

// readRows reads, groups, maps and decides the orders of one object. It
// reports whether the object was read to its end.
func (r *runner) readRows(ctx context.Context, o *objectState, jobs chan<- job) bool {
	rr, err := r.opt.Source.Open(ctx, o.obj)
	if err != nil {
		if ctx.Err() == nil {
			r.fileError(o, err)
		}
		return false
	}
	defer rr.Close()
	if rr.Header().Len() == 0 {
		return true // an empty object: zero rows, not an error
	}
	if err := r.opt.Mapper.CheckHeader(o.obj, rr.Header()); err != nil {
		r.fileError(o, err)
		return false
	}
	pipe := r.newOrderPipe(ctx, o, jobs)
	defer pipe.close()
	g := group.New(r.opt.Group, orderKeyer(r.opt.Mapper), pipe.order)
	defer g.Close()
	var rows, rowErrs int64
	pos, _ := rr.(pipeline.Positioner)
	flush := func() {
		reading := 0.0
		if pos != nil {
			reading = pos.Position() * float64(o.obj.Size)
		}
		r.count(o, func(c *pipeline.Counts) {
			c.Rows += rows
			c.RowErrors += rowErrs
			r.rowsRead += rows
			r.bytesReading = reading
		})
		rows, rowErrs = 0, 0
	}
	defer flush()
	for {
		if rows&1023 == 0 && ctx.Err() != nil {
			return false
		}
		row, err := rr.Next()
		if err == io.EOF {
			flush()
			break
		}
		if err != nil {
			// re is declared here: errors.As moves it to the heap, which
			// would cost every row an allocation.
			var re *pipeline.RowError
			if errors.As(err, &re) {
				rowErrs++
				pipe.rowError(re)
				continue
			}
			// A file error is reported once the orders before it are
			// decided.
			pipe.close()
			if ctx.Err() == nil {
				r.fileError(o, err)
			}
			return false
		}
		rows++
		if err := g.Add(row); err != nil {
			pipe.close()
			if ctx.Err() == nil && r.fatalErr() == nil {
				r.fileError(o, err)
			}
			return false
		}
		if rows >= flushRows {
			flush()
		}
	}
	if err := g.Flush(); err != nil {
		pipe.close()
		if ctx.Err() == nil && r.fatalErr() == nil {
			r.fileError(o, err)
		}
		return false
	}
	if err := pipe.close(); err != nil {
		return false
	}
	return ctx.Err() == nil && r.fatalErr() == nil
}

// orderKeyer returns the order-key function of m for one object's rows:
// its OrderKeyer when it has one (mapping.Mapping's, which builds a key of
// several columns once per order instead of once per line), else
// m.OrderKey.
func orderKeyer(m pipeline.Mapper) func(pipeline.Row) string {
	if k, ok := m.(interface {
		OrderKeyer() func(pipeline.Row) string
	}); ok {
		return k.OrderKeyer()
	}
	return m.OrderKey
}
