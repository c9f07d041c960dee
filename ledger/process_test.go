package ledger

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"convpipe/pipeline"
)

// The tests below re-execute the test binary as a child process that
// opens a ledger and does one thing; TestMain hands it to childMain.
const (
	childEnv     = "CONVPIPE_LEDGER_TEST_CHILD"
	childPathEnv = "CONVPIPE_LEDGER_TEST_PATH"
	childArgEnv  = "CONVPIPE_LEDGER_TEST_ARG"
	// childBackendEnv names the backend of the "hold" and "put" modes;
	// SQLite when empty.
	childBackendEnv = "CONVPIPE_LEDGER_TEST_BACKEND"
)

// crashEntry is the entry the "put" child writes for i.
func crashEntry(i int) pipeline.Entry {
	e := sample(fmt.Sprintf("C-%06d", i), pipeline.StateAccepted)
	e.Attempts = i
	return e
}

// childMain runs in the child process. Its lines on stdout are the
// parent's evidence; it exits 0 only when its mode finished.
func childMain(mode string) int {
	ctx := context.Background()
	path := os.Getenv(childPathEnv)
	arg, _ := strconv.Atoi(os.Getenv(childArgEnv))
	b, ok := backendNamed(os.Getenv(childBackendEnv))
	if !ok {
		b = sqliteBackend
	}
	var out sync.Mutex
	say := func(format string, a ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", a...) // unbuffered: one write per line
	}
	switch mode {
	case "hold":
		// Take the lock, say so, and keep it until killed.
		l, err := b.open(ctx, path, Options{Command: "lock holder"})
		if err != nil {
			say("error: %v", err)
			return 1
		}
		if err := l.BeginRun(ctx, pipeline.RunInfo{ID: "child-run"}); err != nil {
			say("error: %v", err)
			return 1
		}
		say("locked")
		io.Copy(io.Discard, os.Stdin)
		return 0
	case "put":
		// Put entries from 8 goroutines, printing each one whose Put
		// returned, until killed.
		l, err := b.open(ctx, path, Options{})
		if err != nil {
			say("error: %v", err)
			return 1
		}
		eachIndex(8, math.MaxInt, func(i int) bool {
			if err := l.Put(ctx, crashEntry(i)); err != nil {
				say("error: %v", err)
				return false
			}
			say("put %d", i)
			return true
		})
		return 1
	case "claim":
		// Open the ledger shared with a lease of arg ms, claim the object
		// a.csv and the order 1/O-1, say so, and keep them until killed.
		l, err := b.open(ctx, path, Options{Shared: true, Lease: time.Duration(arg) * time.Millisecond})
		if err != nil {
			say("error: %v", err)
			return 1
		}
		if err := claimBoth(ctx, l.(pipeline.Claimer)); err != nil {
			say("error: %v", err)
			return 1
		}
		say("claimed")
		io.Copy(io.Discard, os.Stdin)
		return 0
	case "shared-put":
		// See sharedPutChild: arg is the child's number.
		return sharedPutChild(ctx, path, arg, say)
	case "fsize":
		// Open, then limit file sizes to arg bytes (a full disk, as far
		// as SQLite can tell) and Put until a Put fails.
		l, err := Open(ctx, path, Options{})
		if err != nil {
			say("open error: %v", err)
			return 0
		}
		if err := limitFileSize(arg); err != nil {
			say("error: %v", err)
			return 1
		}
		for i := 0; i < 100000; i++ {
			if err := l.Put(ctx, crashEntry(i)); err != nil {
				say("put error: %v", err)
				if err := l.Put(ctx, crashEntry(i)); err == nil {
					say("error: a Put after a failed one succeeded on a full disk")
				}
				l.Close()
				return 0
			}
			say("put %d", i)
		}
		say("error: no Put failed")
		return 1
	case "open":
		// Open and say how it went.
		l, err := Open(ctx, path, Options{})
		if err != nil {
			say("open error: %v", err)
			return 0
		}
		l.Close()
		say("opened")
		return 0
	case "fsize-open":
		// Limit file sizes first: Open itself must fail.
		if err := limitFileSize(arg); err != nil {
			say("error: %v", err)
			return 1
		}
		l, err := Open(ctx, path, Options{})
		if err != nil {
			say("open error: %v", err)
			return 0
		}
		l.Close()
		say("error: Open succeeded")
		return 1
	}
	fmt.Fprintf(os.Stderr, "unknown child mode %q\n", mode)
	return 2
}

// limitFileSize makes writes past n bytes fail with EFBIG, as on a full
// disk; SIGXFSZ, which would kill the process instead, is ignored.
func limitFileSize(n int) error {
	signal.Ignore(syscall.SIGXFSZ)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		return err
	}
	lim.Cur = uint64(n)
	return syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim)
}

