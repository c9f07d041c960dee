// Package ledger is convpipe's durable record of every conversion, every
// processed object and every run: an embedded SQLite database (the pure-Go
// modernc.org/sqlite, no cgo) that implements pipeline.Ledger.
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL: every commit fsyncs
// the WAL before it returns, so a write whose call returned survives a
// SIGKILL of the process and also a crash of the machine or a power loss.
// synchronous=NORMAL would survive a process crash too (the WAL is in the
// kernel's page cache) but not a machine crash, and a ledger that forgets an
// accepted conversion makes the next run send it twice. FULL costs one fsync
// per transaction; the ledger pays it once per batch, not once per write:
// a single writer goroutine owns the only write connection and commits the
// writes of every concurrent caller that arrived while the previous commit
// was syncing in one transaction (group commit). Each call returns only
// after the transaction holding its write committed.
//
// Measured here (2 shared cores, BenchmarkPut): about 12,000 durable
// Puts/s from 8 concurrent callers and 20,000/s from 64, against about
// 3,000/s for one caller alone; PutAll gives one caller the same batching.
//
// # Lookups
//
// Get is one indexed SQL query (about 20-30 µs here). The question a rerun
// asks of every order, "is this key final with this payload?", has a
// faster path: Settled answers it from an in-memory index of the ledger
// (16 bytes per entry, loaded by its first call), a million lookups in
// under 2 s including the load (BenchmarkRerun1M). Once the index is
// loaded, Get also answers "no such key" from memory.
//
// # Locking
//
// Open takes an exclusive advisory lock (flock) on "<path>.lock" and records
// in it who holds it. A second Open, in this process or another, fails at
// once with a *LockedError that wraps pipeline.ErrLocked and names the
// holder. The kernel drops the lock when the holder's process ends, however
// it ends. OpenReadOnly takes no lock: `ledger export` and `ledger show`
// read while a run writes (WAL readers never block the writer).
//
// Deleting the lock file would let a second Open lock a new one while the
// first still runs; so on Linux Open also locks the ledger file itself,
// with an open-file-description lock on a byte far past the bytes SQLite
// locks and past any database's size (it never meets SQLite's locks, nor
// does it on a network file system, where flock would lock the whole
// file). A second Open then fails with a *LockedError even without the
// lock file; it names the holder as the marker file records it. Elsewhere
// (BSD and macOS, whose flock locks exclude SQLite's fcntl ones) the lock
// file's lock is the only one. A ledger file this process may not write
// is not locked: the probe write (see Storage faults) refuses it.
// Closing any descriptor of a file drops every POSIX lock the process
// holds on it, SQLite's included, so the ledger's descriptor is closed
// only once no connection of the process uses the file any more.
//
// Open with Options.Shared takes both locks shared instead (flock's
// LOCK_SH, a read lock on the byte): runs of one machine that share the
// ledger open it at once, each claiming what it reads and sends (see
// sqliteClaims), while an Open without Shared (a run alone, `ledger
// init`, `reconcile`) still holds the ledger alone, and fails with a
// *LockedError beside shared runs, as they do beside it. Their writes
// take turns, each waiting for the other processes' commit in progress,
// and each durable as before. The WAL's index is in memory that only the
// processes of one machine share, so a SQLite ledger is shared by the
// runs of one machine, on its own disk: Open with Shared refuses a
// ledger on a network file system (see checkSharedFS), and runs on
// several machines share a PostgreSQL ledger (see OpenPostgres).
//
// # New and lost ledgers
//
// Open makes a new ledger only where there is nothing: no ledger file (or
// an empty one) and no marker file. Making it, Open writes the marker file
// PATH.marker beside it, and each Open and BeginRun rewrites it with the
// ledger's latest use (the last run begun, the last opener). While the
// marker exists, a ledger file that is missing, 0 bytes long or a database
// without the ledger's tables is a lost ledger, not a new one: Open and
// OpenReadOnly fail with a *LostError that names the path and the last run
// the marker records, since a new ledger would send again every
// conversion the lost one recorded as sent. Restore the ledger from a
// backup, or remove it and its marker to start afresh. A ledger made
// before markers existed gets its marker at its next Open. The marker
// guards against losing the ledger file only: a directory removed as a
// whole takes the marker with it.
//
// # Files
//
// Beside the database at PATH (and SQLite's PATH-wal and PATH-shm) are
// its lock file PATH.lock, its marker file PATH.marker and the results
// files of runs (PATH.results-RUN.csv, see ResultsPath). They hold orders
// and customers' data: Open and WriteResultsFile create them readable and
// writable by their owner only (0600, less what the umask takes away;
// SQLite gives its files the database's mode). A file that exists keeps
// its mode.
//
// # Storage faults
//
// Open fails, before anything is sent, when the lock file or the database
// cannot be created or written (it commits a probe write). A write that
// fails later (disk full, I/O error, read-only file) returns an error naming
// the ledger, the write and the cause; the pipeline must then stop sending.
package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"convpipe/pipeline"
)

