package engine

import (
	"sync"
	"time"

	"convpipe/pipeline"
)

// startProgress reports progress every ProgressEvery, if the run has an
// OnProgress; the function it returns stops it and reports once more.
func (r *runner) startProgress() func() {
	if r.opt.OnProgress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { r.progressLoop(done) })
	return func() {
		close(done)
		wg.Wait()
		r.opt.OnProgress(r.progress())
	}
}

func (r *runner) progressLoop(done <-chan struct{}) {
	t := time.NewTicker(r.opt.ProgressEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			r.opt.OnProgress(r.progress())
		}
	}
}

func (r *runner) progress() Progress {
	r.mu.Lock()
	p := Progress{
		Elapsed:      time.Since(r.start),
		ObjectsDone:  r.objectsDone,
		BytesDone:    r.bytesDone,
		BytesTotal:   r.bytesTotal,
		ReadDone:     r.readDone,
		ToSend:       r.toSend,
		Sent:         r.sent,
		ObjectsTotal: r.objectsTotal,
	}
	rowsRead, rowsDecided, bytesRead, bytesSkipped := r.rowsRead, r.rowsDecided, r.bytesRead, r.bytesSkipped
	for _, o := range r.objects {
		p.Counts.Add(o.sum.Counts)
	}
	r.mu.Unlock()
	p.EstimatedToSend = p.ToSend
	// Extrapolate: the rows still to come (from the bytes not yet read)
	// hold orders to send in the proportion seen so far.
	if rowsDecided > 0 {
		estRows := float64(rowsRead)
		if toRead := p.BytesTotal - bytesSkipped; !p.ReadDone && bytesRead > 0 && toRead > bytesRead {
			estRows = float64(rowsRead) * float64(toRead) / float64(bytesRead)
		}
		if est := int64(float64(p.ToSend) * estRows / float64(rowsDecided)); est > p.ToSend {
			p.EstimatedToSend = est
		}
	}
	if pc, ok := r.opt.Sink.(pipeline.Pacer); ok {
		p.Pace = pc.Pace()
	}
	left := p.EstimatedToSend - p.Sent
	if p.Pace.PerSecond > 0 && left > 0 {
		p.ETA = time.Duration(float64(left) / p.Pace.PerSecond * float64(time.Second))
		if w := time.Until(p.Pace.WaitingUntil); w > 0 {
			p.ETA += w
		}
	}
	return p
}
