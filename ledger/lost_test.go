package ledger

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"convpipe/pipeline"
)

// usedLedger returns the path of a closed ledger that recorded run
// "run-7" and one entry.
func usedLedger(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(t.Context(), path, Options{Command: "convpipe run"})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	if err := l.BeginRun(t.Context(), pipeline.RunInfo{ID: "run-7", Started: started}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, l, sample("O-1", pipeline.StateAccepted))
	if err := l.FinishRun(t.Context(), pipeline.RunInfo{ID: "run-7", Started: started}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func truncate(t *testing.T, path string) {
	t.Helper()
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
}

// TestEmptiedLedgerIsNotNew: a ledger that was used and is now empty (a
// file truncated to 0 bytes, or a database without its tables) or missing
// is never opened as a new one, which would send again everything it had
// recorded as sent. Only where there was nothing is a new ledger created.
func TestEmptiedLedgerIsNotNew(t *testing.T) {
	tests := []struct {
		name, state string
		damage      func(t *testing.T, path string)
	}{
		{"truncated", "empty", truncate},
		{"deleted", "missing", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
		{"a database without tables", "empty", func(t *testing.T, path string) {
			truncate(t, path)
			db, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`CREATE TABLE t (x); DROP TABLE t`); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := usedLedger(t)
			tt.damage(t, path)
			checkLost(t, path, tt.state)
			l := openT(t, path)
			if _, ok, err := l.Get(t.Context(), sample("O-1", "").Key); ok || err != nil {
				t.Errorf("the new ledger has the old entry: %v, %v", ok, err)
			}
		})
	}
	t.Run("new", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "new", "ledger.db")
		if _, err := os.Stat(path + ".marker"); !os.IsNotExist(err) {
			t.Fatalf("marker before the first Open: %v", err)
		}
		l := openT(t, path)
		mustPut(t, l, sample("O-1", pipeline.StateAccepted))
		if _, err := os.Stat(path + ".marker"); err != nil {
			t.Errorf("no marker after creating a ledger: %v", err)
		}
	})
	t.Run("an empty file where there was nothing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		l := openT(t, path)
		mustPut(t, l, sample("O-1", pipeline.StateAccepted))
	})
	// A ledger made before markers existed gets one on its next Open,
	// naming its last run.
	t.Run("ledger without a marker", func(t *testing.T) {
		path := usedLedger(t)
		if err := os.Remove(path + ".marker"); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		l := openT(t, path)
		mustGet(t, l, sample("O-1", "").Key)
		l.Close()
		if _, err := os.Stat(path + ".marker"); err != nil {
			t.Fatalf("no marker after opening a ledger that had none: %v", err)
		}
		truncate(t, path)
		l2, err := Open(t.Context(), path, Options{})
		if err == nil {
			l2.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "is empty but was used by runs up to run run-7") {
			t.Errorf("Open of the emptied ledger = %v", err)
		}
	})
}

// checkLost checks that Open and OpenReadOnly of the ledger at path, used
// and then made missing or empty (state), fail with the message that
// says so and touch nothing, and removes the ledger and its marker, as
// the message tells.
func checkLost(t *testing.T, path, state string) {
	t.Helper()
	before, _ := os.ReadFile(path)
	for name, open := range map[string]func() (*Ledger, error){
		"Open":         func() (*Ledger, error) { return Open(t.Context(), path, Options{}) },
		"OpenReadOnly": func() (*Ledger, error) { return OpenReadOnly(t.Context(), path) },
	} {
		l, err := open()
		if err == nil {
			l.Close()
			t.Fatalf("%s of a ledger %s after a run succeeded: a new ledger would send everything again", name, state)
		}
		t.Logf("%s: %v", name, err)
		for _, want := range []string{
			"the ledger at " + path + " is " + state + " but was used by runs up to run run-7",
			"restore it from a backup, or remove it and its marker " + path + ".marker to start afresh",
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q lacks %q", name, err, want)
			}
		}
	}
	// Nothing was made of it: a missing file is still missing, an
	// empty one empty.
	after, _ := os.ReadFile(path)
	if len(before) == 0 && len(after) != 0 {
		t.Errorf("the failed opens wrote %d bytes into the ledger file", len(after))
	}
	if _, err := os.Stat(path); state == "missing" && !os.IsNotExist(err) {
		t.Errorf("the failed opens made a ledger file: %v", err)
	}
	if tables := countTables(t, path); tables != 0 {
		t.Errorf("the failed opens made %d tables", tables)
	}
	// As the message says: remove both, and a new ledger starts.
	for _, name := range []string{path, path + ".marker"} {
		if err := os.Remove(name); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

// countTables returns how many tables the database at path holds, 0 for
// a missing file.
func countTables(t *testing.T, path string) int {
	t.Helper()
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return 0
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMade: a ledger was made at a path while its file or its marker is
// there; a deleted ledger whose marker is left is still made (and lost).
func TestMade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	if Made(path) {
		t.Fatal("Made before anything was created")
	}
	used := usedLedger(t)
	if !Made(used) {
		t.Fatal("Made false for a used ledger")
	}
	if err := os.Remove(used); err != nil {
		t.Fatal(err)
	}
	if !Made(used) {
		t.Error("Made false for a deleted ledger whose marker is left: a dry run would take it as new")
	}
}
