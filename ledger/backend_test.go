package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"convpipe/ledger/pgtest"
	"convpipe/pipeline"
)

// backend is one implementation of the ledger in the conformance suite
// (rclone's fstests, a table of backends): every test that is not about
// the SQLite ledger's own files runs against each, the PostgreSQL one on a
// real server that pgtest starts on loopback (and fails, never skips,
// when PostgreSQL is not installed).
type backend struct {
	name string
	// place returns where a new ledger can be made: a path where there
	// is nothing, or the URL of a new, empty database.
	place func(t testing.TB) string
	// open opens the ledger at place for a run, making it when there is
	// none (opts.Create is set for PostgreSQL).
	open func(ctx context.Context, place string, opts Options) (Store, error)
	// openRO opens the ledger at place read-only.
	openRO func(ctx context.Context, place string) (Store, error)
	// display is what the ledger's messages call place.
	display func(place string) string
	// setVersion stores v as the schema version of the ledger at place.
	setVersion func(t testing.TB, place string, v int)
	// makeV1 makes at place a ledger of schema version 1, made before
	// accounts, holding the entry 1/O-1 (accepted), the object a.csv and
	// the run r1.
	makeV1 func(t testing.TB, place string)
	// makeV2 makes at place a ledger of schema version 2 (before
	// reconciling) holding v2Rows.
	makeV2 func(t testing.TB, place string)
}

// v1Rows are the rows makeV1 writes, after its schema.
const v1Rows = `INSERT INTO %[1]sconversions (event_type, order_id, state, payload_hash, run_id, created, updated)
		VALUES (%[2]s, %[3]s, 'accepted', 'ab', 'r1', 1, 2);
	INSERT INTO %[1]sobjects (key, etag, size, modtime, run_id, processed_at) VALUES (%[4]s, 'e', 1, 0, 'r1', 3);
	INSERT INTO %[1]sruns (id, started, args) VALUES ('r1', 4, 'convpipe run');`

var sqliteBackend = backend{
	name:  "sqlite",
	place: func(t testing.TB) string { return filepath.Join(t.TempDir(), "ledger.db") },
	open: func(ctx context.Context, place string, opts Options) (Store, error) {
		l, err := Open(ctx, place, opts)
		if err != nil {
			return nil, err
		}
		return l, nil
	},
	openRO: func(ctx context.Context, place string) (Store, error) {
		l, err := OpenReadOnly(ctx, place)
		if err != nil {
			return nil, err
		}
		return l, nil
	},
	display: func(place string) string { return place },
	setVersion: func(t testing.TB, place string, v int) {
		rawSQL(t, place, "PRAGMA user_version = "+strconv.Itoa(v))
	},
	makeV1: func(t testing.TB, place string) {
		rawSQL(t, place, migrations[0]+fmt.Sprintf(v1Rows, "", "'1'", "'O-1'", "'a.csv'")+
			fmt.Sprintf("PRAGMA user_version = 1; PRAGMA application_id = %d;", applicationID))
		if err := writeMarker(place, marker{Ledger: place}); err != nil {
			t.Fatal(err)
		}
	},
	makeV2: func(t testing.TB, place string) {
		rawSQL(t, place, migrations[0]+migrations[1]+fmt.Sprintf(v2Rows, "", "", "1", "0")+
			fmt.Sprintf("PRAGMA user_version = 2; PRAGMA application_id = %d;", applicationID))
		if err := writeMarker(place, marker{Ledger: place}); err != nil {
			t.Fatal(err)
		}
	},
}

var postgresBackend = backend{
	name:  "postgres",
	place: func(t testing.TB) string { return pgtest.NewDatabase(t) },
	open: func(ctx context.Context, place string, opts Options) (Store, error) {
		opts.Create = true
		l, err := OpenPostgres(ctx, place, "", opts)
		if err != nil {
			return nil, err
		}
		return l, nil
	},
	openRO: func(ctx context.Context, place string) (Store, error) {
		l, err := OpenPostgresReadOnly(ctx, place, "")
		if err != nil {
			return nil, err
		}
		return l, nil
	},
	display: RedactURL,
	setVersion: func(t testing.TB, place string, v int) {
		t.Helper()
		if err := pgExec(t, place, "UPDATE convpipe.meta SET value = '"+strconv.Itoa(v)+"' WHERE name = 'schema_version'"); err != nil {
			t.Fatal(err)
		}
	},
	makeV1: func(t testing.TB, place string) {
		t.Helper()
		err := pgExec(t, place, pgMigrations[0]+"; INSERT INTO convpipe.meta VALUES ('schema_version', '1');"+
			fmt.Sprintf(v1Rows, "convpipe.", "'1'::bytea", "'O-1'::bytea", "'a.csv'::bytea"))
		if err != nil {
			t.Fatal(err)
		}
	},
	makeV2: func(t testing.TB, place string) {
		t.Helper()
		err := pgExec(t, place, pgMigrations[0]+";"+pgMigrations[1]+"; INSERT INTO convpipe.meta VALUES ('schema_version', '2');"+
			fmt.Sprintf(v2Rows, "convpipe.", "::bytea", "true", "false"))
		if err != nil {
			t.Fatal(err)
		}
	},
}

var backends = []backend{sqliteBackend, postgresBackend}

// forEachBackend runs fn as a subtest for each backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// backendNamed returns the backend called name.
func backendNamed(name string) (backend, bool) {
	for _, b := range backends {
		if b.name == name {
			return b, true
		}
	}
	return backend{}, false
}

// openT opens the ledger at place and closes it when the test ends.
func (b backend) openT(t testing.TB, place string) Store {
	t.Helper()
	l, err := b.open(t.Context(), place, Options{Command: "ledger test"})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return l
}

// temp returns a new ledger, closed when the test ends.
func (b backend) temp(t testing.TB) Store {
	t.Helper()
	return b.openT(t, b.place(t))
}

// pgExec runs sql in the database of the ledger URL place (the
// password is in PGPASSWORD).
func pgExec(t testing.TB, place, sql string) error {
	t.Helper()
	c, err := pgx.Connect(t.Context(), place)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(t.Context(), sql)
	return err
}

// indexOf returns the in-memory index of l, nil when not loaded.
func indexOf(l Store) *index {
	switch l := l.(type) {
	case *Ledger:
		return l.idx.Load()
	case *Postgres:
		return l.idx.Load()
	}
	return nil
}

// rawSQL runs stmt on the SQLite file at path, outside the ledger.
func rawSQL(t testing.TB, path, stmt string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(stmt); err != nil {
		t.Fatal(err)
	}
}

// waitUnlocked waits until the ledger at place can be opened, after its
// holder was killed: the kernel drops a SQLite lock with the process, but
// a PostgreSQL server drops the advisory lock only once it has seen the
// killed holder's connection close, a moment later.
func (b backend) waitUnlocked(t testing.TB, place string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := b.open(t.Context(), place, Options{})
		if err == nil {
			l.Close()
			return
		}
		if !errors.Is(err, pipeline.ErrLocked) || time.Now().After(deadline) {
			t.Fatalf("open after the holder was killed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