// child starts the test binary in mode on path and returns it with a
// reader of its stdout lines.
func child(t *testing.T, mode, path string, arg int) (*exec.Cmd, *bufio.Scanner, io.WriteCloser) {
	t.Helper()
	return childOn(t, sqliteBackend, mode, path, arg)
}

// childOn is child on the ledger of backend b at place.
func childOn(t *testing.T, b backend, mode, place string, arg int) (*exec.Cmd, *bufio.Scanner, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childBackendEnv+"="+b.name)
	return startChild(t, cmd, mode, place, arg)
}

func startChild(t *testing.T, cmd *exec.Cmd, mode, path string, arg int) (*exec.Cmd, *bufio.Scanner, io.WriteCloser) {
	t.Helper()
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, childEnv+"="+mode, childPathEnv+"="+path, childArgEnv+"="+strconv.Itoa(arg))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, bufio.NewScanner(stdout), stdin
}

// childAs is child run as the user uid, from a copy of the test binary
// that the user can read.
func childAs(t *testing.T, mode, path string, uid uint32) (*exec.Cmd, *bufio.Scanner, io.WriteCloser) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "ledger.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	// Every directory above path must be searchable by uid.
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Dir(path); strings.HasPrefix(d, tmp+string(filepath.Separator)); d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			os.Chmod(d, fi.Mode().Perm()|0o011)
		}
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	return startChild(t, cmd, mode, path, 0)
}

func TestLockChildProcess(t *testing.T) { forEachBackend(t, testLockChildProcess) }

func testLockChildProcess(t *testing.T, b backend) {
	path := b.place(t)
	cmd, lines, _ := childOn(t, b, "hold", path, 0)
	if !lines.Scan() || lines.Text() != "locked" {
		t.Fatalf("child: %q, %v", lines.Text(), lines.Err())
	}
	_, err := b.open(t.Context(), path, Options{})
	if !errors.Is(err, pipeline.ErrLocked) {
		t.Fatalf("Open while a child holds the lock = %v, want ErrLocked", err)
	}
	host, _ := os.Hostname()
	var le *LockedError
	if !errors.As(err, &le) || le.Holder.PID != cmd.Process.Pid || le.Holder.Host != host || le.Holder.RunID != "child-run" {
		t.Errorf("holder = %+v, want pid %d on %s, run child-run", le.Holder, cmd.Process.Pid, host)
	}
	t.Logf("message: %v", err)

	// Reading needs no lock: ledger export while a run holds it.
	ro, err := b.openRO(t.Context(), path)
	if err != nil {
		t.Fatalf("OpenReadOnly while a child holds the lock: %v", err)
	}
	if r, ok, err := ro.Run(t.Context(), "child-run"); err != nil || !ok || r.ID != "child-run" {
		t.Errorf("Run(child-run) from a reader = %+v, %v, %v", r, ok, err)
	}
	ro.Close()

	// SIGKILL: no chance to clean up; the kernel drops the lock.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	b.waitUnlocked(t, path)
}

// TestCrashDurability kills a child that is writing with SIGKILL and
// checks that every entry whose Put had returned is in the ledger.
func TestCrashDurability(t *testing.T) { forEachBackend(t, testCrashDurability) }

func testCrashDurability(t *testing.T, b backend) {
	for round, killAfter := range []int{1, 700, 2500} {
		t.Run(strconv.Itoa(killAfter), func(t *testing.T) {
			path := b.place(t)
			cmd, lines, _ := childOn(t, b, "put", path, 0)
			var returned []int
			killed := false
			for lines.Scan() {
				line := lines.Text()
				if strings.HasPrefix(line, "error") {
					t.Fatalf("child: %s", line)
				}
				i, err := strconv.Atoi(strings.TrimPrefix(line, "put "))
				if err != nil {
					t.Fatalf("child said %q", line)
				}
				returned = append(returned, i)
				if !killed && len(returned) >= killAfter {
					// Lines already in the pipe are read after the kill:
					// they too were printed after their Put returned.
					if err := cmd.Process.Kill(); err != nil {
						t.Fatal(err)
					}
					killed = true
				}
			}
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child ended with %v, want killed", err)
			}
			b.waitUnlocked(t, path)
			l := b.openT(t, path)
			for _, i := range returned {
				want := crashEntry(i)
				got, ok, err := l.Get(t.Context(), want.Key)
				if err != nil || !ok {
					t.Fatalf("entry %d, whose Put returned before the kill: found %v, err %v", i, ok, err)
				}
				if withoutTimes(got).Attempts != want.Attempts || got.PayloadHash != want.PayloadHash || len(got.Refs) != 2 {
					t.Fatalf("entry %d = %+v, want %+v", i, got, want)
				}
			}
			c, err := l.Counts(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("round %d: %d Puts returned before the kill, %d entries stored", round, len(returned), c[pipeline.StateAccepted])
			if c[pipeline.StateAccepted] < int64(len(returned)) {
				t.Errorf("%d entries stored, fewer than the %d returned", c[pipeline.StateAccepted], len(returned))
			}
		})
	}
}

