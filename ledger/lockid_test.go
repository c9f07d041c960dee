//go:build linux

package ledger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"convpipe/pipeline"
)

// TestLockFileDeleted: deleting the lock file while a run holds the
// ledger does not let a second run take it at the same time.
func TestLockFileDeleted(t *testing.T) {
	refused := func(t *testing.T, path string, pid int, run string) {
		t.Helper()
		if err := os.Remove(path + ".lock"); err != nil {
			t.Fatal(err)
		}
		l, err := Open(t.Context(), path, Options{})
		if err == nil {
			l.Close()
			t.Fatal("a second Open took the ledger after its lock file was deleted")
		}
		t.Logf("second Open: %v", err)
		var le *LockedError
		if !errors.Is(err, pipeline.ErrLocked) || !errors.As(err, &le) {
			t.Fatalf("second Open = %v, want a *LockedError", err)
		}
		for _, want := range []string{path, "locked by another run", fmt.Sprintf("pid %d", pid), "run " + run} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q lacks %q", err, want)
			}
		}
	}
	t.Run("held in this process", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		l, err := Open(t.Context(), path, Options{Command: "convpipe run"})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := l.BeginRun(t.Context(), pipeline.RunInfo{ID: "run-A"}); err != nil {
			t.Fatal(err)
		}
		ro, err := OpenReadOnly(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		refused(t, path, os.Getpid(), "run-A")
		// The holder and a reader of this process go on; no descriptor
		// of the file is closed (which would drop SQLite's locks) until
		// neither uses it.
		checkUse(t, path, true, 2, 1)
		mustPut(t, l, sample("O-1", pipeline.StateAccepted))
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		checkUse(t, path, false, 1, 2)
		mustGet(t, ro, sample("O-1", "").Key)
		if err := ro.Close(); err != nil {
			t.Fatal(err)
		}
		checkUse(t, path, false, 0, 0)
		l2 := openT(t, path)
		mustGet(t, l2, sample("O-1", "").Key)
	})
	t.Run("held by another process", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		cmd, lines, _ := child(t, "hold", path, 0)
		if !lines.Scan() || lines.Text() != "locked" {
			t.Fatalf("child: %q, %v", lines.Text(), lines.Err())
		}
		refused(t, path, cmd.Process.Pid, "child-run")
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		l := openT(t, path)
		if r, ok, err := l.Run(t.Context(), "child-run"); err != nil || !ok {
			t.Errorf("Run(child-run) after the holder was killed = %+v, %v, %v", r, ok, err)
		}
	})
}

// checkUse checks what the registry of ledger files in use says of path:
// whether an Open holds it, how many Ledgers use it and how many of its
// descriptors wait to be closed (none, and no entry, when users is 0).
func checkUse(t *testing.T, path string, held bool, users, idle int) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	files.Lock()
	defer files.Unlock()
	u := files.m[idOf(fi)]
	if users == 0 {
		if u != nil {
			t.Errorf("file still in use: %+v", u)
		}
		return
	}
	if u == nil || (u.holder != nil) != held || u.users != users || len(u.idle) != idle {
		t.Errorf("use of the file = %+v, want held %v, %d users, %d idle descriptors", u, held, users, idle)
	}
}