var (
	_ pipeline.Ledger  = (*Ledger)(nil)
	_ pipeline.Settler = (*Ledger)(nil)
)

// ErrClosed is returned by calls on a closed Ledger.
var ErrClosed = errors.New("ledger is closed")

// ErrReadOnly is returned by writes to a Ledger opened with OpenReadOnly.
var ErrReadOnly = errors.New("ledger is open read-only")

// ErrInvalidEntry marks a Put refused for the entry itself (no OrderId,
// an unknown state), not for the storage: nothing was written, and other
// writes can go on.
var ErrInvalidEntry = errors.New("invalid entry")

// DefaultPath is the ledger's path when the configuration names none.
const DefaultPath = "convpipe-ledger.db"

// Config is the ledger's part of the configuration file.
type Config struct {
	// Path is the SQLite file. Its lock file is Path + ".lock" and its
	// marker file Path + ".marker"; the results files of runs are
	// written next to it.
	Path string `yaml:"path"`
	// URL, when set, names a PostgreSQL ledger instead
	// (postgres://user@host:port/database?sslmode=...), without the
	// password: that comes from PGPASSWORD or Passfile. The environment's
	// CONVPIPE_LEDGER_URL overrides it (see WithEnv), and may hold the
	// password. Path is then only where results files go.
	URL string `yaml:"url"`
	// Passfile is a PostgreSQL password file (see libpq's .pgpass) to
	// read the password from.
	Passfile string `yaml:"passfile"`
	// Shared lets runs of one account use the ledger at once (a
	// PostgreSQL ledger on one machine or several, a SQLite one on one
	// machine): each claims the objects it reads and the orders it sends
	// (see Options.Shared, which `convpipe run` sets from it; the other
	// commands that write hold the ledger alone).
	Shared bool `yaml:"shared"`
	// Lease is how long a shared ledger's claims outlive their run's
	// last renewal: how soon another run takes over the work of one that
	// died. Default DefaultLease.
	Lease time.Duration `yaml:"lease"`

	urlFromEnv bool
}

// Validate reports the first bad field of c.
func (c Config) Validate() error {
	if c.Lease < 0 || (c.Lease > 0 && c.Lease < time.Second) {
		return fmt.Errorf("ledger.lease: %s: must be at least 1s", c.Lease)
	}
	if c.URL != "" {
		return c.validateURL()
	}
	switch {
	case strings.TrimSpace(c.Path) == "":
		return errors.New("ledger.path: must not be empty")
	case strings.HasSuffix(c.Path, "/") || strings.HasSuffix(c.Path, string(filepath.Separator)):
		return fmt.Errorf("ledger.path: %q names a directory; name the database file", c.Path)
	case strings.HasPrefix(c.Path, "s3://"):
		return fmt.Errorf("ledger.path: %q: the ledger must be a local file", c.Path)
	}
	return nil
}

