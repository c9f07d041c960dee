package ledger

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"convpipe/pipeline"
)

// URLEnv is the environment variable that names a PostgreSQL ledger; it
// overrides ledger.url of the configuration.
const URLEnv = "CONVPIPE_LEDGER_URL"

// Store is a ledger of either backend, the SQLite file (*Ledger) or the
// PostgreSQL database (*Postgres): what convpipe's commands use. Both keep
// the same promises (see pipeline.Ledger and each type).
type Store interface {
	pipeline.Ledger
	pipeline.Settler
	pipeline.SourceSettler
	pipeline.Claimer // see claims.go and pgclaims.go
	pipeline.Quota   // see pgquota.go
	pipeline.CorrectionLedger
	pipeline.BatchLedger
	// PutAll is Put for several entries, in one transaction.
	PutAll(ctx context.Context, es []pipeline.Entry) error
	// Counts returns the number of entries in each state that has any.
	Counts(ctx context.Context) (map[pipeline.State]int64, error)
	// Run returns one recorded run, and false when there is none.
	Run(ctx context.Context, id string) (pipeline.RunInfo, bool, error)
	// Runs calls fn for each recorded run, oldest first.
	Runs(ctx context.Context, fn func(pipeline.RunInfo) error) error
	// Objects calls fn for each processed object, in key order.
	Objects(ctx context.Context, fn func(ObjectRecord) error) error
	// Name is the ledger's path, or its URL without the password: what
	// messages call it.
	Name() string
	// Account is the account the ledger reads and writes (Options.Account).
	Account() string
	// SetAccount makes a read-only ledger read another account's entries.
	SetAccount(account string) error
	// Accounts lists the accounts the ledger holds anything of.
	Accounts(ctx context.Context) ([]string, error)
	// PutReconciled writes entries whose Reconciled a reconcile has just
	// set, and adds each one's reconciliation to its history.
	PutReconciled(ctx context.Context, es []pipeline.Entry) error
	// ReconcileHistory returns the reconciliations recorded of key,
	// oldest first.
	ReconcileHistory(ctx context.Context, key pipeline.Key) ([]pipeline.Reconciliation, error)
	// Reconcilable calls fn for each entry a reconcile asks about that
	// was accepted at or before acceptedBefore, in key order.
	Reconcilable(ctx context.Context, acceptedBefore time.Time, fn func(pipeline.Entry) error) error
	// Problems returns the open problems, by state (see ProblemStates).
	Problems(ctx context.Context) ([]Problem, error)
}

// Name returns the ledger's path as given to Open.
func (l *Ledger) Name() string { return l.name }

// WithEnv returns c with ledger.url taken from getenv(URLEnv) when that is
// set. A password may be written in that URL (it is in the environment);
// in ledger.url it may not.
func (c Config) WithEnv(getenv func(string) string) Config {
	if u := getenv(URLEnv); u != "" {
		c.URL = u
		c.urlFromEnv = true
	}
	return c
}

// WithFlag returns c with the ledger that a --ledger flag names: a
// postgres:// URL, or else a SQLite file's path (and then no URL).
func (c Config) WithFlag(v string) Config {
	if IsURL(v) {
		c.URL, c.urlFromEnv = v, false
		return c
	}
	c.Path, c.URL, c.urlFromEnv = v, "", false
	return c
}

// UsesURL reports whether c names a PostgreSQL ledger.
func (c Config) UsesURL() bool { return c.URL != "" }

// Name returns what messages call the ledger c names: its path, or its
// URL without the password.
func (c Config) Name() string {
	if c.URL != "" {
		return RedactURL(c.URL)
	}
	return c.Path
}

// validateURL checks ledger.url (or CONVPIPE_LEDGER_URL).
func (c Config) validateURL() error {
	field := "ledger.url"
	if c.urlFromEnv {
		field = URLEnv
	}
	if !IsURL(c.URL) {
		return fmt.Errorf("%s: %q is not a postgres:// or postgresql:// URL", field, RedactURL(c.URL))
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("%s: cannot parse the URL %s", field, RedactURL(c.URL))
	}
	_, hasPW := u.User.Password()
	if !c.urlFromEnv && (hasPW || u.Query().Has("password")) {
		return fmt.Errorf("ledger.url: must not hold the password (a secret in the configuration file): set PGPASSWORD, ledger.passfile, or give the whole URL in %s", URLEnv)
	}
	if strings.TrimPrefix(u.Path, "/") == "" {
		return fmt.Errorf("%s: %s names no database (postgres://user@host/DATABASE)", field, RedactURL(c.URL))
	}
	if c.Passfile != "" {
		if _, err := os.Stat(c.Passfile); err != nil {
			return fmt.Errorf("ledger.passfile: %w", err)
		}
	}
	return nil
}

// Open opens the ledger c names for a run: the PostgreSQL database of
// c.URL when set, else the SQLite file at c.Path.
func (c Config) Open(ctx context.Context, opts Options) (Store, error) {
	if c.URL != "" {
		l, err := OpenPostgres(ctx, c.URL, c.Passfile, opts)
		if err != nil {
			return nil, err
		}
		return l, nil
	}
	l, err := Open(ctx, c.Path, opts)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// OpenReadOnly opens the ledger c names for reading, without its lock.
func (c Config) OpenReadOnly(ctx context.Context) (Store, error) {
	if c.URL != "" {
		l, err := OpenPostgresReadOnly(ctx, c.URL, c.Passfile)
		if err != nil {
			return nil, err
		}
		return l, nil
	}
	l, err := OpenReadOnly(ctx, c.Path)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// IsNoSchema reports whether err says that a PostgreSQL database holds no
// ledger (Open without Options.Create, or OpenReadOnly).
func IsNoSchema(err error) bool { return errors.Is(err, errNoSchema) }
