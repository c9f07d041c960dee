package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	_ Store = (*Postgres)(nil)
	_ Store = (*Ledger)(nil)
)

// Postgres is a pipeline.Ledger in a PostgreSQL database (with
// github.com/jackc/pgx/v5), for runners that share one ledger or whose
// disk does not outlive a run. It keeps the SQLite ledger's promises:
//
//   - Durability: every write is durable when its call returns. Each
//     session sets synchronous_commit=on, so a commit returns only once
//     the server flushed its WAL; concurrent writes share one
//     transaction (group commit), sent as one pipelined batch.
//   - Locking: Open takes a session-level advisory lock (one per account)
//     on the writer's connection, and a second Open of the same account
//     (on any machine) fails, after trying for pgLockGrace, with a
//     *LockedError naming the holder, which the holders table records.
//     The server drops the lock when the holder's connection ends,
//     however it ends. Every write goes through that connection: when it
//     is lost, so is the lock, and every later write fails (no write is
//     made without the lock); the run must stop. Opened with
//     Options.Shared, runs of one account hold the lock shared and
//     claim what they read and send instead (see pgClaims).
//   - New and lost ledgers: Open brings an existing ledger's schema up to
//     date, under an advisory lock so that two runners migrating at once
//     are safe, but makes a new ledger only with Options.Create (`convpipe
//     ledger init`): a URL naming the wrong database, or a database
//     restored empty, is an error, not a new ledger that would send again
//     every conversion the lost one recorded as sent.
//   - Secrets: the password comes from PGPASSWORD, a passfile or a URL
//     given in the environment; no message, log line or lock record holds
//     it (the ledger's name is its URL without the password).
//
// Settled answers from the same in-memory index as the SQLite ledger.
type Postgres struct {
	account  string // whose entries this Ledger reads and writes
	lockKey  int64  // the account's run lock
	name     string // the URL without the password, for messages
	secret   string // the password, scrubbed from every message
	readOnly bool
	holder   Holder
	holderMu sync.Mutex

	pool  *pgxpool.Pool // readers
	wconn *pgx.Conn     // the writer's connection, holding the run lock

	claims *pgClaims // with Options.Shared; see pgclaims.go

	maxBatch   int
	reqs       chan *pgWriteReq
	quit       chan struct{}
	writerDone chan struct{}
	broken     atomic.Pointer[error]

	idx     atomic.Pointer[index]
	idxLoad sync.Mutex

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// IsURL reports whether s names a PostgreSQL ledger (postgres:// or
// postgresql://) rather than a SQLite file.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// RedactURL returns a ledger URL without its password (in the user
// information or a password query parameter), for messages.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "postgres://(an unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	for _, k := range []string{"password", "sslpassword"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// OpenPostgres opens the ledger in the database at rawURL for a run and
// takes its lock (see Postgres). passfile, when not empty, is a
// PostgreSQL password file to read the password from.
func OpenPostgres(ctx context.Context, rawURL, passfile string, opts Options) (*Postgres, error) {
	l, cfg, err := newPostgres(rawURL, passfile, opts)
	if err != nil {
		return nil, err
	}
	if err := l.openWriter(ctx, cfg.ConnConfig, opts); err != nil {
		l.closeAll()
		return nil, l.redact(err)
	}
	if err := l.openPool(ctx, cfg); err != nil {
		l.closeAll()
		return nil, l.redact(err)
	}
	l.reqs = make(chan *pgWriteReq)
	l.quit = make(chan struct{})
	l.writerDone = make(chan struct{})
	go l.writer()
	if l.claims != nil {
		go l.renew()
	}
	return l, nil
}

// OpenPostgresReadOnly opens the ledger in the database at rawURL for
// reading, without its lock. Its writes return ErrReadOnly.
func OpenPostgresReadOnly(ctx context.Context, rawURL, passfile string) (*Postgres, error) {
	l, cfg, err := newPostgres(rawURL, passfile, Options{})
	if err != nil {
		return nil, err
	}
	l.readOnly = true
	if err := l.openPool(ctx, cfg); err != nil {
		l.closeAll()
		return nil, l.redact(err)
	}
	version, err := pgCheckSchema(ctx, l.pool, l.name)
	var accounts []string
	switch {
	case err != nil:
	case version == 0:
		err = noSchemaError(l.name)
	case version != pgSchemaVersion:
		err = fmt.Errorf("ledger %s: schema version %d, this convpipe reads %d (a run with this convpipe migrates it)", l.name, version, pgSchemaVersion)
	default:
		accounts, err = l.Accounts(ctx)
	}
	if err != nil {
		l.closeAll()
		return nil, l.redact(err)
	}
	l.account = defaultAccount(accounts)
	return l, nil
}

// newPostgres parses the URL and makes the Ledger, not yet connected.
func newPostgres(rawURL, passfile string, opts Options) (*Postgres, *pgxpool.Config, error) {
	name := RedactURL(rawURL)
	if !IsURL(rawURL) {
		return nil, nil, fmt.Errorf("ledger %s: not a postgres:// URL", name)
	}
	connString := rawURL
	if passfile != "" {
		sep := "?"
		if strings.Contains(connString, "?") {
			sep = "&"
		}
		connString += sep + "passfile=" + url.QueryEscape(passfile)
		if _, err := os.Stat(passfile); err != nil {
			return nil, nil, fmt.Errorf("ledger %s: passfile: %w", name, err)
		}
	}
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// pgx's message redacts the password as best it can; the
		// password is scrubbed from it as well.
		return nil, nil, fmt.Errorf("ledger %s: cannot parse the URL: %s", name, scrub(err.Error(), urlPassword(rawURL)))
	}
	cc := cfg.ConnConfig
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	// Durable commits whatever the server's default, and the
	// application's name in pg_stat_activity.
	cc.RuntimeParams["synchronous_commit"] = "on"
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = "convpipe"
	}
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = 15 * time.Second
	}
	host, _ := os.Hostname()
	l := &Postgres{name: name, secret: cc.Password, maxBatch: opts.MaxBatch, account: opts.Account, lockKey: pgRunLockOf(opts.Account),
		holder: Holder{PID: os.Getpid(), Host: host, Command: opts.Command, Since: time.Now().UTC()}}
	if l.maxBatch <= 0 {
		l.maxBatch = 1000
	}
	if opts.Shared {
		l.claims = newPgClaims(opts, l.holderJSON())
	}
	return l, cfg, nil
}

