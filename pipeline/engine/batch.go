package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"convpipe/pipeline"
)

// The batch way (Options.Batch): the orders decided for sending go into
// files of PerFile orders. Each file is recorded before its upload (the
// file, with its content, and its orders pending, in one transaction),
// then uploaded, then recorded as uploaded with its orders accepted.
// A run starts by uploading the files an earlier run recorded and did not
// see uploaded (the upload finds a file already there and does not send
// it again), so an order is never put into a second file; then it learns
// what impact made of the files uploaded (Options.BatchStatus), line by
// line, and does so again at its end.

// batchLedger returns the run's ledger as a BatchLedger.
func (r *runner) batchLedger() pipeline.BatchLedger {
	bl, _ := r.opt.Ledger.(pipeline.BatchLedger)
	return bl
}

// batcher collects the jobs into files and sends each; it is the only
// sender of a batch run.
func (r *runner) batcher(jobs <-chan job) {
	per := max(r.opt.Batch.PerFile(), 1)
	group := make([]job, 0, min(per, 1<<14))
	for j := range jobs {
		group = append(group, j)
		if len(group) >= per {
			r.sendFile(group)
			group = group[:0]
		}
	}
	if len(group) > 0 {
		r.sendFile(group)
	}
}

// sendFile writes, records and uploads one file of the orders of group.
func (r *runner) sendFile(group []job) {
	defer func() {
		r.mu.Lock()
		for _, j := range group {
			delete(r.inflight, j.conv.Key)
		}
		r.mu.Unlock()
	}()
	if r.readCtx.Err() != nil || r.fatalErr() != nil {
		for _, j := range group {
			r.notSent(j)
		}
		return
	}
	byKey := make(map[pipeline.Key]job, len(group))
	convs := make([]*pipeline.Conversion, len(group))
	for i, j := range group {
		byKey[j.conv.Key], convs[i] = j, j.conv
	}
	f, outs := r.opt.Batch.Encode(convs)
	for _, out := range outs {
		r.conclude(byKey[out.Key], pendingEntry(byKey[out.Key]), out)
	}
	if f == nil {
		return
	}
	ctx := context.WithoutCancel(r.sendCtx)
	if err := r.freshName(ctx, f); err != nil {
		r.setFatal(fmt.Errorf("%w: %w", ErrLedgerWrite, err))
		r.notSentFile(f, byKey)
		return
	}
	rec, lines, pend := r.fileRecord(f, byKey)
	if err := r.batchLedger().RecordBatch(ctx, rec, lines, pend); err != nil {
		r.setFatal(fmt.Errorf("%w: %w", ErrLedgerWrite, err))
		r.notSentFile(f, byKey)
		return
	}
	already, err := r.opt.Batch.Upload(r.sendCtx, f)
	if err != nil {
		err = fmt.Errorf("batch file %s (%d orders) is recorded and not uploaded; the next run uploads it: %w", f.Name, len(f.Orders), err)
		if r.sendCtx.Err() != nil && !errors.Is(err, pipeline.ErrFatal) {
			// The run was stopped (signal, deadline) during the upload: a
			// stop, not a failure.
			r.stop(err)
		} else {
			r.setFatal(err)
		}
		r.notSentFile(f, byKey)
		return
	}
	r.log.Info("batch file uploaded", "file", f.Name, "orders", len(f.Orders), "lines", rec.Lines, "already_there", already)
	rec.State = pipeline.BatchUploaded
	done := make([]pipeline.Entry, len(pend))
	for i, e := range pend {
		done[i], _ = settle(e, uploadedOutcome(f.Name))
	}
	if err := r.batchLedger().UpdateBatch(ctx, rec, done); err != nil {
		r.setFatal(fmt.Errorf("%w: %w", ErrLedgerWrite, err))
		r.notSentFile(f, byKey)
		return
	}
	for _, o := range f.Orders {
		j := byKey[o.Key]
		out := uploadedOutcome(f.Name)
		out.Key = o.Key
		// Its object is not done: impact's outcome is still to come, and
		// a refused file sends the order again from its object.
		r.counted(j, out, true)
	}
}

