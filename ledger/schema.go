package ledger

import (
	"context"
	"database/sql"
	"fmt"
)

// applicationID marks a SQLite file as a convpipe ledger ("cpLG").
const applicationID = 0x63704c47

// migrations are the schema's steps; the database's user_version is the
// number of steps applied. Append new steps; never edit an old one.
//
// Times are INTEGER nanoseconds since the Unix epoch, UTC (read them with
// datetime(created/1e9, 'unixepoch')). messages and refs are JSON arrays,
// NULL when empty. The state and run indexes end in the rowid, which
// grows with each new key: the rows a run writes land on the last pages
// of each, so that a commit rewrites few pages (each page is a WAL frame
// to write). There are no foreign keys: an entry may name a run that
// was never recorded (a test, an import), and the ledger must still take it.
var migrations = []string{
	// 1: the first schema.
	`CREATE TABLE conversions (
		event_type    TEXT NOT NULL,
		order_id      TEXT NOT NULL,
		state         TEXT NOT NULL CHECK (state IN ('pending','accepted','rejected','failed','invalid','skipped','changed')),
		payload_hash  TEXT NOT NULL DEFAULT '',
		sent_hash     TEXT NOT NULL DEFAULT '',
		attempts      INTEGER NOT NULL DEFAULT 0,
		http_status   INTEGER NOT NULL DEFAULT 0,
		messages      TEXT,
		submission_id TEXT NOT NULL DEFAULT '',
		queued_uri    TEXT NOT NULL DEFAULT '',
		maybe_sent    INTEGER NOT NULL DEFAULT 0,
		refs          TEXT,
		run_id        TEXT NOT NULL DEFAULT '',
		created       INTEGER NOT NULL,
		updated       INTEGER NOT NULL,
		PRIMARY KEY (event_type, order_id)
	);
	CREATE INDEX conversions_state ON conversions (state);
	CREATE INDEX conversions_run ON conversions (run_id);
	CREATE INDEX conversions_order ON conversions (order_id);
	CREATE TABLE objects (
		key          TEXT PRIMARY KEY,
		etag         TEXT NOT NULL,
		size         INTEGER NOT NULL,
		modtime      INTEGER NOT NULL,
		run_id       TEXT NOT NULL,
		processed_at INTEGER NOT NULL
	);
	CREATE TABLE runs (
		id       TEXT PRIMARY KEY,
		started  INTEGER NOT NULL,
		finished INTEGER,
		args     TEXT NOT NULL DEFAULT '',
		summary  TEXT
	);
	CREATE TABLE meta (
		name  TEXT PRIMARY KEY,
		value TEXT NOT NULL
	);`,
	// 2: the account, first in each key: one ledger holds many
	// accounts. migrate gives the entries of an existing ledger the
	// account of the run that migrates it.
	`CREATE TABLE conversions_v2 (
		account       TEXT NOT NULL DEFAULT '',
		event_type    TEXT NOT NULL,
		order_id      TEXT NOT NULL,
		state         TEXT NOT NULL CHECK (state IN ('pending','accepted','rejected','failed','invalid','skipped','changed')),
		payload_hash  TEXT NOT NULL DEFAULT '',
		sent_hash     TEXT NOT NULL DEFAULT '',
		attempts      INTEGER NOT NULL DEFAULT 0,
		http_status   INTEGER NOT NULL DEFAULT 0,
		messages      TEXT,
		submission_id TEXT NOT NULL DEFAULT '',
		queued_uri    TEXT NOT NULL DEFAULT '',
		maybe_sent    INTEGER NOT NULL DEFAULT 0,
		refs          TEXT,
		run_id        TEXT NOT NULL DEFAULT '',
		created       INTEGER NOT NULL,
		updated       INTEGER NOT NULL,
		PRIMARY KEY (account, event_type, order_id)
	);
	INSERT INTO conversions_v2 (event_type, order_id, state, payload_hash, sent_hash, attempts, http_status,
		messages, submission_id, queued_uri, maybe_sent, refs, run_id, created, updated)
		SELECT event_type, order_id, state, payload_hash, sent_hash, attempts, http_status,
		messages, submission_id, queued_uri, maybe_sent, refs, run_id, created, updated FROM conversions ORDER BY rowid;
	DROP TABLE conversions;
	ALTER TABLE conversions_v2 RENAME TO conversions;
	CREATE INDEX conversions_state ON conversions (account, state);
	CREATE INDEX conversions_run ON conversions (run_id);
	CREATE INDEX conversions_order ON conversions (account, order_id);
	CREATE TABLE objects_v2 (
		account      TEXT NOT NULL DEFAULT '',
		key          TEXT NOT NULL,
		etag         TEXT NOT NULL,
		size         INTEGER NOT NULL,
		modtime      INTEGER NOT NULL,
		run_id       TEXT NOT NULL,
		processed_at INTEGER NOT NULL,
		PRIMARY KEY (account, key)
	);
	INSERT INTO objects_v2 (key, etag, size, modtime, run_id, processed_at)
		SELECT key, etag, size, modtime, run_id, processed_at FROM objects;
	DROP TABLE objects;
	ALTER TABLE objects_v2 RENAME TO objects;
	ALTER TABLE runs ADD COLUMN account TEXT NOT NULL DEFAULT '';
	CREATE INDEX runs_account ON runs (account, started);`,
	// 3: reconciling (see reconcile.go).
	reconcileMigration,
	// 4: what impact accepted and the corrections since (lines.go):
	// order_lines keeps, per payload sent, its amounts, SKUs and
	// quantities as JSON (never a customer's data); corrections keeps
	// each correction as JSON, its state and run beside it. Entries
	// made before this step have no lines.
	`CREATE TABLE order_lines (
		account      TEXT NOT NULL DEFAULT '',
		event_type   TEXT NOT NULL,
		order_id     TEXT NOT NULL,
		payload_hash TEXT NOT NULL,
		lines        TEXT NOT NULL,
		created      INTEGER NOT NULL,
		PRIMARY KEY (account, event_type, order_id, payload_hash)
	);
	CREATE TABLE corrections (
		account    TEXT NOT NULL DEFAULT '',
		event_type TEXT NOT NULL,
		order_id   TEXT NOT NULL,
		seq        INTEGER NOT NULL,
		state      TEXT NOT NULL,
		data       TEXT NOT NULL,
		run_id     TEXT NOT NULL DEFAULT '',
		created    INTEGER NOT NULL,
		updated    INTEGER NOT NULL,
		PRIMARY KEY (account, event_type, order_id, seq)
	);
	CREATE INDEX corrections_state ON corrections (account, state);
	CREATE INDEX corrections_order ON corrections (account, order_id);`,
	// 5: batch files and the place of each order in them (batch.go).
	batchTablesSQL,
	// 6: the claims and the quota of a shared ledger (sqliteclaims.go).
	sharedTablesSQL,
	// 7: what each entry's payload was built from (pipeline.Entry.Source).
	`ALTER TABLE conversions ADD COLUMN source TEXT NOT NULL DEFAULT ''`,
}

