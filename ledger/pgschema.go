package ledger

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// pgSchema is the PostgreSQL schema (namespace) that holds a ledger's
// tables. One database holds one ledger.
const pgSchema = "convpipe"

// pgMigrations are the PostgreSQL schema's steps; meta's schema_version
// is the number of steps applied. Append new steps; never edit an old one.
//
// As in the SQLite ledger, times are bigint nanoseconds since the Unix
// epoch, UTC (read them with to_timestamp(created/1e9)), and messages and
// refs are JSON texts, NULL when empty. The keys (event type, OrderId and
// an object's key) come from shops' files and are kept byte for byte,
// invalid UTF-8 included, as bytea (read them with
// convert_from(order_id, 'UTF8')); bytea sorts bytewise, as SQLite sorts
// them. Run ids sort bytewise too (COLLATE "C").
var pgMigrations = []string{
	// 1: the first schema.
	`CREATE SCHEMA IF NOT EXISTS convpipe;
	CREATE TABLE convpipe.meta (
		name  text PRIMARY KEY,
		value text NOT NULL
	);
	CREATE TABLE convpipe.conversions (
		event_type    bytea NOT NULL,
		order_id      bytea NOT NULL,
		state         text NOT NULL CHECK (state IN ('pending','accepted','rejected','failed','invalid','skipped','changed')),
		payload_hash  text NOT NULL DEFAULT '',
		sent_hash     text NOT NULL DEFAULT '',
		attempts      integer NOT NULL DEFAULT 0,
		http_status   integer NOT NULL DEFAULT 0,
		messages      text,
		submission_id text NOT NULL DEFAULT '',
		queued_uri    text NOT NULL DEFAULT '',
		maybe_sent    boolean NOT NULL DEFAULT false,
		refs          text,
		run_id        text COLLATE "C" NOT NULL DEFAULT '',
		created       bigint NOT NULL,
		updated       bigint NOT NULL,
		PRIMARY KEY (event_type, order_id)
	);
	CREATE INDEX conversions_state ON convpipe.conversions (state);
	CREATE INDEX conversions_run ON convpipe.conversions (run_id);
	CREATE INDEX conversions_order ON convpipe.conversions (order_id);
	CREATE TABLE convpipe.objects (
		key          bytea PRIMARY KEY,
		etag         text NOT NULL,
		size         bigint NOT NULL,
		modtime      bigint NOT NULL,
		run_id       text NOT NULL,
		processed_at bigint NOT NULL
	);
	CREATE TABLE convpipe.runs (
		id       text COLLATE "C" PRIMARY KEY,
		started  bigint NOT NULL,
		finished bigint,
		args     text NOT NULL DEFAULT '',
		summary  text
	);
	CREATE TABLE convpipe.holders (
		lock_key bigint PRIMARY KEY,
		holder   text NOT NULL
	);`,
	// 2: the account, first in each key: one ledger holds many
	// accounts, and runs of different accounts hold different locks.
	// pgMigrate gives the rows of an existing ledger the account of the
	// run that migrates it.
	`ALTER TABLE convpipe.conversions ADD COLUMN account text COLLATE "C" NOT NULL DEFAULT '';
	ALTER TABLE convpipe.conversions DROP CONSTRAINT conversions_pkey;
	ALTER TABLE convpipe.conversions ADD PRIMARY KEY (account, event_type, order_id);
	DROP INDEX convpipe.conversions_state;
	CREATE INDEX conversions_state ON convpipe.conversions (account, state);
	DROP INDEX convpipe.conversions_order;
	CREATE INDEX conversions_order ON convpipe.conversions (account, order_id);
	ALTER TABLE convpipe.objects ADD COLUMN account text COLLATE "C" NOT NULL DEFAULT '';
	ALTER TABLE convpipe.objects DROP CONSTRAINT objects_pkey;
	ALTER TABLE convpipe.objects ADD PRIMARY KEY (account, key);
	ALTER TABLE convpipe.runs ADD COLUMN account text COLLATE "C" NOT NULL DEFAULT '';
	CREATE INDEX runs_account ON convpipe.runs (account, started);`,
	// 3: reconciling (see pgreconcile.go).
	pgReconcileMigration,
	// 4: runs side by side: the claims of the runs of a shared ledger
	// (see pgClaims), and each account's shared quota (see pgQuota).
	// expires and window_start are in the server's clock.
	`CREATE TABLE convpipe.claims (
		account text COLLATE "C" NOT NULL,
		kind    text NOT NULL CHECK (kind IN ('object','order')),
		key     bytea NOT NULL,
		owner   text NOT NULL,
		holder  text NOT NULL,
		expires timestamptz NOT NULL,
		PRIMARY KEY (account, kind, key)
	);
	CREATE INDEX claims_owner ON convpipe.claims (owner);
	CREATE TABLE convpipe.quota (
		account      text COLLATE "C" PRIMARY KEY,
		window_start timestamptz NOT NULL,
		used         bigint NOT NULL DEFAULT 0
	);`,
	// 5: what impact accepted and the corrections since, as in the
	// SQLite ledger's step 4 (pglines.go).
	`CREATE TABLE convpipe.order_lines (
		account      text COLLATE "C" NOT NULL DEFAULT '',
		event_type   bytea NOT NULL,
		order_id     bytea NOT NULL,
		payload_hash text NOT NULL,
		lines        text NOT NULL,
		created      bigint NOT NULL,
		PRIMARY KEY (account, event_type, order_id, payload_hash)
	);
	CREATE TABLE convpipe.corrections (
		account    text COLLATE "C" NOT NULL DEFAULT '',
		event_type bytea NOT NULL,
		order_id   bytea NOT NULL,
		seq        integer NOT NULL,
		state      text NOT NULL,
		data       text NOT NULL,
		run_id     text COLLATE "C" NOT NULL DEFAULT '',
		created    bigint NOT NULL,
		updated    bigint NOT NULL,
		PRIMARY KEY (account, event_type, order_id, seq)
	);
	CREATE INDEX corrections_state ON convpipe.corrections (account, state);
	CREATE INDEX corrections_order ON convpipe.corrections (account, order_id);`,
	// 6: batch files and the place of each order in them (pgbatch.go).
	pgBatchTablesSQL,
	// 7: what each entry's payload was built from (pipeline.Entry.Source).
	`ALTER TABLE convpipe.conversions ADD COLUMN source text NOT NULL DEFAULT ''`,
}