// freshName renames f when impact refused a file of its name before: the
// same orders in the same order make the same content, and impact takes a
// name once. The new name follows from the content and the refusals
// (convpipe_<hash>_r2.csv), so that it is deterministic too.
func (r *runner) freshName(ctx context.Context, f *pipeline.BatchFile) error {
	refused := map[string]bool{}
	err := r.batchLedger().BatchFiles(ctx, func(rec pipeline.BatchRecord) error {
		refused[rec.Name] = true
		return nil
	}, pipeline.BatchRefused)
	if err != nil || !refused[f.Name] {
		return err
	}
	base := strings.TrimSuffix(f.Name, ".csv")
	for n := 2; ; n++ {
		if name := fmt.Sprintf("%s_r%d.csv", base, n); !refused[name] {
			f.Name = name
			return nil
		}
	}
}

// fileRecord is what RecordBatch writes of f: the file, its orders'
// places and their pending entries.
func (r *runner) fileRecord(f *pipeline.BatchFile, byKey map[pipeline.Key]job) (pipeline.BatchRecord, []pipeline.BatchLine, []pipeline.Entry) {
	rec := pipeline.BatchRecord{Name: f.Name, State: pipeline.BatchWritten, Orders: len(f.Orders), Lines: f.Lines(), Data: f.Data, RunID: r.opt.RunID}
	lines := make([]pipeline.BatchLine, len(f.Orders))
	pend := make([]pipeline.Entry, len(f.Orders))
	for i, o := range f.Orders {
		lines[i] = pipeline.BatchLine{Key: o.Key, File: f.Name, First: o.First, Last: o.Last}
		e := r.stamp(pendingEntry(byKey[o.Key]))
		e.Attempts++
		e.SubmissionID, e.QueuedURI, e.Messages = f.Name, "", nil
		pend[i] = e
	}
	return rec, lines, pend
}

// uploadedOutcome is the outcome of an order whose file is uploaded.
func uploadedOutcome(file string) pipeline.Outcome {
	return pipeline.Outcome{State: pipeline.StateAccepted, SubmissionID: file}
}

// conclude records and counts the outcome of a job that got one without
// an upload (a conversion no file can carry).
func (r *runner) conclude(j job, e pipeline.Entry, out pipeline.Outcome) {
	e, unfinished := settle(e, out)
	if !r.put(e) {
		r.notSent(j)
		return
	}
	r.counted(j, out, unfinished)
}

// counted reports and counts one job's outcome and ends it.
func (r *runner) counted(j job, out pipeline.Outcome, unfinished bool) {
	out.Key = j.conv.Key
	if r.opt.OnOutcome != nil {
		r.opt.OnOutcome(out)
	}
	r.mu.Lock()
	r.sent++
	r.mu.Unlock()
	delta := outcomeCounts(out)
	r.count(j.obj, func(c *pipeline.Counts) { c.Add(delta) })
	r.release(j.obj, unfinished)
}

// notSentFile ends the jobs of a file not uploaded: their entries stay
// as the ledger has them (pending in a file recorded, which the next run
// uploads, or as before).
func (r *runner) notSentFile(f *pipeline.BatchFile, byKey map[pipeline.Key]job) {
	for _, o := range f.Orders {
		r.notSent(byKey[o.Key])
	}
}

