package ledger

import (
	"context"
	"database/sql"
	"fmt"
)

// accountsSQL lists the accounts a ledger holds anything of.
const accountsSQL = `SELECT account FROM conversions UNION SELECT account FROM objects
	UNION SELECT account FROM runs ORDER BY 1`

// Account returns the account whose entries, objects and runs the Ledger
// reads and writes.
func (l *Ledger) Account() string { return l.account }

// SetAccount makes a Ledger opened read-only read the entries, objects
// and runs of account. Call it before any read; a Ledger opened for a run
// keeps the account of its Options.
func (l *Ledger) SetAccount(account string) error {
	if !l.readOnly {
		return fmt.Errorf("ledger %s: set account: only a read-only ledger changes its account", l.name)
	}
	l.account = account
	l.idx.Store(nil)
	return nil
}

// Accounts returns the accounts the ledger holds entries, objects or runs
// of, sorted.
func (l *Ledger) Accounts(ctx context.Context) ([]string, error) {
	if err := l.readable("accounts"); err != nil {
		return nil, err
	}
	rows, err := l.rdb.QueryContext(ctx, accountsSQL)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: accounts: %w", l.name, sqlError(err))
	}
	return collectAccounts(l.name, rows)
}

func collectAccounts(name string, rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, fmt.Errorf("ledger %s: accounts: %w", name, sqlError(err))
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger %s: accounts: %w", name, sqlError(err))
	}
	return out, nil
}

// defaultAccount is the account a read-only ledger reads before
// SetAccount: the only one it holds, else "".
func defaultAccount(accounts []string) string {
	if len(accounts) == 1 {
		return accounts[0]
	}
	return ""
}

// Account returns the account whose entries, objects and runs the Ledger
// reads and writes.
func (l *Postgres) Account() string { return l.account }

// SetAccount makes a Ledger opened read-only read the entries, objects
// and runs of account. Call it before any read.
func (l *Postgres) SetAccount(account string) error {
	if !l.readOnly {
		return fmt.Errorf("ledger %s: set account: only a read-only ledger changes its account", l.name)
	}
	l.account = account
	l.idx.Store(nil)
	return nil
}

// Accounts returns the accounts the ledger holds entries, objects or runs
// of, sorted.
func (l *Postgres) Accounts(ctx context.Context) ([]string, error) {
	if err := l.readable("accounts"); err != nil {
		return nil, err
	}
	rows, err := l.pool.Query(ctx, `SELECT account FROM convpipe.conversions UNION SELECT account FROM convpipe.objects
		UNION SELECT account FROM convpipe.runs ORDER BY 1`)
	if err != nil {
		return nil, l.readErr("accounts", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, l.readErr("accounts", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, l.readErr("accounts", err)
	}
	return out, nil
}