// urlPassword returns the password written in a URL, if any.
func urlPassword(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}

// scrub replaces every occurrence of secret in s.
func scrub(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "xxxxx")
}

// redactedError is an error whose message has the password scrubbed from
// it; it unwraps to the original.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact returns err with the password scrubbed from its message.
func (l *Postgres) redact(err error) error {
	if err == nil || l.secret == "" || !strings.Contains(err.Error(), l.secret) {
		return err
	}
	return &redactedError{msg: scrub(err.Error(), l.secret), err: err}
}

// Name returns the ledger's URL without its password.
func (l *Postgres) Name() string { return l.name }

// connectError says what a failed connection means.
func (l *Postgres) connectError(err error) error {
	msg := "cannot connect to the database"
	if strings.Contains(err.Error(), "password authentication failed") || strings.Contains(err.Error(), "no password") {
		msg += " (check PGPASSWORD, the passfile or the user in the URL)"
	}
	return fmt.Errorf("ledger %s: %s: %w", l.name, msg, err)
}

// openWriter connects the writer's connection, migrates the schema and
// takes the run lock.
func (l *Postgres) openWriter(ctx context.Context, cc *pgx.ConnConfig, opts Options) error {
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return l.connectError(err)
	}
	l.wconn = conn
	if err := pgMigrate(ctx, conn, l.name, opts.Create, l.account); err != nil {
		return err
	}
	got, err := l.tryLock(ctx, conn)
	if err != nil {
		return err
	}
	if !got {
		le := &LockedError{Path: l.name}
		var h string
		if err := conn.QueryRow(ctx, `SELECT holder FROM convpipe.holders WHERE lock_key = $1`, l.lockKey).Scan(&h); err == nil {
			json.Unmarshal([]byte(h), &le.Holder)
		}
		return le
	}
	// The probe: a real, durable write before anything is sent.
	if _, err := conn.Exec(ctx, pgHolderSQL, l.lockKey, l.holderJSON()); err != nil {
		return fmt.Errorf("ledger %s: not writable: %w", l.name, pgError(err))
	}
	return nil
}