// Options tune Open. The zero value is ready to use.
type Options struct {
	// Command describes this opener (its command line, secrets redacted)
	// in the lock file, for the message a second opener gets.
	Command string
	// MaxBatch is the most writes committed in one transaction; 0 means
	// 1000.
	MaxBatch int
	// Account is the impact account whose entries, objects and runs the
	// ledger reads and writes: one ledger holds many. A ledger made
	// before accounts gives its entries to the Account of the first run
	// that opens it.
	Account string
	// Create lets OpenPostgres make a new ledger in a database that holds
	// none (`convpipe ledger init`). Without it, such a database is an
	// error: the URL may name the wrong one. (Open makes a SQLite ledger
	// where there is nothing, and its marker file tells a lost one.)
	Create bool
	// Shared opens the ledger for a run beside others of the same
	// account: it holds the ledger's lock shared (on PostgreSQL the
	// account's run lock; on SQLite the lock file and the file itself,
	// see Locking), and the run claims what it reads and sends
	// (pipeline.Claimer, see pgClaims and sqliteClaims) and takes its
	// requests from the account's quota (pipeline.Quota).
	Shared bool
	// Lease is the claims' lease (Config.Lease); 0 means DefaultLease.
	Lease time.Duration
}

// Ledger is a pipeline.Ledger on a SQLite file. It is safe for concurrent
// use; Close it to release the lock.
type Ledger struct {
	account  string // whose entries this Ledger reads and writes
	name     string // the path as given, for messages
	abs      string // the absolute path
	readOnly bool
	lock     *flock
	file     *fileLock // this Ledger's use (and lock) of its database file

	markMu sync.Mutex // serializes writes of the marker file
	marker marker     // what the marker file says
	marked bool       // whether there was a marker file at Open

	rdb     *sql.DB // readers
	getStmt *sql.Stmt
	objStmt *sql.Stmt

	wdb       *sql.DB   // the single write connection's pool
	wconn     *sql.Conn // the write connection, owned by the writer goroutine
	putStmt   *sql.Stmt
	markStmt  *sql.Stmt
	beginStmt *sql.Stmt
	endStmt   *sql.Stmt

	shared bool          // opened with Options.Shared
	busyMS string        // its connections' busy_timeout (see busyTimeoutMS)
	claims *sqliteClaims // with Options.Shared; see sqliteclaims.go

	maxBatch   int
	reqs       chan *writeReq
	quit       chan struct{}
	writerDone chan struct{}

	idx     atomic.Pointer[index] // loaded by the first Settled
	idxLoad sync.Mutex

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open opens the ledger at path for a run, creating it (and its directory)
// when there is nothing there, and bringing its schema up to date. It
// takes the ledger's lock: when another process or another Open holds it,
// Open fails at once with a *LockedError (errors.Is(err,
// pipeline.ErrLocked)). With opts.Shared it takes the lock shared with
// other shared Opens (see Locking), and refuses a ledger on a network
// file system. A ledger that its marker file says was made but that is
// missing or empty is not made anew: Open fails with a *LostError.
func Open(ctx context.Context, path string, opts Options) (*Ledger, error) {
	if strings.TrimSpace(path) == "" {
		return nil, errors.New("ledger: open: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("ledger %s: create directory: %w", path, err)
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("ledger %s: is a directory; name the database file", path)
	}
	if opts.Shared {
		if err := checkSharedFS(path, filepath.Dir(abs)); err != nil {
			return nil, err
		}
	}
	lk, err := lockFile(abs, opts.Command, opts.Shared)
	if err != nil {
		var le *LockedError
		if errors.As(err, &le) {
			le.Path = path
		}
		return nil, err
	}
	l := &Ledger{name: path, abs: abs, lock: lk, maxBatch: opts.MaxBatch, account: opts.Account, busyMS: busyTimeoutMS}
	if l.maxBatch <= 0 {
		l.maxBatch = 1000
	}
	if opts.Shared {
		l.shared, l.busyMS = true, sharedBusyTimeoutMS
	}
	if err := l.openFiles(ctx); err != nil {
		l.closeAll()
		return nil, err
	}
	l.reqs = make(chan *writeReq)
	l.quit = make(chan struct{})
	l.writerDone = make(chan struct{})
	go l.writer()
	if opts.Shared {
		l.startClaims(opts)
	}
	return l, nil
}

// OpenReadOnly opens an existing ledger for reading, without its lock, so
// that it can be read while a run holds it. Its writes return ErrReadOnly.
// It reads the entries of the only account the ledger holds (or of the
// account "" when it holds several; see SetAccount).
// A lost ledger (see Open) fails with a *LostError.
func OpenReadOnly(ctx context.Context, path string) (*Ledger, error) {
	if strings.TrimSpace(path) == "" {
		return nil, errors.New("ledger: open: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	l := &Ledger{name: path, abs: abs, readOnly: true, busyMS: busyTimeoutMS}
	if err := l.checkFile(abs); err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("ledger %s: is a directory; name the database file", path)
	}
	l.file = useLedgerFile(abs)
	if err := l.openReaders(ctx, abs, true); err != nil {
		l.closeAll()
		return nil, err
	}
	accounts, err := l.Accounts(ctx)
	if err != nil {
		l.closeAll()
		return nil, err
	}
	l.account = defaultAccount(accounts)
	return l, nil
}

// openFiles opens the database of a locked ledger, after making sure that
// it is not a lost one (see checkFile), and records the Open in its
// marker file.
func (l *Ledger) openFiles(ctx context.Context) error {
	if err := l.checkFile(l.abs); err != nil {
		return err
	}
	if err := createPrivate(l.abs); err != nil {
		return fmt.Errorf("ledger %s: create: %w", l.name, err)
	}
	fl, err := lockLedgerFile(l.abs, l.lock)
	var le *LockedError
	if errors.As(err, &le) {
		// Held, though the lock file was free: it was deleted, and the
		// new one names nobody. The marker names the last opener.
		le.Path = l.name
		if le.Holder.PID == 0 {
			le.Holder = l.marker.OpenedBy
		}
		return le
	}
	if err != nil {
		return fmt.Errorf("ledger %s: lock the ledger file: %w", l.name, err)
	}
	l.file = fl
	created, err := l.openDBs(ctx)
	if err != nil {
		return err
	}
	return l.markOpen(ctx, l.abs, created)
}

// sharedOpenWait is how long a shared Open tries again when the database
// is busy: while another run of the machine opens, migrates or
// checkpoints it, a new connection's first statements can be refused at
// once (SQLite calls no busy handler for some of its locks).
const sharedOpenWait = time.Minute

// openDBs opens the write connection and the readers; a shared ledger
// tries again, with new connections, while the database is busy.
func (l *Ledger) openDBs(ctx context.Context) (bool, error) {
	deadline := time.Now().Add(sharedOpenWait)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		created, err := l.openWriter(ctx, l.abs)
		if err == nil {
			err = l.openReaders(ctx, l.abs, false)
		}
		if err == nil || !l.shared || !isBusy(err) || time.Now().After(deadline) {
			return created, err
		}
		if cerr := l.closeDBs(); cerr != nil {
			return false, errors.Join(err, cerr)
		}
		select {
		case <-ctx.Done():
			return false, errors.Join(err, ctx.Err())
		case <-time.After(wait + time.Duration(rand.Int64N(int64(wait)))):
		}
	}
}

// isBusy reports whether err is SQLite's "database is busy" or "locked".
func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code() & 0xff
	return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
}

// createPrivate creates the database file, empty and readable and
// writable by its owner only, when there is none: SQLite would create it
// 0644 less the umask, and it gives the WAL and shared-memory files the
// mode of the database file.
func createPrivate(abs string) error {
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// No SQLite connection of this process has this new file open, so
	// closing it drops none of their POSIX locks.
	return f.Close()
}

// Path returns the ledger's path as given to Open.
func (l *Ledger) Path() string { return l.name }

// dsn returns the SQLite URI of path with the given query parameters.
// SQLite %-decodes the path of a file: URI, so '%', '?' and '#' are escaped.
func dsn(path string, params url.Values) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(filepath.ToSlash(path)) + "?" + params.Encode()
}

