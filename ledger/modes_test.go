//go:build unix

package ledger

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"convpipe/pipeline"
)

// TestFileModes: the files of a ledger (the database and its WAL, the
// lock file, the marker, the results file) hold orders and customers' data: they are
// created readable and writable by their owner only, whatever the umask,
// and never widened past it.
func TestFileModes(t *testing.T) {
	for _, umask := range []int{0o077, 0o022, 0o002} {
		t.Run(fmt.Sprintf("umask %03o", umask), func(t *testing.T) {
			old := syscall.Umask(umask)
			t.Cleanup(func() { syscall.Umask(old) })
			dir := filepath.Join(t.TempDir(), "state")
			path := filepath.Join(dir, "ledger.db")
			l := openT(t, path)
			if err := l.BeginRun(t.Context(), pipeline.RunInfo{ID: "r1"}); err != nil {
				t.Fatal(err)
			}
			e := sample("O-1", pipeline.StateAccepted)
			e.RunID = "r1"
			mustPut(t, l, e)
			results := ResultsPath(path, "r1")
			if err := WriteResultsFile(t.Context(), l, results, "r1"); err != nil {
				t.Fatal(err)
			}
			want := []string{path, path + "-wal", path + "-shm", path + ".lock", path + markerSuffix, results}
			for _, name := range want {
				fi, err := os.Stat(name)
				if err != nil {
					t.Errorf("%v", err)
					continue
				}
				if perm := fi.Mode().Perm(); perm&^0o600 != 0 {
					t.Errorf("%s: mode %v under umask %03o, want at most -rw-------", filepath.Base(name), fi.Mode(), umask)
				}
			}
			all, _ := filepath.Glob(filepath.Join(dir, "*"))
			if len(all) != len(want) {
				t.Errorf("files %v, want %v", all, want)
			}
		})
	}
}