// pgLockGrace is how long Open tries the run lock before it reports the
// ledger locked: the server drops a killed holder's lock only once it has
// seen that holder's connection close, a moment after the kill.
const pgLockGrace = 3 * time.Second

// tryLock tries to take the run lock for up to pgLockGrace.
func (l *Postgres) tryLock(ctx context.Context, conn *pgx.Conn) (bool, error) {
	deadline := time.Now().Add(pgLockGrace)
	try := `SELECT pg_try_advisory_lock($1)`
	if l.claims != nil {
		try = `SELECT pg_try_advisory_lock_shared($1)` // runs side by side, by claims
	}
	for {
		var got bool
		if err := conn.QueryRow(ctx, try, l.lockKey).Scan(&got); err != nil {
			return false, fmt.Errorf("ledger %s: take the run lock: %w", l.name, err)
		}
		if got || time.Now().After(deadline) {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("ledger %s: take the run lock: %w", l.name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

const pgHolderSQL = `INSERT INTO convpipe.holders (lock_key, holder) VALUES ($1, $2)
	ON CONFLICT (lock_key) DO UPDATE SET holder = excluded.holder`

func (l *Postgres) holderJSON() string {
	l.holderMu.Lock()
	defer l.holderMu.Unlock()
	b, _ := json.Marshal(l.holder)
	return string(b)
}

// openPool opens the readers' pool and checks it connects.
func (l *Postgres) openPool(ctx context.Context, cfg *pgxpool.Config) error {
	// Entries holds a connection while its callback may call Get.
	cfg.MaxConns = int32(2*runtime.GOMAXPROCS(0) + 2)
	cfg.MinConns = 0
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return l.connectError(err)
	}
	l.pool = pool
	if err := pool.Ping(ctx); err != nil {
		return l.connectError(err)
	}
	return nil
}

// Close stops the writer after the writes already queued, releases the
// run lock and closes the connections. Calling Close again returns the
// first result.
func (l *Postgres) Close() error {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		if l.quit != nil {
			close(l.quit)
			<-l.writerDone
		}
		l.stopClaims()
		l.closeErr = l.closeAll()
	})
	return l.closeErr
}

func (l *Postgres) closeAll() error {
	var errs []error
	if l.wconn != nil && !l.wconn.IsClosed() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		// Closing the connection drops the lock too; unlocking first
		// frees it at once.
		_, _ = l.wconn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
		errs = append(errs, l.wconn.Close(ctx))
		cancel()
	}
	if l.pool != nil {
		l.pool.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return l.redact(fmt.Errorf("ledger %s: close: %w", l.name, err))
	}
	return nil
}

// readable returns ErrClosed, wrapped, once the ledger is closed.
func (l *Postgres) readable(op string) error {
	if l.closed.Load() {
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, ErrClosed)
	}
	return nil
}

// readErr wraps the error of a read.
func (l *Postgres) readErr(op string, err error) error {
	return l.redact(fmt.Errorf("ledger %s: %s: %w", l.name, op, pgError(err)))
}

// Made reports whether the ledger named by c exists, or may exist: for a
// PostgreSQL ledger always true (opening it tells).
func (c Config) Made() bool {
	if c.URL != "" {
		return true
	}
	return Made(c.Path)
}