// busyTimeoutMS is how long a statement waits for a lock of the database
// that another connection holds: a reader's for the writer's checkpoint,
// the writer's for a reader of another process (`ledger export`).
// sharedBusyTimeoutMS is a shared ledger's, whose writes also wait for
// those of the other runs of the machine (see sqliteclaims.go).
const (
	busyTimeoutMS       = "10000"
	sharedBusyTimeoutMS = "120000"
)

// openWriter opens the write connection and brings the schema up to date;
// it returns whether the database was new (it had no schema).
func (l *Ledger) openWriter(ctx context.Context, abs string) (bool, error) {
	p := url.Values{}
	p.Add("_pragma", "busy_timeout("+l.busyMS+")")
	p.Add("_pragma", "journal_mode(WAL)")
	p.Add("_pragma", "synchronous(FULL)")
	// On macOS, sync with F_FULLFSYNC, which reaches the platter; no
	// effect elsewhere.
	p.Add("_pragma", "fullfsync(1)")
	p.Add("_pragma", "cache_size(-16384)")
	p.Add("_pragma", "foreign_keys(0)")
	// Truncate a WAL that a long reader let grow, once checkpointed.
	p.Add("_pragma", "journal_size_limit(67108864)")
	db, err := sql.Open("sqlite", dsn(abs, p))
	if err != nil {
		return false, fmt.Errorf("ledger %s: open: %w", l.name, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	l.wdb = db
	conn, err := db.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("ledger %s: open: %w", l.name, sqlError(err))
	}
	l.wconn = conn
	var mode string
	if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return false, fmt.Errorf("ledger %s: open: %w", l.name, sqlError(err))
	}
	if !strings.EqualFold(mode, "wal") {
		return false, fmt.Errorf("ledger %s: open: journal mode is %q, not wal (is the file on a file system without shared memory?)", l.name, mode)
	}
	// A ledger that has a marker but no schema is a lost one: refuse it
	// before migrate makes it a new ledger.
	version, err := checkSchema(ctx, conn, l.name)
	if err != nil {
		return false, err
	}
	if err := l.checkVersion(version); err != nil {
		return false, err
	}
	if err := migrate(ctx, conn, l.name, l.account); err != nil {
		return false, err
	}
	// Probe: commit a real write, so that an unwritable file or a full
	// disk fails here, before anything is sent.
	if err := l.probe(ctx); err != nil {
		return false, err
	}
	for _, s := range []struct {
		st  **sql.Stmt
		sql string
	}{
		{&l.putStmt, putSQL},
		{&l.markStmt, markObjectSQL},
		{&l.beginStmt, beginRunSQL},
		{&l.endStmt, finishRunSQL},
	} {
		st, err := conn.PrepareContext(ctx, s.sql)
		if err != nil {
			return false, fmt.Errorf("ledger %s: prepare: %w", l.name, sqlError(err))
		}
		*s.st = st
	}
	return version == 0, nil
}

