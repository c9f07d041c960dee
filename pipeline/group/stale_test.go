package group

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func TestRemoveStaleSpills(t *testing.T) {
	dir := t.TempDir()
	// A process that has exited: its pid is free (or reused by another,
	// which only keeps its folder).
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run a child: %v", err)
	}
	dead := cmd.Process.Pid
	stale := filepath.Join(dir, spillPrefix+strconv.Itoa(dead)+"-123")
	mine := filepath.Join(dir, spillPrefix+strconv.Itoa(os.Getpid())+"-456")
	other := filepath.Join(dir, "convpipe-group-notapid")
	unrelated := filepath.Join(dir, "something-else")
	for _, d := range []string{stale, mine, other, unrelated} {
		if err := os.MkdirAll(filepath.Join(d, "sub"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	n, err := RemoveStaleSpills(dir)
	if err != nil {
		t.Fatal(err)
	}
	if alive(dead) {
		t.Skip("the dead child's pid was reused at once")
	}
	if n != 1 {
		t.Errorf("removed %d folders, want 1", n)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale spill folder is still there: %v", err)
	}
	for _, d := range []string{mine, other, unrelated} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(d), err)
		}
	}
	if n, err := RemoveStaleSpills(filepath.Join(dir, "missing")); n != 0 || err != nil {
		t.Errorf("missing folder: %d, %v", n, err)
	}
}
