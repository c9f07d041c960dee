package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"convpipe/pipeline"
)

const entryColumns = `event_type, order_id, state, payload_hash, sent_hash, attempts, http_status,
	messages, submission_id, queued_uri, maybe_sent, refs, run_id, created, updated, ` + reconcileColumns + `, source`

const getSQL = `SELECT ` + entryColumns + ` FROM conversions WHERE account = ? AND event_type = ? AND order_id = ?`

// putSQL replaces every column but created, which keeps the time the key
// was first written.
const putSQL = `INSERT INTO conversions (account, ` + entryColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
		?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (account, event_type, order_id) DO UPDATE SET
		state = excluded.state, payload_hash = excluded.payload_hash, sent_hash = excluded.sent_hash,
		attempts = excluded.attempts, http_status = excluded.http_status, messages = excluded.messages,
		submission_id = excluded.submission_id, queued_uri = excluded.queued_uri,
		maybe_sent = excluded.maybe_sent, refs = excluded.refs, run_id = excluded.run_id,
		updated = excluded.updated, source = excluded.source, ` + reconcileSet

// validStates are the states the ledger stores.
var validStates = map[pipeline.State]bool{
	pipeline.StatePending: true, pipeline.StateAccepted: true, pipeline.StateRejected: true,
	pipeline.StateFailed: true, pipeline.StateInvalid: true, pipeline.StateSkipped: true,
	pipeline.StateChanged: true, pipeline.StateTracked: true, pipeline.StateNotTracked: true,
}

// Get returns the entry of key, and false when there is none.
func (l *Ledger) Get(ctx context.Context, key pipeline.Key) (pipeline.Entry, bool, error) {
	if err := l.readable("get " + key.String()); err != nil {
		return pipeline.Entry{}, false, err
	}
	if ix := l.idx.Load(); ix != nil && !l.readOnly && l.claims == nil {
		if _, ok := ix.lookup(ix.hash(key)); !ok {
			return pipeline.Entry{}, false, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return pipeline.Entry{}, false, fmt.Errorf("ledger %s: get %s: %w", l.name, key, err)
	}
	// A point lookup takes microseconds: checked above, ctx is not handed
	// on, since a cancellable one costs database/sql and the driver a
	// watcher goroutine per query, more than the lookup itself.
	e, err := scanEntry(l.getStmt.QueryRowContext(context.WithoutCancel(ctx), l.account, key.EventType, key.OrderID))
	if errors.Is(err, sql.ErrNoRows) {
		return pipeline.Entry{}, false, nil
	}
	if err != nil {
		return pipeline.Entry{}, false, fmt.Errorf("ledger %s: get %s: %w", l.name, key, sqlError(err))
	}
	return e, true, nil
}

// Put inserts or replaces the entry of e.Key, durably: when Put returns
// nil, the entry is on stable storage. Created is kept from the first
// write of the key (e.Created, or now); Updated is set to now. An entry
// without an OrderId or with an unknown state is refused with an error
// wrapping ErrInvalidEntry; any other error is the storage's, and the
// caller must stop sending.
//
// Concurrent Puts share transactions (group commit): call Put from each
// worker rather than funnelling outcomes through one goroutine, or use
// PutAll.
func (l *Ledger) Put(ctx context.Context, e pipeline.Entry) error {
	return l.PutAll(ctx, []pipeline.Entry{e})
}

// PutAll is Put for several entries, written in one transaction: all or
// none. It suits a single recorder goroutine, which Put would hold to one
// commit (one fsync) per entry.
func (l *Ledger) PutAll(ctx context.Context, es []pipeline.Entry) error {
	if len(es) == 0 {
		return nil
	}
	op := putOp(es)
	cols, err := entryCols(l.name, es)
	if err != nil {
		return err
	}
	args := make([][]any, len(es))
	for i, e := range es {
		args[i] = putArgs(l.account, e, cols[i])
	}
	return l.writeThen(ctx, op, func(ctx context.Context) error {
		for i, a := range args {
			if _, err := l.putStmt.ExecContext(ctx, a...); err != nil {
				if len(es) > 1 {
					return fmt.Errorf("%s: %w", es[i].Key, err)
				}
				return err
			}
		}
		return nil
	}, func() {
		if ix := l.idx.Load(); ix != nil {
			for _, e := range es {
				ix.set(ix.hash(e.Key), pack(string(e.State), e.PayloadHash))
			}
		}
	})
}

// putArgs are the arguments of putSQL for e.
func putArgs(account string, e pipeline.Entry, c entryCol) []any {
	return append([]any{account, e.Key.EventType, e.Key.OrderID, string(e.State), e.PayloadHash, e.SentHash,
		e.Attempts, e.HTTPStatus, c.msgs, e.SubmissionID, e.QueuedURI, e.MaybeSent, c.refs,
		e.RunID, c.created, c.updated}, append(reconcileArgs(e), e.Source)...)
}

// entryCol holds the stored forms of an entry's fields that need encoding.
type entryCol struct {
	msgs, refs       any // JSON text, or nil (NULL) when empty
	created, updated int64
}

// entryCols checks the entries a Put is given and encodes their lists and
// times; ledger names the ledger in the errors.
func entryCols(ledger string, es []pipeline.Entry) ([]entryCol, error) {
	now := time.Now().UnixNano()
	out := make([]entryCol, len(es))
	for i, e := range es {
		if e.Key.OrderID == "" {
			return nil, fmt.Errorf("ledger %s: put %s: %w: no OrderId", ledger, e.Key, ErrInvalidEntry)
		}
		if !validStates[e.State] {
			return nil, fmt.Errorf("ledger %s: put %s: %w: unknown state %q", ledger, e.Key, ErrInvalidEntry, e.State)
		}
		msgs, err := marshalList(e.Messages)
		if err != nil {
			return nil, fmt.Errorf("ledger %s: put %s: messages: %w", ledger, e.Key, err)
		}
		refs, err := marshalList(e.Refs)
		if err != nil {
			return nil, fmt.Errorf("ledger %s: put %s: refs: %w", ledger, e.Key, err)
		}
		created := nanos(e.Created)
		if created == 0 {
			created = now
		}
		out[i] = entryCol{msgs: msgs, refs: refs, created: created, updated: now}
	}
	return out, nil
}

// putOp returns the description of a Put of es for messages.
func putOp(es []pipeline.Entry) string {
	if len(es) > 1 {
		return fmt.Sprintf("put %d entries (%s, ...)", len(es), es[0].Key)
	}
	return "put " + es[0].Key.String()
}

// Entries calls fn for each entry that f selects, in key order (by event
// type, then OrderId), until fn returns an error, which Entries returns
// as is. fn may call the Ledger's other methods.
func (l *Ledger) Entries(ctx context.Context, f pipeline.Filter, fn func(pipeline.Entry) error) error {
	if err := l.readable("entries"); err != nil {
		return err
	}
	q, args := entriesQuery(l.account, f)
	rows, err := l.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("ledger %s: entries: %w", l.name, sqlError(err))
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return fmt.Errorf("ledger %s: entries: %w", l.name, sqlError(err))
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger %s: entries: %w", l.name, sqlError(err))
	}
	return nil
}

// entriesQuery is Entries' query of the account's entries that f selects,
// in key order, with its arguments.
func entriesQuery(account string, f pipeline.Filter) (string, []any) {
	where := []string{"account = ?"}
	args := []any{account}
	if f.State != "" {
		where = append(where, "state = ?")
		args = append(args, string(f.State))
	}
	if f.RunID != "" {
		// By the run's index: without statistics, SQLite would rather
		// walk the account's whole key index (for its order) than sort
		// the few entries of one run; "+account" is not indexable.
		where[0] = "+account = ?"
		where = append(where, "run_id = ?")
		args = append(args, f.RunID)
	}
	if f.OrderID != "" {
		where = append(where, "order_id = ?")
		args = append(args, f.OrderID)
	}
	return `SELECT ` + entryColumns + ` FROM conversions WHERE ` + strings.Join(where, " AND ") + ` ORDER BY event_type, order_id`, args
}

// Counts returns the number of entries in each state that has any.
func (l *Ledger) Counts(ctx context.Context) (map[pipeline.State]int64, error) {
	if err := l.readable("counts"); err != nil {
		return nil, err
	}
	rows, err := l.rdb.QueryContext(ctx, `SELECT state, count(*) FROM conversions WHERE account = ? GROUP BY state`, l.account)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: counts: %w", l.name, sqlError(err))
	}
	defer rows.Close()
	out := make(map[pipeline.State]int64)
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("ledger %s: counts: %w", l.name, sqlError(err))
		}
		out[pipeline.State(s)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger %s: counts: %w", l.name, sqlError(err))
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanEntry(s scanner) (pipeline.Entry, error) {
	var (
		e             pipeline.Entry
		state         string
		msgs, refs    sql.NullString
		created, upd  int64
		maybeSent     int64
		attempts, hts int64
		rc            reconcileScan
	)
	err := s.Scan(append([]any{&e.Key.EventType, &e.Key.OrderID, &state, &e.PayloadHash, &e.SentHash,
		&attempts, &hts, &msgs, &e.SubmissionID, &e.QueuedURI, &maybeSent, &refs,
		&e.RunID, &created, &upd}, append(rc.dests(), &e.Source)...)...)
	if err != nil {
		return e, err
	}
	rc.apply(&e)
	e.State = pipeline.State(state)
	e.Attempts = int(attempts)
	e.HTTPStatus = int(hts)
	e.MaybeSent = maybeSent != 0
	e.Created = fromNanos(created)
	e.Updated = fromNanos(upd)
	return e, decodeLists(&e, msgs.String, msgs.Valid, refs.String, refs.Valid)
}

// decodeLists decodes the messages and refs columns into e, those that
// are not NULL.
func decodeLists(e *pipeline.Entry, msgs string, hasMsgs bool, refs string, hasRefs bool) error {
	if hasMsgs {
		if err := json.Unmarshal([]byte(msgs), &e.Messages); err != nil {
			return fmt.Errorf("%s: messages: %w", e.Key, err)
		}
	}
	if hasRefs {
		var err error
		if e.Refs, err = decodeRefs(refs); err != nil {
			return fmt.Errorf("%s: refs: %w", e.Key, err)
		}
	}
	return nil
}

// marshalList returns the JSON of a non-empty list, or nil (NULL).
func marshalList[T any](v []T) (any, error) {
	if len(v) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// decodeRefs decodes the refs column. The ledger writes it with
// json.Marshal, whose output for []pipeline.Ref has one shape:
// [{"object":"...","line":N},...]. That shape is read here directly, about
// ten times faster than encoding/json (refs are read for every Get);
// anything else goes to encoding/json.
func decodeRefs(s string) ([]pipeline.Ref, error) {
	if refs, ok := parseRefs(s); ok {
		return refs, nil
	}
	var refs []pipeline.Ref
	if err := json.Unmarshal([]byte(s), &refs); err != nil {
		return nil, err
	}
	return refs, nil
}

func parseRefs(s string) ([]pipeline.Ref, bool) {
	const objKey, lineKey = `{"object":"`, `","line":`
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return nil, false
	}
	s = s[1 : len(s)-1]
	refs := make([]pipeline.Ref, 0, 1+strings.Count(s, "},{"))
	for {
		if !strings.HasPrefix(s, objKey) {
			return nil, false
		}
		s = s[len(objKey):]
		end := strings.IndexByte(s, '"')
		// Escapes, control characters and invalid UTF-8 (which
		// encoding/json turns into U+FFFD): leave those to encoding/json.
		if end < 0 || !plainJSONString(s[:end]) {
			return nil, false
		}
		obj := s[:end]
		s = s[end:]
		if !strings.HasPrefix(s, lineKey) {
			return nil, false
		}
		s = s[len(lineKey):]
		end = strings.IndexByte(s, '}')
		if end < 0 {
			return nil, false
		}
		if !jsonInteger(s[:end]) {
			return nil, false
		}
		line, err := strconv.ParseInt(s[:end], 10, 64)
		if err != nil {
			return nil, false
		}
		refs = append(refs, pipeline.Ref{Object: obj, Line: line})
		s = s[end+1:]
		if s == "" {
			return refs, true
		}
		if s[0] != ',' {
			return nil, false
		}
		s = s[1:]
	}
}

// plainJSONString reports whether s is the content of a JSON string that
// needs no decoding: valid UTF-8 without backslashes or control
// characters.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c < 0x20 {
			return false
		}
	}
	return utf8.ValidString(s)
}

// jsonInteger reports whether s is a JSON integer: an optional minus, then
// 0 or digits not starting with 0.
func jsonInteger(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