func TestStorageFaults(t *testing.T) {
	t.Run("parent is a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(file, "ledger.db")
		_, err := Open(t.Context(), path, Options{})
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("Open = %v, want an error naming %s: not a directory", err, path)
		}
	})
	t.Run("path is a directory", func(t *testing.T) {
		dir := t.TempDir()
		_, err := Open(t.Context(), dir, Options{})
		if err == nil || !strings.Contains(err.Error(), "is a directory") {
			t.Errorf("Open = %v, want is a directory", err)
		}
	})
	// Permissions: root ignores them, so as root the Open runs in a child
	// process as nobody.
	unprivilegedOpen := func(t *testing.T, path string) string {
		t.Helper()
		var lines *bufio.Scanner
		if os.Geteuid() != 0 {
			_, lines, _ = child(t, "open", path, 0)
		} else {
			_, lines, _ = childAs(t, "open", path, 65534)
		}
		if !lines.Scan() {
			t.Fatalf("child said nothing: %v", lines.Err())
		}
		t.Logf("%s", lines.Text())
		return lines.Text()
	}
	t.Run("read-only directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		path := filepath.Join(dir, "ledger.db")
		msg := unprivilegedOpen(t, path)
		if !strings.HasPrefix(msg, "open error: ") || !strings.Contains(msg, path) || !strings.Contains(msg, "permission denied") {
			t.Errorf("Open = %q, want an error naming %s: permission denied", msg, path)
		}
	})
	t.Run("read-only file", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "rw")
		if err := os.Mkdir(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(dir, 0o777) // past the umask
		path := filepath.Join(dir, "ledger.db")
		l, err := Open(t.Context(), path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		for name, mode := range map[string]os.FileMode{path: 0o444, path + ".lock": 0o666} {
			if err := os.Chmod(name, mode); err != nil {
				t.Fatal(err)
			}
		}
		msg := unprivilegedOpen(t, path)
		if !strings.HasPrefix(msg, "open error: ") || !strings.Contains(msg, path) || !strings.Contains(msg, "read-only") {
			t.Errorf("Open of a read-only file = %q, want it to fail, naming %s, before any send", msg, path)
		}
	})
	for _, limit := range []int{0, 2048} {
		t.Run(fmt.Sprintf("full disk at open, %d bytes free", limit), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ledger.db")
			_, lines, _ := child(t, "fsize-open", path, limit)
			if !lines.Scan() || !strings.HasPrefix(lines.Text(), "open error: ") {
				t.Fatalf("child: %q, %v", lines.Text(), lines.Err())
			}
			msg := lines.Text()
			t.Logf("%s", msg)
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the ledger", msg)
			}
		})
	}
	t.Run("full disk while writing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		cmd, lines, _ := child(t, "fsize", path, 256<<10)
		var returned []int
		var failure string
		for lines.Scan() {
			line := lines.Text()
			switch {
			case strings.HasPrefix(line, "put error: "):
				failure = line
			case strings.HasPrefix(line, "put "):
				i, _ := strconv.Atoi(strings.TrimPrefix(line, "put "))
				returned = append(returned, i)
			default:
				t.Errorf("child: %s", line)
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
		t.Logf("%d Puts, then %s", len(returned), failure)
		if failure == "" || !strings.Contains(failure, path) || !strings.Contains(failure, "put 12345/C-") ||
			!(strings.Contains(failure, "disk full") || strings.Contains(failure, "i/o error")) {
			t.Fatalf("failure %q: want an error naming the ledger, the put and the cause", failure)
		}
		// Without the limit, the ledger opens and holds every Put that
		// returned.
		l := openT(t, path)
		for _, i := range returned {
			mustGet(t, l, crashEntry(i).Key)
		}
	})
	t.Run("closed", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		l, err := Open(t.Context(), path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		err = l.Put(t.Context(), sample("O", pipeline.StatePending))
		if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "ledger is closed") {
			t.Errorf("Put after Close = %v", err)
		}
	})
}

// eachIndex hands the indexes 0 … limit-1 out to workers goroutines, in
// order, each calling fn with the next one until fn returns false or
// none is left, and returns when all have stopped.
func eachIndex(workers, limit int, fn func(i int) bool) {
	var mu sync.Mutex
	n := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				i := n
				n++
				mu.Unlock()
				if i >= limit || !fn(i) {
					return
				}
			}
		})
	}
	wg.Wait()
}