func (l *Ledger) probe(ctx context.Context) error {
	h, _ := json.Marshal(l.lock.holder)
	return runTx(ctx, l.wconn, func(ctx context.Context) error {
		_, err := l.wconn.ExecContext(ctx, `INSERT INTO meta (name, value) VALUES ('last_open', ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, string(h))
		return err
	}, func(err error) error {
		return fmt.Errorf("ledger %s: not writable: %w", l.name, sqlError(err))
	})
}

func (l *Ledger) openReaders(ctx context.Context, abs string, readOnly bool) error {
	p := url.Values{}
	p.Add("_pragma", "busy_timeout("+l.busyMS+")")
	p.Add("_pragma", "cache_size(-4096)")
	if readOnly {
		p.Set("mode", "ro")
	} else {
		p.Set("_query_only", "1")
	}
	db, err := sql.Open("sqlite", dsn(abs, p))
	if err != nil {
		return fmt.Errorf("ledger %s: open: %w", l.name, err)
	}
	// No cap on open connections: Entries holds one while its callback
	// may call Get. Idle ones are kept with their prepared statements.
	db.SetMaxIdleConns(2*runtime.GOMAXPROCS(0) + 2)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	l.rdb = db
	if readOnly {
		version, err := checkSchema(ctx, db, l.name)
		if err != nil {
			return err
		}
		if err := l.checkVersion(version); err != nil {
			return err
		}
		if version != schemaVersion {
			return fmt.Errorf("ledger %s: schema version %d, this convpipe reads %d (a run with this convpipe migrates it)", l.name, version, schemaVersion)
		}
	}
	if l.getStmt, err = db.PrepareContext(ctx, getSQL); err != nil {
		return fmt.Errorf("ledger %s: open: %w", l.name, sqlError(err))
	}
	if l.objStmt, err = db.PrepareContext(ctx, objectSQL); err != nil {
		return fmt.Errorf("ledger %s: open: %w", l.name, sqlError(err))
	}
	return nil
}

// Close stops the writer after the writes already queued, closes the
// database and releases the lock. Writes that were not queued yet fail
// with ErrClosed. Calling Close again returns the first result.
func (l *Ledger) Close() error {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		l.stopRenewing()
		if l.quit != nil {
			close(l.quit)
			<-l.writerDone
		}
		// The writer is done: its connection is free for the last write.
		l.dropClaims()
		l.closeErr = l.closeAll()
	})
	return l.closeErr
}

func (l *Ledger) closeAll() error {
	errs := []error{l.closeDBs()}
	// After every connection of this Ledger is closed.
	errs = append(errs, l.file.release())
	if l.lock != nil {
		errs = append(errs, l.lock.release())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ledger %s: close: %w", l.name, err)
	}
	return nil
}

// closeDBs closes the Ledger's statements and connections, and forgets
// them.
func (l *Ledger) closeDBs() error {
	var errs []error
	for _, st := range []**sql.Stmt{&l.getStmt, &l.objStmt, &l.putStmt, &l.markStmt, &l.beginStmt, &l.endStmt} {
		if *st != nil {
			errs = append(errs, (*st).Close())
			*st = nil
		}
	}
	if l.wconn != nil {
		errs = append(errs, l.wconn.Close())
		l.wconn = nil
	}
	if l.wdb != nil {
		errs = append(errs, l.wdb.Close())
		l.wdb = nil
	}
	if l.rdb != nil {
		errs = append(errs, l.rdb.Close())
		l.rdb = nil
	}
	return errors.Join(errs...)
}

// readable returns ErrClosed, wrapped, once the ledger is closed.
func (l *Ledger) readable(op string) error {
	if l.closed.Load() {
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, ErrClosed)
	}
	return nil
}

// sqlError puts the storage failures a person must act on into plain words
// in front of SQLite's own message.
func sqlError(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL:
		return fmt.Errorf("disk full: %w", err)
	case sqlite3.SQLITE_READONLY:
		return fmt.Errorf("storage is read-only: %w", err)
	case sqlite3.SQLITE_IOERR:
		return fmt.Errorf("storage i/o error (disk full, removed or failing?): %w", err)
	case sqlite3.SQLITE_CANTOPEN:
		return fmt.Errorf("cannot open the database file (missing or unwritable directory?): %w", err)
	case sqlite3.SQLITE_PERM:
		return fmt.Errorf("permission denied: %w", err)
	case sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("not a SQLite database: %w", err)
	case sqlite3.SQLITE_CORRUPT:
		return fmt.Errorf("database file is corrupt: %w", err)
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return fmt.Errorf("database is busy (another process writes to it?): %w", err)
	}
	return err
}

// nanos stores a time as nanoseconds since the epoch; the zero time as 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos, in UTC.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