// pgSchemaVersion is the version this code reads and writes.
var pgSchemaVersion = len(pgMigrations)

// pgMigrateLock is the transaction-level advisory lock that migrations
// take, so that two runners migrating at once apply each step once: the
// second waits, then finds the schema up to date.
const pgMigrateLock = 0x63704c47_4d494752 // "cpLGMIGR"

// pgRunLock is the session-level advisory lock that a ledger opened for
// a run of the account "" holds (see Postgres); other accounts hold
// pgRunLockOf theirs.
const pgRunLock = 0x63704c47_52554e31 // "cpLGRUN1"

// pgRunLockOf returns the run lock of account: runs of different
// accounts never wait for each other.
func pgRunLockOf(account string) int64 {
	if account == "" {
		return pgRunLock
	}
	h := fnv.New64a()
	h.Write([]byte(account))
	return int64(h.Sum64() ^ pgRunLock)
}

// errNoSchema marks a database that holds no ledger.
var errNoSchema = errors.New("the database holds no convpipe ledger")

// pgAdopt gives the rows without an account to account when the ledger
// holds no other account's (see adoptSQL).
func pgAdopt(ctx context.Context, tx pgx.Tx, name, account string) error {
	if account == "" {
		return nil
	}
	var adopt bool
	q := strings.NewReplacer(" conversions", " convpipe.conversions", " objects", " convpipe.objects", " runs", " convpipe.runs").Replace(adoptSQL)
	if err := tx.QueryRow(ctx, q).Scan(&adopt); err != nil {
		return fmt.Errorf("ledger %s: read the accounts: %w", name, err)
	}
	for _, t := range accountTables {
		if !adopt {
			break
		}
		if _, err := tx.Exec(ctx, `UPDATE convpipe.`+t+` SET account = $1 WHERE account = ''`, account); err != nil {
			return fmt.Errorf("ledger %s: give the %s without an account to %s: %w", name, t, account, err)
		}
	}
	return nil
}