// resumeBatches uploads the files that earlier runs recorded and did not
// see uploaded (the upload skips a file already there) and records them
// as uploaded. An error stops the run before it reads anything: a new
// file must not take those orders.
func (r *runner) resumeBatches(ctx context.Context) error {
	bl := r.batchLedger()
	var recs []pipeline.BatchRecord
	if err := bl.BatchFiles(ctx, func(rec pipeline.BatchRecord) error { recs = append(recs, rec); return nil }, pipeline.BatchWritten); err != nil {
		return fmt.Errorf("%w: %w", ErrLedgerWrite, err)
	}
	for _, rec := range recs {
		lines, err := bl.BatchLines(ctx, rec.Name)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrLedgerWrite, err)
		}
		f := &pipeline.BatchFile{Name: rec.Name, Data: rec.Data}
		for _, ln := range lines {
			f.Orders = append(f.Orders, pipeline.BatchOrder{Key: ln.Key, First: ln.First, Last: ln.Last})
		}
		already, err := r.opt.Batch.Upload(ctx, f)
		if err != nil {
			return fmt.Errorf("batch file %s, recorded by run %s, is not known to be uploaded, and uploading it failed (its %d orders go in no other file): %w", rec.Name, rec.RunID, rec.Orders, err)
		}
		es, err := r.entriesOf(ctx, lines, func(e pipeline.Entry) bool {
			return e.State == pipeline.StatePending && e.SubmissionID == rec.Name
		})
		if err != nil {
			return err
		}
		for i := range es {
			es[i], _ = settle(es[i], uploadedOutcome(rec.Name))
			es[i] = r.stamp(es[i])
		}
		rec.State = pipeline.BatchUploaded
		if err := bl.UpdateBatch(ctx, rec, es); err != nil {
			return fmt.Errorf("%w: %w", ErrLedgerWrite, err)
		}
		r.log.Info("batch file of an earlier run uploaded", "file", rec.Name, "orders", rec.Orders, "already_there", already)
	}
	return nil
}

// entriesOf returns the entries of lines' orders that keep selects.
func (r *runner) entriesOf(ctx context.Context, lines []pipeline.BatchLine, keep func(pipeline.Entry) bool) ([]pipeline.Entry, error) {
	var es []pipeline.Entry
	for _, ln := range lines {
		e, found, err := r.opt.Ledger.Get(ctx, ln.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrLedgerWrite, err)
		}
		if found && keep(e) {
			es = append(es, e)
		}
	}
	return es, nil
}

// pollBatches learns what impact made of the files uploaded and records
// each order's outcome. A file impact has not processed yet waits for a
// later run; a failing read is logged and ends the polling (the outcomes
// are learned later), only a ledger failure is an error.
func (r *runner) pollBatches(ctx context.Context) error {
	if r.opt.BatchStatus == nil {
		return nil
	}
	bl := r.batchLedger()
	var recs []pipeline.BatchRecord
	if err := bl.BatchFiles(ctx, func(rec pipeline.BatchRecord) error { recs = append(recs, rec); return nil }, pipeline.BatchUploaded); err != nil {
		return fmt.Errorf("%w: %w", ErrLedgerWrite, err)
	}
	if len(recs) == 0 {
		return nil
	}
	names := make([]string, len(recs))
	for i, rec := range recs {
		names[i] = rec.Name
	}
	sts, err := r.opt.BatchStatus.BatchStatuses(ctx, names)
	if err != nil {
		r.log.Warn("cannot learn the outcome of the batch files now; a later run asks again", "files", len(recs), "err", err)
		return nil
	}
	for _, rec := range recs {
		st := sts[rec.Name]
		var lineErrs []pipeline.BatchLineError
		if batchProcessed(st) == batchDone && st.TotalErrors > 0 {
			if lineErrs, err = r.opt.BatchStatus.BatchErrors(ctx, st.BatchID); err != nil {
				r.log.Warn("cannot learn the outcome of the batch files now; a later run asks again", "file", rec.Name, "err", err)
				return nil
			}
		}
		if batchProcessed(st) == batchWaiting {
			r.log.Info("batch file not processed by impact yet (typically within 24 hours)", "file", rec.Name, "status", st.Status)
			continue
		}
		lines, err := bl.BatchLines(ctx, rec.Name)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrLedgerWrite, err)
		}
		es, err := r.entriesOf(ctx, lines, func(e pipeline.Entry) bool {
			return e.SubmissionID == rec.Name && (e.State == pipeline.StatePending || e.State == pipeline.StateAccepted)
		})
		if err != nil {
			return err
		}
		out, writes := batchOutcome(rec, st, lines, lineErrs, es)
		for i := range writes {
			writes[i] = r.stamp(writes[i])
		}
		if err := bl.UpdateBatch(ctx, out, writes); err != nil {
			return fmt.Errorf("%w: %w", ErrLedgerWrite, err)
		}
		r.log.Info("batch file processed by impact", "file", rec.Name, "state", out.State, "batch_id", st.BatchID,
			"records", st.TotalRecords, "errors", st.TotalErrors, "orders_changed", len(writes))
	}
	return nil
}

