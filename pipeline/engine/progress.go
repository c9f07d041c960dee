package engine

import (
	"math"
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
		Exact:        r.readAll,
		ToSend:       r.toSend,
		Sent:         r.sent,
		ObjectsTotal: r.objectsTotal,
	}
	for _, o := range r.objects {
		p.Counts.Add(o.sum.Counts)
	}
	toCome := r.fc.toSend(r.rowsToCome())
	r.mu.Unlock()
	p.EstimatedToSend = p.ToSend + int64(math.Round(toCome))
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

// rowsToCome estimates the rows not yet decided: the rows of all the
// bytes to read, at the rows per byte read so far, less the rows decided.
// The rows read and the bytes read are taken together, when a reader adds
// its rows to the counts; the rows decided since then are part of them.
// It is 0 once every object was read. r.mu must be held.
func (r *runner) rowsToCome() float64 {
	if r.readAll {
		return 0
	}
	rows := float64(r.rowsRead)
	if read, toRead := r.bytesReadSoFar(); read > 0 && toRead > read {
		rows *= toRead / read
	}
	return max(rows-float64(r.rowsDecided), 0)
}

// bytesReadSoFar returns the bytes read so far, of the objects read to
// their end and of the one being read, and the bytes there are to read
// (of the objects not left out as unchanged). r.mu must be held.
func (r *runner) bytesReadSoFar() (read, toRead float64) {
	return float64(r.bytesRead) + r.bytesReading, float64(r.bytesTotal - r.bytesSkipped)
}

// notRead describes what a run that stopped did not read, nil when it
// read every object. r.mu must be held.
func (r *runner) notRead() *pipeline.NotRead {
	if !r.readDone || r.readAll {
		return nil
	}
	n := &pipeline.NotRead{Objects: r.objectsTotal - len(r.objects)}
	for _, o := range r.objects {
		if !o.readDone && !o.sum.Unchanged && o.sum.Error == "" {
			n.Objects++
		}
	}
	read, toRead := r.bytesReadSoFar()
	n.Bytes = int64(max(toRead-read, 0))
	n.EstimatedOrders = int64(math.Round(r.fc.toSend(r.rowsToCome())))
	if n.Objects == 0 && n.EstimatedOrders == 0 {
		return nil
	}
	return n
}
