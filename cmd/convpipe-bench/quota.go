package main

import (
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"convpipe/sim"
)

// sendRun is one `convpipe run` against the simulator in this process.
type sendRun struct {
	res      result
	requests []sim.Request // POSTs, by arrival
	conns    int
	cmd      string
}

// sendConfig writes the configuration of a real run to the simulator at
// url and returns its file; the run's ledger starts empty.
func (b *bench) sendConfig(name, url, rate string, burst, workers int) (string, error) {
	path, err := b.data.path(dataSend)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(b.work, name)
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	cfg := filepath.Join(dir, "config.yaml")
	return cfg, writeConfig(cfg, map[string]any{
		"source.location": path,
		"group.mode":      "sorted",
		"sink.base_url":   url,
		"sink.rate":       rate,
		"sink.burst":      burst,
		"sink.workers":    workers,
		"ledger.path":     filepath.Join(dir, "ledger.db"),
		"run.progress":    "off",
	})
}

// send runs convpipe against s for d; during, if set, is called once the
// first request has arrived.
func (b *bench) send(s *sim.Server, cfg string, d time.Duration, during func(first time.Time)) (sendRun, error) {
	c := child{
		Args: []string{b.convpipe, "run", "--config", cfg, "--max-duration", d.String(), "--log-level", "warn"},
		Env:  []string{"IMPACT_ACCOUNT_SID=" + sim.DefaultAccountSID, "IMPACT_AUTH_TOKEN=" + sim.DefaultAuthToken},
		OK:   []int{0, 3},
	}
	done := make(chan struct{})
	if during != nil {
		go func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(10 * time.Millisecond):
				}
				if rs := s.Requests(); len(rs) > 0 {
					during(rs[0].Time)
					return
				}
			}
		}()
	}
	res, err := c.run()
	close(done)
	if err != nil {
		return sendRun{}, err
	}
	var posts []sim.Request
	for _, r := range s.Requests() {
		if r.Method == http.MethodPost {
			posts = append(posts, r)
		}
	}
	slices.SortFunc(posts, func(a, b sim.Request) int { return a.Time.Compare(b.Time) })
	return sendRun{res: res, requests: posts, conns: s.Connections(), cmd: c.command()}, nil
}