// accountTables are the tables whose rows belong to an account.
var accountTables = []string{"conversions", "objects", "runs"}

// adoptSQL says whether a ledger holds rows without an account (made
// before accounts, or only made by `ledger init` and not used since) and
// none of any account: a run then takes them for its account, so that a
// ledger made before accounts sends nothing again.
const adoptSQL = `SELECT NOT EXISTS (SELECT 1 FROM conversions WHERE account <> '')
	AND NOT EXISTS (SELECT 1 FROM objects WHERE account <> '')
	AND NOT EXISTS (SELECT 1 FROM runs WHERE account <> '')
	AND (EXISTS (SELECT 1 FROM conversions) OR EXISTS (SELECT 1 FROM objects) OR EXISTS (SELECT 1 FROM runs))`

// schemaVersion is the version this code reads and writes.
var schemaVersion = len(migrations)

// checkSchema reads the file's version and application id and says whether
// it is a ledger this code can use: 0 for a new, empty database.
func checkSchema(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, path string) (int, error) {
	var version, appID, tables int
	if err := q.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return 0, fmt.Errorf("ledger %s: read schema version: %w", path, sqlError(err))
	}
	if err := q.QueryRowContext(ctx, `PRAGMA application_id`).Scan(&appID); err != nil {
		return 0, fmt.Errorf("ledger %s: read application id: %w", path, sqlError(err))
	}
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&tables); err != nil {
		return 0, fmt.Errorf("ledger %s: read schema: %w", path, sqlError(err))
	}
	switch {
	case appID != applicationID && (version != 0 || tables != 0):
		return 0, fmt.Errorf("ledger %s: not a convpipe ledger (a SQLite database of something else)", path)
	case version > schemaVersion:
		return 0, fmt.Errorf("ledger %s: schema version %d is newer than this convpipe knows (%d); use a newer convpipe", path, version, schemaVersion)
	}
	return version, nil
}

// migrate brings the database to schemaVersion in one transaction; the
// rows without an account of a ledger that holds no other account's go
// to account (see adoptSQL).
func migrate(ctx context.Context, conn *sql.Conn, path, account string) error {
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return fmt.Errorf("ledger %s: begin migration: %w", path, sqlError(err))
	}
	err := func() error {
		version, err := checkSchema(ctx, conn, path)
		if err != nil {
			return err
		}
		for i := version; i < schemaVersion; i++ {
			if _, err := conn.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("ledger %s: migrate to schema version %d: %w", path, i+1, sqlError(err))
			}
			if fix := migrationFixes[i]; fix != nil {
				if err := fix(ctx, conn); err != nil {
					return fmt.Errorf("ledger %s: migrate to schema version %d: %w", path, i+1, sqlError(err))
				}
			}
		}
		var adopt bool
		if account != "" {
			if err := conn.QueryRowContext(ctx, adoptSQL).Scan(&adopt); err != nil {
				return fmt.Errorf("ledger %s: read the accounts: %w", path, sqlError(err))
			}
		}
		for _, t := range accountTables {
			if !adopt {
				break
			}
			if _, err := conn.ExecContext(ctx, `UPDATE `+t+` SET account = ? WHERE account = ''`, account); err != nil {
				return fmt.Errorf("ledger %s: give the %s without an account to %s: %w", path, t, account, sqlError(err))
			}
		}
		if version < schemaVersion {
			if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
				return fmt.Errorf("ledger %s: set schema version: %w", path, sqlError(err))
			}
			if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA application_id = %d`, applicationID)); err != nil {
				return fmt.Errorf("ledger %s: set application id: %w", path, sqlError(err))
			}
		}
		return nil
	}()
	if err != nil {
		conn.ExecContext(context.Background(), `ROLLBACK`)
		return err
	}
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		conn.ExecContext(context.Background(), `ROLLBACK`)
		return fmt.Errorf("ledger %s: commit migration: %w", path, sqlError(err))
	}
	return nil
}
