package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"convpipe/pipeline/engine"
)

// progressReporter shows a run's progress: a bar redrawn in place on a
// terminal, plain log lines every interval otherwise (cron, CI).
type progressReporter struct {
	mu       sync.Mutex // serialises the bar and log lines on a terminal
	w        io.Writer
	tty      bool
	log      *slog.Logger
	interval time.Duration
	last     time.Time
	drawn    bool
	line     string // the bar as last drawn
}

// Write writes a log line; on a terminal it clears the bar first and draws
// it again below, so that the two never mix. Use it as the logger's writer.
func (p *progressReporter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty || !p.drawn {
		return p.w.Write(b)
	}
	fmt.Fprint(p.w, "\r\033[K")
	n, err := p.w.Write(b)
	fmt.Fprint(p.w, p.line)
	return n, err
}

// newProgressReporter returns a reporter writing to w; set its log before
// reporting when it is not on a terminal.
func newProgressReporter(w io.Writer, log *slog.Logger, interval time.Duration, mode string) *progressReporter {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	switch mode {
	case "bar":
		tty = true
	case "log", "off":
		tty = false
	}
	return &progressReporter{w: w, tty: tty, log: log, interval: interval}
}

// report is a engine.Options.OnProgress callback.
func (p *progressReporter) report(pr engine.Progress) {
	if p.tty {
		p.draw(pr)
		return
	}
	if time.Since(p.last) < p.interval && !pr.ReadDone {
		return
	}
	p.last = time.Now()
	attrs := []any{
		"objects", fmt.Sprintf("%d/%d", pr.ObjectsDone, pr.ObjectsTotal),
		"orders", pr.Counts.Orders, "sent", pr.Sent, "to_send", pr.EstimatedToSend,
		"accepted", pr.Counts.Accepted, "rejected", pr.Counts.Rejected, "failed", pr.Counts.Failed,
		"rate_per_s", fmt.Sprintf("%.3g", pr.Pace.PerSecond),
	}
	if pr.ETA > 0 {
		attrs = append(attrs, "eta", humanDuration(pr.ETA))
	}
	if w := time.Until(pr.Pace.WaitingUntil); w > 0 {
		attrs = append(attrs, "waiting_for_quota_until", pr.Pace.WaitingUntil.Format(time.RFC3339))
	}
	p.log.Info("progress", attrs...)
}

func (p *progressReporter) draw(pr engine.Progress) {
	total := pr.EstimatedToSend
	frac := 0.0
	if total > 0 {
		frac = float64(pr.Sent) / float64(total)
	} else if pr.ReadDone {
		frac = 1
	}
	if frac > 1 {
		frac = 1
	}
	const width = 24
	n := int(frac * width)
	bar := strings.Repeat("█", n) + strings.Repeat("░", width-n)
	of := fmt.Sprintf("%d/%d", pr.Sent, total)
	if !pr.Exact {
		of = fmt.Sprintf("%d/~%d", pr.Sent, total)
	}
	line := fmt.Sprintf("%s %s orders sent · %d read · %.3g/s", bar, of, pr.Counts.Orders, pr.Pace.PerSecond)
	if w := time.Until(pr.Pace.WaitingUntil); w > 0 {
		line += fmt.Sprintf(" · quota window closed, waiting until %s", pr.Pace.WaitingUntil.Format("15:04:05"))
	}
	if pr.ETA > 0 {
		line += " · ETA " + humanDuration(pr.ETA)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line = line
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
}

// done ends the bar's line so that what follows starts on a new one.
func (p *progressReporter) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
	p.drawn = false
}
