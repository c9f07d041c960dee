package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"convpipe/pipeline"
)

const objectSQL = `SELECT etag, size FROM objects WHERE account = ? AND key = ?`

const markObjectSQL = `INSERT INTO objects (account, key, etag, size, modtime, run_id, processed_at)
	VALUES (?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (account, key) DO UPDATE SET etag = excluded.etag, size = excluded.size,
		modtime = excluded.modtime, run_id = excluded.run_id, processed_at = excluded.processed_at`

// ObjectDone reports whether obj was fully processed before, with the same
// key, ETag and size. An object recorded without an ETag never matches.
func (l *Ledger) ObjectDone(ctx context.Context, obj pipeline.Object) (bool, error) {
	if err := l.readable("object " + obj.Key); err != nil {
		return false, err
	}
	var etag string
	var size int64
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("ledger %s: object %s: %w", l.name, obj.Key, err)
	}
	// As in Get: a point lookup, not worth a watcher goroutine.
	err := l.objStmt.QueryRowContext(context.WithoutCancel(ctx), l.account, obj.Key).Scan(&etag, &size)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ledger %s: object %s: %w", l.name, obj.Key, sqlError(err))
	}
	return etag != "" && etag == obj.ETag && size == obj.Size, nil
}

// MarkObjectDone records obj as fully processed by run, durably.
func (l *Ledger) MarkObjectDone(ctx context.Context, obj pipeline.Object, runID string) error {
	op := "mark object " + obj.Key + " done"
	if obj.Key == "" {
		return fmt.Errorf("ledger %s: %s: object has no key", l.name, op)
	}
	now := time.Now().UnixNano()
	return l.write(ctx, op, func(ctx context.Context) error {
		_, err := l.markStmt.ExecContext(ctx, l.account, obj.Key, obj.ETag, obj.Size, nanos(obj.ModTime), runID, now)
		return err
	})
}

// ObjectRecord is what the ledger knows of a processed object.
type ObjectRecord struct {
	Object      pipeline.Object `json:"object"`
	RunID       string          `json:"run_id"`
	ProcessedAt time.Time       `json:"processed_at"`
}

// Objects calls fn for each processed object, in key order, until fn
// returns an error, which Objects returns as is.
func (l *Ledger) Objects(ctx context.Context, fn func(ObjectRecord) error) error {
	if err := l.readable("objects"); err != nil {
		return err
	}
	rows, err := l.rdb.QueryContext(ctx, `SELECT key, etag, size, modtime, run_id, processed_at FROM objects WHERE account = ? ORDER BY key`, l.account)
	if err != nil {
		return fmt.Errorf("ledger %s: objects: %w", l.name, sqlError(err))
	}
	defer rows.Close()
	for rows.Next() {
		var r ObjectRecord
		var mod, at int64
		if err := rows.Scan(&r.Object.Key, &r.Object.ETag, &r.Object.Size, &mod, &r.RunID, &at); err != nil {
			return fmt.Errorf("ledger %s: objects: %w", l.name, sqlError(err))
		}
		r.Object.ModTime = fromNanos(mod)
		r.ProcessedAt = fromNanos(at)
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger %s: objects: %w", l.name, sqlError(err))
	}
	return nil
}
