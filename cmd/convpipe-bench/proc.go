package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"convpipe/pipeline"
)

// usage is what one measured process (or part of this one) used.
type usage struct {
	Wall   time.Duration
	User   time.Duration
	Sys    time.Duration
	MaxRSS int64 // bytes; 0 when not measured
	// ParentRSS is the suite's own peak RSS when it started the child: a
	// child's Maxrss is never below it (Linux keeps the high-water mark
	// across exec), so a MaxRSS that does not exceed it says nothing.
	ParentRSS int64
}

// RSS returns the peak RSS for the report.
func (u usage) RSS() string {
	if u.MaxRSS == 0 {
		return "—"
	}
	if u.MaxRSS <= u.ParentRSS {
		return fmt.Sprintf("≤ %s (the suite's own)", fmtMiB(u.ParentRSS))
	}
	return fmtMiB(u.MaxRSS)
}

// CPU returns user plus system time.
func (u usage) CPU() time.Duration { return u.User + u.Sys }

// child is one run of a measured program.
type child struct {
	Args []string
	Env  []string // added to the environment
	// Summary, when set, is passed as --summary-json (convpipe) or
	// -summary-json (discard) and decoded after the run.
	Summary string
	// OK lists the exit codes that count as success (default 0).
	OK []int
}

// result is what a child run gave.
type result struct {
	usage
	Code    int
	Stdout  string
	Stderr  string
	Summary *pipeline.Summary
}

// run starts the child, waits for it and reads its resource usage from
// the kernel (getrusage of the reaped child: its peak RSS and CPU time).
func (c child) run() (result, error) {
	cmd := exec.Command(c.Args[0], c.Args[1:]...)
	cmd.Env = append(os.Environ(), c.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if c.Summary != "" {
		os.Remove(c.Summary)
	}
	parent := selfUsage().MaxRSS
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return result{}, fmt.Errorf("start %s: %w", c.Args[0], err)
	}
	werr := cmd.Wait()
	res := result{usage: usage{Wall: time.Since(start), ParentRSS: parent}, Stdout: stdout.String(), Stderr: stderr.String()}
	st := cmd.ProcessState
	if st == nil {
		return res, fmt.Errorf("%s: %w", c.command(), werr)
	}
	res.Code = st.ExitCode()
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		res.User = time.Duration(ru.Utime.Nano())
		res.Sys = time.Duration(ru.Stime.Nano())
		res.MaxRSS = ru.Maxrss * 1024 // KiB on Linux
	}
	ok := c.OK
	if ok == nil {
		ok = []int{0}
	}
	if !slices.Contains(ok, res.Code) {
		return res, fmt.Errorf("%s: exit code %d: %s", c.command(), res.Code, tail(res.Stderr, 800))
	}
	if c.Summary != "" {
		b, err := os.ReadFile(c.Summary)
		if err != nil {
			return res, fmt.Errorf("%s: summary: %w", c.command(), err)
		}
		var s pipeline.Summary
		if err := json.Unmarshal(b, &s); err != nil {
			return res, fmt.Errorf("%s: summary: %w", c.command(), err)
		}
		res.Summary = &s
	}
	return res, nil
}

// command is the child's command line as the report (and an error)
// shows it: a password in its environment (PGPASSWORD) as NAME=….
func (c child) command() string {
	var b strings.Builder
	for _, e := range c.Env {
		if k, _, _ := strings.Cut(e, "="); strings.Contains(k, "PASSWORD") {
			e = k + "=…"
		}
		b.WriteString(e + " ")
	}
	for i, a := range c.Args {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(relPath(a))
	}
	return b.String()
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// selfUsage returns the CPU time used by this process so far.
func selfUsage() usage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return usage{User: time.Duration(ru.Utime.Nano()), Sys: time.Duration(ru.Stime.Nano()), MaxRSS: ru.Maxrss * 1024}
}

// measure runs fn in this process and returns its wall and CPU time.
func measure(fn func() error) (usage, error) {
	before := selfUsage()
	start := time.Now()
	err := fn()
	after := selfUsage()
	return usage{Wall: time.Since(start), User: after.User - before.User, Sys: after.Sys - before.Sys}, err
}

// median runs fn n times and returns the run with the median wall time,
// and all of them.
func median[T any](n int, wall func(T) time.Duration, fn func() (T, error)) (T, []T, error) {
	var all []T
	for range n {
		r, err := fn()
		if err != nil {
			var zero T
			return zero, all, err
		}
		all = append(all, r)
	}
	return middle(all, wall), all, nil
}

// middle returns the run of runs with the median wall time.
func middle[T any](runs []T, wall func(T) time.Duration) T {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b T) int { return int(wall(a) - wall(b)) })
	return sorted[len(sorted)/2]
}