// noSchemaError is the error for a database that holds no ledger.
func noSchemaError(name string) error {
	return fmt.Errorf("ledger %s: %w (no schema %q): check that the URL names the right database; `convpipe ledger init` makes a new ledger there", name, errNoSchema, pgSchema)
}

// pgQuerier is what pgCheckSchema needs of a connection, a pool or a
// transaction.
type pgQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// pgCheckSchema returns the ledger's schema version: 0 when the database
// has no convpipe schema at all; an error for a schema that is damaged
// (its tables missing) or newer than this code knows.
func pgCheckSchema(ctx context.Context, q pgQuerier, name string) (int, error) {
	var hasSchema, hasMeta bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
		to_regclass($2) IS NOT NULL`, pgSchema, pgSchema+".meta").Scan(&hasSchema, &hasMeta)
	if err != nil {
		return 0, fmt.Errorf("ledger %s: read schema: %w", name, err)
	}
	if !hasSchema {
		return 0, nil
	}
	if !hasMeta {
		return 0, fmt.Errorf("ledger %s: schema %q exists but has no table meta: not a convpipe ledger, or a damaged one (restore it from a backup)", name, pgSchema)
	}
	var v string
	err = q.QueryRow(ctx, `SELECT value FROM convpipe.meta WHERE name = 'schema_version'`).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("ledger %s: schema %q has no schema_version: a damaged ledger (restore it from a backup)", name, pgSchema)
	}
	if err != nil {
		return 0, fmt.Errorf("ledger %s: read schema version: %w", name, err)
	}
	version, err := strconv.Atoi(v)
	if err != nil || version < 1 {
		return 0, fmt.Errorf("ledger %s: schema_version %q is not a version", name, v)
	}
	if version > pgSchemaVersion {
		return 0, fmt.Errorf("ledger %s: schema version %d is newer than this convpipe knows (%d); use a newer convpipe", name, version, pgSchemaVersion)
	}
	return version, nil
}

// pgMigrate brings the ledger's schema to pgSchemaVersion in one
// transaction, under pgMigrateLock. A database without the schema is
// made a ledger only when create is set; otherwise it is an error
// wrapping errNoSchema. The rows of a ledger made before accounts go to
// account.
func pgMigrate(ctx context.Context, conn *pgx.Conn, name string, create bool, account string) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("ledger %s: begin migration: %w", name, err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgMigrateLock)); err != nil {
		return fmt.Errorf("ledger %s: take the migration lock: %w", name, err)
	}
	version, err := pgCheckSchema(ctx, tx, name)
	if err != nil {
		return err
	}
	if version == 0 && !create {
		return noSchemaError(name)
	}
	for i := version; i < pgSchemaVersion; i++ {
		if _, err := tx.Exec(ctx, pgMigrations[i]); err != nil {
			return fmt.Errorf("ledger %s: migrate to schema version %d: %w", name, i+1, err)
		}
	}
	if err := pgAdopt(ctx, tx, name, account); err != nil {
		return err
	}
	if version == pgSchemaVersion {
		return tx.Commit(ctx)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO convpipe.meta (name, value) VALUES ('schema_version', $1)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, strconv.Itoa(pgSchemaVersion)); err != nil {
		return fmt.Errorf("ledger %s: set schema version: %w", name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("ledger %s: commit migration: %w", name, err)
	}
	return nil
}