// maxInWindow returns the most requests that arrived within any span of
// length w.
func maxInWindow(rs []sim.Request, w time.Duration) int {
	best, lo := 0, 0
	for hi := range rs {
		for rs[hi].Time.Sub(rs[lo].Time) >= w {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

func countStatus(rs []sim.Request, from, to time.Time, status int) (n, all int) {
	for _, r := range rs {
		if r.Time.Before(from) || !r.Time.Before(to) {
			continue
		}
		all++
		if r.Status == status {
			n++
		}
	}
	return n, all
}

const (
	quotaRate      = 200
	quotaBurst     = 1
	quotaWorkers   = 20
	quotaFor       = 60 * time.Second
	quotaMinuteFor = 30 * time.Second
)

// quotaStats is what the simulator saw of one run at the quota.
type quotaStats struct {
	cmd               string
	requests, steady  int
	span              time.Duration
	rate              float64
	steady429, all429 int
	burst, burstLimit int
	perSecond         string
	// edges is how the arrivals in the last and the first 50 ms of each
	// window compare with an average 50 ms (1-second windows only).
	edges string
	conns int
	cpu   time.Duration
}

// steady runs convpipe for d against a simulator that allows quota
// requests per window, with 50 ms ± 50% latency.
func (b *bench) steady(name string, window time.Duration, quota int, d time.Duration) (quotaStats, error) {
	s := sim.New(sim.Config{Quota: quota, Window: window, Faults: sim.Faults{Latency: 50 * time.Millisecond, LatencyJitter: 25 * time.Millisecond}})
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		return quotaStats{}, err
	}
	defer s.Close()
	cfg, err := b.sendConfig(name, url, fmt.Sprintf("%d/s", quotaRate), quotaBurst, quotaWorkers)
	if err != nil {
		return quotaStats{}, err
	}
	run, err := b.send(s, cfg, d, nil)
	if err != nil {
		return quotaStats{}, err
	}
	rs := run.requests
	if len(rs) < 2 {
		return quotaStats{}, fmt.Errorf("%s: only %d requests arrived", name, len(rs))
	}
	first, last := rs[0].Time, rs[len(rs)-1].Time
	from, to := first.Add(time.Second), last.Add(-time.Second)
	q := quotaStats{cmd: run.cmd, requests: len(rs), span: last.Sub(first), conns: run.conns, cpu: run.res.CPU(), perSecond: perSecond(rs)}
	q.steady429, q.steady = countStatus(rs, from, to, http.StatusTooManyRequests)
	q.all429, _ = countStatus(rs, first, last.Add(time.Nanosecond), http.StatusTooManyRequests)
	q.rate = float64(q.steady) / to.Sub(from).Seconds()
	q.burst = maxInWindow(rs, 100*time.Millisecond)
	if window == time.Second {
		q.edges = windowEdges(rs, from, to, window, 50*time.Millisecond)
	}
	q.burstLimit = int(math.Ceil(quotaRate*0.1)) + quotaBurst
	b.logf("%s: %d requests, steady %.1f/s, 429 steady %d all %d, max/100ms %d, conns %d", name, q.requests, q.rate, q.steady429, q.all429, q.burst, q.conns)
	return q, nil
}

func quotaWhy(one, minute quotaStats) string {
	if one.rate >= 0.99*quotaRate {
		return "the token bucket paces at the quota; the gate on the server's Remaining holds requests only when the window is spent."
	}
	return "near the end of each window the requests in flight may be counted in it or in the next, and the client cannot tell which: the gate holds back once what the server counted plus what is in flight fills the window, and opens at the earliest reset any answer of the window announced, so each window loses up to one latency (50 ms of 1 s: 5%; the arrivals in each window's " + one.edges + "); with a 1-minute window that is 50 ms of 60 s, and with the API's hour-long windows 50 ms of 3,600 s (see part 3)."
}

// quota is figure 3: the configured quota against a simulator that keeps
// it, with 50 ms ± 50% latency; then a window that closes mid-run.
func (b *bench) quota() error {
	sec := &section{Title: "3. Quota use against the simulator"}
	sec.Text = append(sec.Text, quotaIntro())
	one, err := b.steady("quota", time.Second, quotaRate, quotaFor)
	if err != nil {
		return err
	}
	minute, err := b.steady("quota-minute", time.Minute, quotaRate*60, quotaMinuteFor)
	if err != nil {
		return err
	}
	sec.Commands = append(sec.Commands, one.cmd)
	sec.Table = quotaTable(one, minute)
	sec.After = append(sec.After, quotaWindowsText(minute))
	b.quotaVerdicts(one, minute)

	// The window closes mid-run.
	c, err := b.closeWindow()
	if err != nil {
		return err
	}
	sec.After = append(sec.After, c.text())
	sec.Commands = append(sec.Commands, c.cmd)
	b.report.section(sec)
	b.closeVerdicts(c)
	return nil
}

// quotaIntro is the paragraph that opens figure 3.
func quotaIntro() string {
	return fmt.Sprintf(
		"`convpipe run` (the built binary) sends to the API simulator (package sim, in the suite's process) that allows %d requests per 1-second window and answers after 50 ms ± 25 ms (50%%). "+
			"convpipe is configured with the same quota (`sink.rate: %d/s`, `sink.burst: %d`, `sink.workers: %d`, enough to keep %d requests of up to 75 ms in flight) and stopped by `--max-duration %s`. "+
			"A second run of %s holds the same rate against a simulator that counts the quota per 1-minute window (%d a minute), as the API counts it per hour. "+
			"The figures come from the simulator's record of every request: its arrival time and its answer. "+
			"*Steady state* leaves out the first and the last second.", quotaRate, quotaRate, quotaBurst, quotaWorkers, quotaRate*75/1000, quotaFor, quotaMinuteFor, quotaRate*60)
}

// quotaTable is figure 3's table: the run with a 1-second window beside
// the run with a 1-minute window.
func quotaTable(one, minute quotaStats) [][]string {
	table := [][]string{{"", fmt.Sprintf("%d per 1-second window, %s", quotaRate, quotaFor), fmt.Sprintf("%d per 1-minute window, %s", quotaRate*60, quotaMinuteFor)}}
	for _, row := range []struct {
		name string
		f    func(q quotaStats) string
	}{
		{"Requests", func(q quotaStats) string { return fmtInt(int64(q.requests)) }},
		{"First to last request", func(q quotaStats) string { return fmtSec(q.span) }},
		{"Steady-state rate", func(q quotaStats) string {
			return fmt.Sprintf("%.1f/s (%.1f%% of %d/s)", q.rate, 100*q.rate/quotaRate, quotaRate)
		}},
		{"Requests per 1-second window (min / median / max, whole seconds)", func(q quotaStats) string { return q.perSecond }},
		{"Arrivals at each window's edges", func(q quotaStats) string {
			if q.edges == "" {
				return "— (one window boundary every minute)"
			}
			return q.edges
		}},
		{"429 answers in steady state / in all", func(q quotaStats) string { return fmt.Sprintf("%d / %d", q.steady429, q.all429) }},
		{"Most requests in any 100 ms", func(q quotaStats) string {
			return fmt.Sprintf("%d (limit %d: %d/s × 0.1 s + burst %d)", q.burst, q.burstLimit, quotaRate, quotaBurst)
		}},
		{"TCP connections opened", func(q quotaStats) string { return fmt.Sprintf("%d (workers: %d)", q.conns, quotaWorkers) }},
		{"convpipe's CPU", func(q quotaStats) string { return fmtSec(q.cpu) }},
	} {
		table = append(table, []string{row.name, row.f(one), row.f(minute)})
	}
	return table
}

// quotaWindowsText explains why the 1-second and the 1-minute windows
// differ.
func quotaWindowsText(minute quotaStats) string {
	return fmt.Sprintf(
		"**Why the two windows differ.** The sink's pacer (sinks/pacer.go) lets a request pass only while the server's last Remaining exceeds the requests in flight, since each of them may still be counted in the current window. "+
			"Near a window's end that is too careful for this simulator, which counts a request when it answers, 25 to 75 ms after it arrived: requests sent in the window's last latency are counted in the next one, but the client cannot know where the server counts (an API gateway counts on arrival), so the gate holds them back, and opens again at the window's reset. "+
			"The reset comes as whole seconds, rounded up, from the moment of each answer; the pacer keeps the earliest of a window's answers, which is the closest to the real end. "+
			"So each window loses about one latency: 50 ms of a 1-second window is 5%%, of a 1-minute window 0.1%% (the second run: %.1f%%), of the API's hour-long windows 0.001%%.", 100*minute.rate/quotaRate)
}

// quotaVerdicts adds the verdicts of the steady runs: the rate, the 429
// answers and the bursts.
func (b *bench) quotaVerdicts(one, minute quotaStats) {
	b.report.add(verdict{
		Figure:   fmt.Sprintf("Quota use, %d/s (1-second window) for %s, 50 ms ± 50%% latency: steady-state rate", quotaRate, quotaFor),
		Measured: fmt.Sprintf("%.1f/s = %.1f%% (with a 1-minute window of %d: %.1f/s = %.1f%%)", one.rate, 100*one.rate/quotaRate, quotaRate*60, minute.rate, 100*minute.rate/quotaRate),
		Target:   "≥ 99% of the quota",
		Met:      met(one.rate >= 0.99*quotaRate),
		Why:      quotaWhy(one, minute),
	})
	b.report.add(verdict{
		Figure:   "Quota use: 429 answers in steady state",
		Measured: fmt.Sprintf("%d of %d (1-second window); %d of %d (1-minute window)", one.steady429, one.steady, minute.steady429, minute.steady),
		Target:   "0",
		Met:      met(one.steady429 == 0 && minute.steady429 == 0),
		Why:      "a request passes only while the server's last Remaining exceeds the requests in flight.",
	})
	b.report.add(verdict{
		Figure:   "Quota use: most requests arriving in any 100 ms",
		Measured: fmt.Sprintf("%d (1-second window), %d (1-minute window)", one.burst, minute.burst),
		Target:   fmt.Sprintf("≤ %d (%d/s × 100 ms + burst %d)", one.burstLimit, quotaRate, quotaBurst),
		Met:      met(one.burst <= one.burstLimit && minute.burst <= minute.burstLimit),
		Why:      burstWhy(one, minute),
	})
}

// The run whose window closes mid-run: closeAfter after the first
// request, the simulator closes its window for closeFor.
const (
	closeAfter, closeFor = 5 * time.Second, 10 * time.Second
	// Requests the client sent before the closing answer reached it
	// arrive within the answer's latency (at most 75 ms) of the closing:
	// allow 200 ms.
	closeLearn = 200 * time.Millisecond
)

// closeStats is what the simulator saw of the run whose window closed.
type closeStats struct {
	cmd string
	// inClosed is the requests that arrived from closeLearn after the
	// closing until the reset.
	inClosed int
	// early is the requests that arrived in the first closeLearn after
	// the closing, early429 those of them answered 429.
	early, early429 int
	// resumed is how long after the reset the first request arrived; -1:
	// none did.
	resumed time.Duration
}

// closeWindow runs convpipe for 22 s against a fresh simulator at the
// quota that closes its window mid-run.
func (b *bench) closeWindow() (closeStats, error) {
	s := sim.New(sim.Config{Quota: quotaRate, Window: time.Second, Faults: sim.Faults{Latency: 50 * time.Millisecond, LatencyJitter: 25 * time.Millisecond}})
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		return closeStats{}, err
	}
	defer s.Close()
	cfg, err := b.sendConfig("quota-close", url, fmt.Sprintf("%d/s", quotaRate), quotaBurst, quotaWorkers)
	if err != nil {
		return closeStats{}, err
	}
	var closedAt time.Time
	run, err := b.send(s, cfg, 22*time.Second, func(first time.Time) {
		time.Sleep(time.Until(first.Add(closeAfter)))
		closedAt = time.Now()
		s.CloseWindow(closeFor)
	})
	if err != nil {
		return closeStats{}, err
	}
	if closedAt.IsZero() {
		return closeStats{}, fmt.Errorf("quota: the window was never closed")
	}
	c := closeStatsOf(run.requests, closedAt)
	c.cmd = run.cmd
	b.logf("quota close: %d requests while closed, %d in the first %s (%d 429), resumed after %v", c.inClosed, c.early, closeLearn, c.early429, c.resumed)
	return c, nil
}

// closeStatsOf counts the requests around a window closed at closedAt
// for closeFor.
func closeStatsOf(rs []sim.Request, closedAt time.Time) closeStats {
	reopen := closedAt.Add(closeFor)
	var c closeStats
	_, c.inClosed = countStatus(rs, closedAt.Add(closeLearn), reopen, 0)
	c.early429, c.early = countStatus(rs, closedAt, closedAt.Add(closeLearn), http.StatusTooManyRequests)
	c.resumed = -1
	for _, r := range rs {
		if !r.Time.Before(reopen) {
			c.resumed = r.Time.Sub(reopen)
			break
		}
	}
	return c
}

// text is the paragraph on the run whose window closed.
func (c closeStats) text() string {
	return fmt.Sprintf(
		"**Window closing mid-run.** A second run of 22 s against a fresh simulator; %s after the first request the simulator closes its window for %s "+
			"(`sim.Server.CloseWindow`: the next answer says `X-RateLimit-Remaining: 0` with the reset %s away, every later request gets 429 until then). "+
			"Requests that arrived in the first %s after the closing were sent before its answer could reach convpipe (latency up to 75 ms): %d, of which %d got 429. "+
			"Requests that arrived from then until the reset: **%d**. The first request after the reset arrived **%s** after it.",
		closeAfter, closeFor, closeFor, closeLearn, c.early, c.early429, c.inClosed, fmtResume(c.resumed))
}

// closeVerdicts adds the verdicts of the run whose window closed.
func (b *bench) closeVerdicts(c closeStats) {
	b.report.add(verdict{
		Figure:   "Window closed mid-run (Remaining 0, reset in 10 s): requests while closed",
		Measured: fmt.Sprintf("%d (after the first %s)", c.inClosed, closeLearn),
		Target:   "0",
		Met:      met(c.inClosed == 0),
		Why:      "the answer with Remaining 0 closes the pacer's gate until the reset.",
	})
	b.report.add(verdict{
		Figure:   "Window closed mid-run: first request after the reset",
		Measured: fmtResume(c.resumed),
		Target:   "≤ 1 s after the reset",
		Met:      met(c.resumed >= 0 && c.resumed <= time.Second),
		Why:      "the gate reopens at the reset the answer announced (whole seconds, rounded up).",
	})
}

func fmtResume(d time.Duration) string {
	if d < 0 {
		return "never (no request after the reset)"
	}
	return d.Round(time.Millisecond).String()
}

// windowEdges compares the arrivals between from and to in the last and
// in the first edge of each window (windows aligned to multiples of
// window in Unix time, as the simulator's are) with those of an average
// span of that length.
func windowEdges(rs []sim.Request, from, to time.Time, window, edge time.Duration) string {
	var last, firstN, all int
	for _, r := range rs {
		if r.Time.Before(from) || !r.Time.Before(to) {
			continue
		}
		all++
		phase := time.Duration(r.Time.UnixNano() % int64(window))
		switch {
		case phase >= window-edge:
			last++
		case phase < edge:
			firstN++
		}
	}
	if all == 0 {
		return "—"
	}
	avg := float64(all) * float64(edge) / float64(window)
	return fmt.Sprintf("last %s: %.0f%%, first %s: %.0f%% of an average %s", edge, 100*float64(last)/avg, edge, 100*float64(firstN)/avg, edge)
}

// perSecond returns the min, median and max of requests per whole
// 1-second window (aligned as the simulator's), leaving out the first and
// last window.
func perSecond(rs []sim.Request) string {
	counts := map[int64]int{}
	for _, r := range rs {
		counts[r.Time.Unix()]++
	}
	var secs []int64
	for s := range counts {
		secs = append(secs, s)
	}
	slices.Sort(secs)
	if len(secs) <= 2 {
		return "—"
	}
	var v []int
	for _, s := range secs[1 : len(secs)-1] {
		v = append(v, counts[s])
	}
	slices.Sort(v)
	return fmt.Sprintf("%d / %d / %d", v[0], v[len(v)/2], v[len(v)-1])
}

const (
	costRate    = 500
	costWorkers = 4
	costFor     = 20 * time.Second
)

// cost is figure 4: convpipe's CPU per 1,000 requests at 500/s with no
// latency, and the TCP connections it opens.
func (b *bench) cost() error {
	sec := &section{Title: "4. Cost per request"}
	s := sim.New(sim.Config{})
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer s.Close()
	cfg, err := b.sendConfig("cost", url, fmt.Sprintf("%d/s", costRate), 1, costWorkers)
	if err != nil {
		return err
	}
	run, err := b.send(s, cfg, costFor, nil)
	if err != nil {
		return err
	}
	n := len(run.requests)
	if n == 0 {
		return fmt.Errorf("cost: no requests arrived")
	}
	c := costStats{run: run, n: n,
		cpuPerK:   run.res.CPU().Seconds() / float64(n) * 1000,
		connsPerK: float64(run.conns) / float64(n) * 1000,
		rate:      float64(n) / run.requests[n-1].Time.Sub(run.requests[0].Time).Seconds(),
	}
	b.logf("cost: %d requests at %.0f/s, cpu %.2fs (%.1f ms/1000), conns %d", n, c.rate, run.res.CPU().Seconds(), c.cpuPerK*1000, run.conns)
	floor, err := b.costFloor(url)
	if err != nil {
		return err
	}
	sec.Text = append(sec.Text, fmt.Sprintf(
		"`convpipe run` (the built binary) sends for %s at `sink.rate: %d/s` with %d workers to the simulator answering at once, without a quota. "+
			"The CPU is the convpipe process's whole user+system time from the kernel: reading and mapping the export, the ledger writes (the pending entries of the next sends, a batch per commit, then each outcome, durably, as its answer comes), the HTTP requests, the results file. "+
			"Connections are counted by the simulator (new connections accepted).", costFor, costRate, costWorkers))
	sec.Commands = append(sec.Commands, run.cmd)
	sec.Table = costTable(c, floor)
	// Where the CPU goes: the same run in `convpipe-bench send` (Run with
	// the configured sink and ledger) under the CPU profiler.
	split, err := b.sendProfile(url, cfg)
	if err != nil {
		return err
	}
	sec.CodeIntro = "Where convpipe's CPU goes, from a CPU profile of the same kind of run (`convpipe-bench send`: `engine.Run` wired with the configured sink and ledger as `convpipe run` wires it, 10 s against the same simulator): " + split.summary
	sec.Code = split.top
	b.report.section(sec)
	b.costVerdicts(c, floor, split)
	return nil
}

// costStats is figure 4's run: n requests, convpipe's CPU and the
// connections per 1,000 of them, and the rate they came at.
type costStats struct {
	run                      sendRun
	n                        int
	cpuPerK, connsPerK, rate float64
}

// costFloorStats is the floor of figure 4: a bare net/http client.
type costFloorStats struct {
	cmd     string
	n       int64
	cpu     time.Duration
	cpuPerK float64
}

// costFloor runs the floor: a bare net/http client at the same pace, same
// workers, against the same simulator at url.
func (b *bench) costFloor(url string) (costFloorStats, error) {
	fc := child{Args: []string{b.self, "floor", "http", url + "/Advertisers/" + sim.DefaultAccountSID + "/Conversions",
		strconv.Itoa(costRate), strconv.Itoa(costWorkers), costFor.String()}}
	fres, err := fc.run()
	if err != nil {
		return costFloorStats{}, fmt.Errorf("cost floor: %w", err)
	}
	var fn int64
	if _, err := fmt.Sscanf(strings.TrimSpace(fres.Stdout), "requests=%d", &fn); err != nil || fn == 0 {
		return costFloorStats{}, fmt.Errorf("cost floor: cannot read %q: %v", fres.Stdout, err)
	}
	f := costFloorStats{cmd: fc.command(), n: fn, cpu: fres.CPU(), cpuPerK: fres.CPU().Seconds() / float64(fn) * 1000}
	b.logf("cost floor: %d requests, cpu %.2fs (%.1f ms/1000)", fn, fres.CPU().Seconds(), f.cpuPerK*1000)
	return f, nil
}

// costTable is figure 4's table.
func costTable(c costStats, floor costFloorStats) [][]string {
	run := c.run
	return [][]string{{"", ""},
		{"Requests", fmtInt(int64(c.n))},
		{"Achieved rate", fmt.Sprintf("%.1f/s", c.rate)},
		{"convpipe CPU (user / system)", fmt.Sprintf("%s (%s / %s)", fmtSec(run.res.CPU()), fmtSec(run.res.User), fmtSec(run.res.Sys))},
		{"CPU per 1,000 requests", fmt.Sprintf("%.1f ms", c.cpuPerK*1000)},
		{"Floor: a bare net/http client at the same pace and workers (`" + floor.cmd + "`)", fmt.Sprintf("%.1f ms per 1,000 requests (%s CPU for %s requests)", floor.cpuPerK*1000, fmtSec(floor.cpu), fmtInt(floor.n))},
		{"Peak RSS", run.res.RSS()},
		{"TCP connections opened", fmt.Sprintf("%d (%.2f per 1,000 requests)", run.conns, c.connsPerK)},
	}
}

// costVerdicts adds figure 4's verdicts: the CPU and the connections per
// 1,000 requests.
func (b *bench) costVerdicts(c costStats, floor costFloorStats, split sendSplit) {
	run := c.run
	b.report.add(verdict{
		Figure:   fmt.Sprintf("CPU per 1,000 requests at %d/s, no latency", costRate),
		Measured: fmt.Sprintf("%.1f ms (%s CPU for %s requests); floor, a bare net/http client at the same pace: %.1f ms", c.cpuPerK*1000, fmtSec(run.res.CPU()), fmtInt(int64(c.n)), floor.cpuPerK*1000),
		Target:   "< 50 ms",
		Met:      met(c.cpuPerK < 0.050),
		Why: fmt.Sprintf("on this machine the target is below the floor: a bare net/http client that only sends, paced the same way, costs %.1f ms per 1,000 requests (each request wakes a paced goroutine, and the kernel's loopback and timer work is counted too). ", floor.cpuPerK*1000) +
			"Above the floor, convpipe commits the pending entries of the next sends a batch at a time, but commits every outcome durably as its answer comes in (the ledger's promise: a crash loses no answer), and at 500/s the answers are 2 ms apart, so they seldom share a commit: one SQLite (pure Go) commit and an fsync per request. " + split.summary,
	})
	b.report.add(verdict{
		Figure:   "TCP connections opened",
		Measured: fmt.Sprintf("%d for %s requests (%.2f per 1,000)", run.conns, fmtInt(int64(c.n)), c.connsPerK),
		Target:   fmt.Sprintf("≤ workers (%d) per 1,000 requests", costWorkers),
		Met:      met(c.connsPerK <= costWorkers && run.conns <= costWorkers),
		Why:      "the transport keeps as many idle connections as workers (keep-alive), and every answer body is read to its end.",
	})
}

// sendSplit is where the CPU of a sending run goes.
type sendSplit struct {
	top     string
	summary string
}

// sendProfile runs `convpipe-bench send` for 10 s against the simulator
// at url with the cost configuration and a fresh ledger, and reads its
// CPU profile.
func (b *bench) sendProfile(url, cfg string) (sendSplit, error) {
	dir := filepath.Join(b.work, "cost-profile")
	if err := os.RemoveAll(dir); err != nil {
		return sendSplit{}, err
	}
	pcfg := filepath.Join(dir, "config.yaml")
	path, err := b.data.path(dataSend)
	if err != nil {
		return sendSplit{}, err
	}
	if err := writeConfig(pcfg, map[string]any{
		"source.location": path, "group.mode": "sorted", "sink.base_url": url,
		"sink.rate": fmt.Sprintf("%d/s", costRate), "sink.burst": 1, "sink.workers": costWorkers,
		"ledger.path": filepath.Join(dir, "ledger.db"),
	}); err != nil {
		return sendSplit{}, err
	}
	prof := filepath.Join(b.work, "profile", "cpu-send.prof")
	if err := os.MkdirAll(filepath.Dir(prof), 0o755); err != nil {
		return sendSplit{}, err
	}
	c := child{
		Args: []string{b.self, "send", "-config", pcfg, "-max-duration", "10s", "-cpuprofile", prof},
		Env:  []string{"IMPACT_ACCOUNT_SID=" + sim.DefaultAccountSID, "IMPACT_AUTH_TOKEN=" + sim.DefaultAuthToken},
	}
	res, err := c.run()
	if err != nil {
		return sendSplit{}, err
	}
	var requests int
	fmt.Sscanf(res.Stdout, "requests=%d", &requests)
	cum, err := exec.Command(goTool(), "tool", "pprof", "-top", "-cum", "-nodecount=400", b.self, prof).Output()
	if err != nil {
		return sendSplit{}, fmt.Errorf("go tool pprof %s: %w", prof, err)
	}
	share := func(fn string) float64 {
		for _, l := range strings.Split(string(cum), "\n") {
			f := strings.Fields(l)
			if len(f) >= 6 && f[5] == fn {
				v, _ := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
				return v
			}
		}
		return 0
	}
	top, _ := exec.Command(goTool(), "tool", "pprof", "-top", "-cum", "-nodecount=25", b.self, prof).Output()
	led, snd := share("convpipe/ledger.(*Ledger).writer"), share("convpipe/sinks.(*Impact).Send")
	sched, gc := share("runtime.schedule"), share("runtime.gcBgMarkWorker")
	perK := 0.0
	if requests > 0 {
		perK = res.CPU().Seconds() / float64(requests) * 1e6
	}
	return sendSplit{
		top: "$ " + c.command() + "\n" + trimPprof(string(top)),
		summary: fmt.Sprintf("Of the profiled samples, the ledger's writer goroutine (SQLite and its fsyncs) takes %.0f%%, the sink's Send (HTTP) %.0f%%, the scheduler %.0f%%, the collector %.0f%% (that run: %d requests, %.0f ms CPU per 1,000).",
			led, snd, sched, gc, requests, perK),
	}, nil
}

func burstWhy(one, minute quotaStats) string {
	if one.burst <= one.burstLimit && minute.burst <= minute.burstLimit {
		return "x/time/rate's token bucket holds at most `burst` tokens; the simulator records arrival times."
	}
	return "x/time/rate bounds when requests are let go, not when they arrive: a worker woken a few milliseconds late sends right before the next one, and the simulator, which records arrival times, sees them closer together than the bucket let them go. Over a second the bound holds (see the per-second counts)."
}
