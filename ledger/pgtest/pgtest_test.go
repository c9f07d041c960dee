package pgtest

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

// TestServer starts the shared server, makes a database, and survives a
// Kill and a Restart with its data.
func TestServer(t *testing.T) {
	s := Shared(t)
	NewDatabase(t)
	if err := s.Exec(t.Context(), "postgres", "CREATE TABLE t (x int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(t.Context(), "postgres", "DO $$ BEGIN IF (SELECT count(*) FROM t) <> 1 THEN RAISE 'lost'; END IF; END $$"); err != nil {
		t.Fatalf("after kill and restart: %v", err)
	}
}