// What a file's status says of its processing.
const (
	batchWaiting = iota
	batchDone
	batchRefused
)

// batchProcessed reads a file's status: not taken, queued or in progress
// is waiting, as is a word impact does not document (a warning would be
// kinder than guessing); Complete is processed line by line; Failed,
// Error or Rejected refuse the whole file.
func batchProcessed(st pipeline.BatchStatus) int {
	if !st.Found {
		return batchWaiting
	}
	switch strings.ToLower(strings.TrimSpace(st.Status)) {
	case "complete", "completed":
		return batchDone
	case "failed", "error", "rejected":
		return batchRefused
	}
	return batchWaiting
}

// batchOutcome decides what a processed (or refused) file means for its
// orders; it is pure. es are the orders' entries that still name the
// file. An order with a line in error is rejected with the lines'
// reasons; the others stay accepted. A refused file fails every order it
// carried, for the next run to send again.
func batchOutcome(rec pipeline.BatchRecord, st pipeline.BatchStatus, lines []pipeline.BatchLine, errs []pipeline.BatchLineError, es []pipeline.Entry) (pipeline.BatchRecord, []pipeline.Entry) {
	rec.BatchID, rec.TotalRecords, rec.TotalErrors = st.BatchID, st.TotalRecords, st.TotalErrors
	byKey := make(map[pipeline.Key]pipeline.Entry, len(es))
	for _, e := range es {
		byKey[e.Key] = e
	}
	var writes []pipeline.Entry
	if batchProcessed(st) == batchRefused {
		rec.State, rec.Message = pipeline.BatchRefused, st.Message
		for _, ln := range lines {
			e, ok := byKey[ln.Key]
			if !ok {
				continue
			}
			e.State = pipeline.StateFailed
			e.Messages = []pipeline.Message{{Text: fmt.Sprintf("impact refused batch file %s as a whole (%s): %s; the next run sends this order again", rec.Name, cmpOr(st.Status, "refused"), cmpOr(st.Message, "no reason given"))}}
			writes = append(writes, e)
		}
		return rec, writes
	}
	rec.State = pipeline.BatchProcessed
	for _, ln := range lines {
		e, ok := byKey[ln.Key]
		if !ok {
			continue
		}
		var msgs []pipeline.Message
		for _, le := range errs {
			if le.Line >= ln.First && le.Line <= ln.Last {
				msgs = append(msgs, pipeline.Message{Field: fmt.Sprintf("line %d", le.Line), Text: le.Reason})
			}
		}
		if len(msgs) == 0 {
			if e.State != pipeline.StateAccepted {
				e.State = pipeline.StateAccepted
				writes = append(writes, e)
			}
			continue
		}
		e.State, e.Messages = pipeline.StateRejected, msgs
		writes = append(writes, e)
	}
	return rec, writes
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// errNoBatchLedger is the error of a batch run on a ledger without batch
// files.
var errNoBatchLedger = errors.New("engine: sending by batch files needs a ledger that keeps them")

// startBatches uploads what earlier runs left recorded and learns the
// outcomes impact has ready, before a batch run reads anything.
func (r *runner) startBatches(ctx context.Context) error {
	if r.opt.Batch == nil {
		return nil
	}
	// A wrong host key or credentials are found before any file is
	// recorded.
	if _, err := r.opt.Batch.Upload(ctx, nil); err != nil {
		return fmt.Errorf("batch: nothing recorded, nothing sent: %w", err)
	}
	if err := r.resumeBatches(ctx); err != nil {
		return err
	}
	return r.pollBatches(ctx)
}

// endBatches learns the outcomes impact has ready at the end of a batch
// run; the ledger failing is fatal.
func (r *runner) endBatches(ctx context.Context) {
	if r.opt.Batch == nil || r.fatalErr() != nil || ctx.Err() != nil {
		return
	}
	if err := r.pollBatches(context.WithoutCancel(ctx)); err != nil {
		r.setFatal(err)
	}
}
