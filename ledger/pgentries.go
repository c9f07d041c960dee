package ledger

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"convpipe/pipeline"
)

const pgEntryColumns = `event_type, order_id, state, payload_hash, sent_hash, attempts, http_status,
	messages, submission_id, queued_uri, maybe_sent, refs, run_id, created, updated, ` + reconcileColumns + `, source`

const pgGetSQL = `SELECT ` + pgEntryColumns + ` FROM convpipe.conversions WHERE account = $1 AND event_type = $2 AND order_id = $3`

// pgPutSQL replaces every column but created, as putSQL does.
const pgPutSQL = `INSERT INTO convpipe.conversions (account, ` + pgEntryColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
		$17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32)
	ON CONFLICT (account, event_type, order_id) DO UPDATE SET
		state = excluded.state, payload_hash = excluded.payload_hash, sent_hash = excluded.sent_hash,
		attempts = excluded.attempts, http_status = excluded.http_status, messages = excluded.messages,
		submission_id = excluded.submission_id, queued_uri = excluded.queued_uri,
		maybe_sent = excluded.maybe_sent, refs = excluded.refs, run_id = excluded.run_id,
		updated = excluded.updated, source = excluded.source, ` + reconcileSet

// Get returns the entry of key, and false when there is none.
func (l *Postgres) Get(ctx context.Context, key pipeline.Key) (pipeline.Entry, bool, error) {
	op := "get " + key.String()
	if err := l.readable(op); err != nil {
		return pipeline.Entry{}, false, err
	}
	if ix := l.idx.Load(); ix != nil && !l.readOnly && l.claims == nil {
		if _, ok := ix.lookup(ix.hash(key)); !ok {
			return pipeline.Entry{}, false, nil
		}
	}
	e, err := pgScanEntry(l.pool.QueryRow(ctx, pgGetSQL, l.account, []byte(key.EventType), []byte(key.OrderID)))
	if errors.Is(err, pgx.ErrNoRows) {
		return pipeline.Entry{}, false, nil
	}
	if err != nil {
		return pipeline.Entry{}, false, l.readErr(op, err)
	}
	return e, true, nil
}

// Put inserts or replaces the entry of e.Key, durably, as the SQLite
// ledger's Put does.
func (l *Postgres) Put(ctx context.Context, e pipeline.Entry) error {
	return l.PutAll(ctx, []pipeline.Entry{e})
}

// PutAll is Put for several entries, written in one transaction: all or
// none.
func (l *Postgres) PutAll(ctx context.Context, es []pipeline.Entry) error {
	if len(es) == 0 {
		return nil
	}
	cols, err := entryCols(l.name, es)
	if err != nil {
		return err
	}
	r := &pgWriteReq{stmts: make([]pgStmt, len(es))}
	for i, e := range es {
		r.stmts[i] = pgStmt{pgPutSQL, pgPutArgs(l.account, e, cols[i])}
	}
	r.after = func() {
		if ix := l.idx.Load(); ix != nil {
			for _, e := range es {
				ix.set(ix.hash(e.Key), pack(string(e.State), e.PayloadHash))
			}
		}
	}
	return l.write(ctx, putOp(es), r)
}

// pgPutArgs are the arguments of pgPutSQL for e.
func pgPutArgs(account string, e pipeline.Entry, c entryCol) []any {
	return append([]any{account, []byte(e.Key.EventType), []byte(e.Key.OrderID), string(e.State),
		e.PayloadHash, e.SentHash, e.Attempts, e.HTTPStatus, c.msgs, e.SubmissionID, e.QueuedURI,
		e.MaybeSent, c.refs, e.RunID, c.created, c.updated}, append(reconcileArgs(e), e.Source)...)
}

// Entries calls fn for each entry that f selects, in key order, until fn
// returns an error, which Entries returns as is. fn may call the
// Ledger's other methods.
func (l *Postgres) Entries(ctx context.Context, f pipeline.Filter, fn func(pipeline.Entry) error) error {
	if err := l.readable("entries"); err != nil {
		return err
	}
	where := []string{"account = $1"}
	args := []any{l.account}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.State != "" {
		add("state = $%d", string(f.State))
	}
	if f.RunID != "" {
		add("run_id = $%d", f.RunID)
	}
	if f.OrderID != "" {
		add("order_id = $%d", []byte(f.OrderID))
	}
	q := `SELECT ` + pgEntryColumns + ` FROM convpipe.conversions WHERE ` + strings.Join(where, " AND ") + ` ORDER BY event_type, order_id`
	rows, err := l.pool.Query(ctx, q, args...)
	if err != nil {
		return l.readErr("entries", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := pgScanEntry(rows)
		if err != nil {
			return l.readErr("entries", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return l.readErr("entries", err)
	}
	return nil
}

// Counts returns the number of entries in each state that has any.
func (l *Postgres) Counts(ctx context.Context) (map[pipeline.State]int64, error) {
	if err := l.readable("counts"); err != nil {
		return nil, err
	}
	rows, err := l.pool.Query(ctx, `SELECT state, count(*) FROM convpipe.conversions WHERE account = $1 GROUP BY state`, l.account)
	if err != nil {
		return nil, l.readErr("counts", err)
	}
	defer rows.Close()
	out := make(map[pipeline.State]int64)
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return nil, l.readErr("counts", err)
		}
		out[pipeline.State(s)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, l.readErr("counts", err)
	}
	return out, nil
}

func pgScanEntry(row pgx.Row) (pipeline.Entry, error) {
	var (
		e             pipeline.Entry
		et, oid       []byte
		state         string
		msgs, refs    *string
		attempts, hts int32
		created, upd  int64
		rc            pgReconcileScan
	)
	err := row.Scan(append([]any{&et, &oid, &state, &e.PayloadHash, &e.SentHash, &attempts, &hts, &msgs,
		&e.SubmissionID, &e.QueuedURI, &e.MaybeSent, &refs, &e.RunID, &created, &upd}, append(rc.dests(), &e.Source)...)...)
	if err != nil {
		return e, err
	}
	rc.apply(&e)
	e.Key = pipeline.Key{EventType: string(et), OrderID: string(oid)}
	e.State = pipeline.State(state)
	e.Attempts, e.HTTPStatus = int(attempts), int(hts)
	e.Created, e.Updated = fromNanos(created), fromNanos(upd)
	return e, decodeLists(&e, deref(msgs), msgs != nil, deref(refs), refs != nil)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ObjectDone reports whether obj was fully processed before, with the same
// key, ETag and size. An object recorded without an ETag never matches.
func (l *Postgres) ObjectDone(ctx context.Context, obj pipeline.Object) (bool, error) {
	op := "object " + obj.Key
	if err := l.readable(op); err != nil {
		return false, err
	}
	var etag string
	var size int64
	err := l.pool.QueryRow(ctx, `SELECT etag, size FROM convpipe.objects WHERE account = $1 AND key = $2`, l.account, []byte(obj.Key)).Scan(&etag, &size)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, l.readErr(op, err)
	}
	return etag != "" && etag == obj.ETag && size == obj.Size, nil
}

const pgMarkObjectSQL = `INSERT INTO convpipe.objects (account, key, etag, size, modtime, run_id, processed_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7)
	ON CONFLICT (account, key) DO UPDATE SET etag = excluded.etag, size = excluded.size,
		modtime = excluded.modtime, run_id = excluded.run_id, processed_at = excluded.processed_at`

// MarkObjectDone records obj as fully processed by run, durably.
func (l *Postgres) MarkObjectDone(ctx context.Context, obj pipeline.Object, runID string) error {
	op := "mark object " + obj.Key + " done"
	if obj.Key == "" {
		return fmt.Errorf("ledger %s: %s: object has no key", l.name, op)
	}
	return l.write(ctx, op, &pgWriteReq{stmts: []pgStmt{{pgMarkObjectSQL,
		[]any{l.account, []byte(obj.Key), obj.ETag, obj.Size, nanos(obj.ModTime), runID, time.Now().UnixNano()}}}})
}

// Objects calls fn for each processed object, in key order, until fn
// returns an error, which Objects returns as is.
func (l *Postgres) Objects(ctx context.Context, fn func(ObjectRecord) error) error {
	if err := l.readable("objects"); err != nil {
		return err
	}
	rows, err := l.pool.Query(ctx, `SELECT key, etag, size, modtime, run_id, processed_at FROM convpipe.objects WHERE account = $1 ORDER BY key`, l.account)
	if err != nil {
		return l.readErr("objects", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r ObjectRecord
		var key []byte
		var mod, at int64
		if err := rows.Scan(&key, &r.Object.ETag, &r.Object.Size, &mod, &r.RunID, &at); err != nil {
			return l.readErr("objects", err)
		}
		r.Object.Key = string(key)
		r.Object.ModTime = fromNanos(mod)
		r.ProcessedAt = fromNanos(at)
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return l.readErr("objects", err)
	}
	return nil
}

const pgBeginRunSQL = `INSERT INTO convpipe.runs (id, started, args, account) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`

const pgFinishRunSQL = `INSERT INTO convpipe.runs (id, started, finished, args, summary, account) VALUES ($1, $2, $3, $4, $5, $6)
	ON CONFLICT (id) DO UPDATE SET finished = excluded.finished, summary = excluded.summary,
		args = CASE WHEN excluded.args <> '' THEN excluded.args ELSE runs.args END`

// BeginRun records the start of a run, durably, and names it in the
// holder's record. A run ID already recorded is an error.
func (l *Postgres) BeginRun(ctx context.Context, run pipeline.RunInfo) error {
	if run.ID == "" {
		return fmt.Errorf("ledger %s: begin run: empty run id", l.name)
	}
	started := run.Started
	if started.IsZero() {
		started = time.Now()
	}
	var holder string
	if !l.readOnly {
		l.holderMu.Lock()
		h := l.holder
		h.RunID = run.ID
		l.holderMu.Unlock()
		b, _ := json.Marshal(h)
		holder = string(b)
	}
	r := &pgWriteReq{
		stmts: []pgStmt{
			{pgBeginRunSQL, []any{run.ID, started.UnixNano(), run.Args, l.account}},
			{pgHolderSQL, []any{l.lockKey, holder}},
		},
		check: func(tags []pgconn.CommandTag) error {
			if tags[0].RowsAffected() == 0 {
				return errors.New("a run with this id is already recorded")
			}
			return nil
		},
		after: func() {
			l.holderMu.Lock()
			l.holder.RunID = run.ID
			l.holderMu.Unlock()
		},
	}
	return l.write(ctx, "begin run "+run.ID, r)
}

// FinishRun records the end of a run and its summary, durably. Finished
// defaults to now.
func (l *Postgres) FinishRun(ctx context.Context, run pipeline.RunInfo) error {
	op := "finish run " + run.ID
	if run.ID == "" {
		return fmt.Errorf("ledger %s: finish run: empty run id", l.name)
	}
	finished := run.Finished
	if finished.IsZero() {
		finished = time.Now()
	}
	started := run.Started
	if started.IsZero() {
		started = finished
	}
	var summary any
	if run.Summary != nil {
		b, err := json.Marshal(run.Summary)
		if err != nil {
			return fmt.Errorf("ledger %s: %s: summary: %w", l.name, op, err)
		}
		summary = string(b)
	}
	return l.write(ctx, op, &pgWriteReq{stmts: []pgStmt{{pgFinishRunSQL,
		[]any{run.ID, started.UnixNano(), finished.UnixNano(), run.Args, summary, l.account}}}})
}

// Run returns the run with the given id, and false when there is none.
func (l *Postgres) Run(ctx context.Context, id string) (pipeline.RunInfo, bool, error) {
	op := "run " + id
	if err := l.readable(op); err != nil {
		return pipeline.RunInfo{}, false, err
	}
	r, err := pgScanRun(l.pool.QueryRow(ctx, `SELECT `+runColumns+` FROM convpipe.runs WHERE id = $1 AND account = $2`, id, l.account))
	if errors.Is(err, pgx.ErrNoRows) {
		return pipeline.RunInfo{}, false, nil
	}
	if err != nil {
		return pipeline.RunInfo{}, false, l.readErr(op, err)
	}
	return r, true, nil
}

// Runs calls fn for each recorded run, oldest first, until fn returns an
// error, which Runs returns as is.
func (l *Postgres) Runs(ctx context.Context, fn func(pipeline.RunInfo) error) error {
	if err := l.readable("runs"); err != nil {
		return err
	}
	rows, err := l.pool.Query(ctx, `SELECT `+runColumns+` FROM convpipe.runs WHERE account = $1 ORDER BY started, id`, l.account)
	if err != nil {
		return l.readErr("runs", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := pgScanRun(rows)
		if err != nil {
			return l.readErr("runs", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return l.readErr("runs", err)
	}
	return nil
}

func pgScanRun(row pgx.Row) (pipeline.RunInfo, error) {
	var (
		r        pipeline.RunInfo
		started  int64
		finished *int64
		summary  *string
	)
	if err := row.Scan(&r.ID, &started, &finished, &r.Args, &summary); err != nil {
		return r, err
	}
	r.Started = fromNanos(started)
	if finished != nil {
		r.Finished = fromNanos(*finished)
	}
	if summary != nil {
		r.Summary = new(pipeline.Summary)
		if err := json.Unmarshal([]byte(*summary), r.Summary); err != nil {
			return r, fmt.Errorf("run %s: summary: %w", r.ID, err)
		}
	}
	return r, nil
}

// Settled reports whether key is in a final state with exactly this
// payload hash, and which state, from the in-memory index that the SQLite
// ledger's Settled uses (see there).
func (l *Postgres) Settled(ctx context.Context, key pipeline.Key, payloadHash string) (pipeline.State, bool, error) {
	p, ok := payloadPrefix(payloadHash)
	if !ok {
		e, found, err := l.Get(ctx, key)
		if err != nil || !found || !e.State.Final() || e.PayloadHash != payloadHash {
			return "", false, err
		}
		return e.State, true, nil
	}
	ix, err := l.loadIndex(ctx)
	if err != nil {
		return "", false, err
	}
	return settledIn(ix, key, p)
}

// SettledSource answers as the SQLite ledger's SettledSource does, from
// the same in-memory index.
func (l *Postgres) SettledSource(ctx context.Context, key pipeline.Key, fp string, oldest time.Time) (pipeline.State, bool, error) {
	ix, err := l.loadIndex(ctx)
	if err != nil {
		return "", false, err
	}
	st, ok := settledSourceIn(ix, key, fp, oldest)
	return st, ok, nil
}

// loadIndex returns the index, loading it on first use: in the writer
// for a ledger open for a run, so that no commit falls between the scan
// and the moment the index starts taking updates.
func (l *Postgres) loadIndex(ctx context.Context) (*index, error) {
	if ix := l.idx.Load(); ix != nil {
		return ix, nil
	}
	l.idxLoad.Lock()
	defer l.idxLoad.Unlock()
	if ix := l.idx.Load(); ix != nil {
		return ix, nil
	}
	if err := l.readable("load index"); err != nil {
		return nil, err
	}
	ix := newIndex()
	if l.readOnly {
		conn, err := l.pool.Acquire(ctx)
		if err != nil {
			return nil, l.readErr("load index", err)
		}
		defer conn.Release()
		if err := pgScanIndex(ctx, ix, conn.Conn(), l.account); err != nil {
			return nil, l.readErr("load index", err)
		}
		l.idx.Store(ix)
		return ix, nil
	}
	err := l.write(ctx, "load index", &pgWriteReq{
		direct: func(ctx context.Context, conn *pgx.Conn) error { return pgScanIndex(ctx, ix, conn, l.account) },
		after:  func() { l.idx.Store(ix) },
	})
	if err != nil {
		return nil, err
	}
	return ix, nil
}

// pgScanIndex fills ix from the entries of account, reading each row's
// raw binary values (no allocation per row).
func pgScanIndex(ctx context.Context, ix *index, conn *pgx.Conn, account string) error {
	rows, err := conn.Query(ctx, `SELECT event_type, order_id, state, payload_hash, source, event_date FROM convpipe.conversions WHERE account = $1`,
		pgx.QueryResultFormats{pgx.BinaryFormatCode}, account)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		v := rows.RawValues()
		if len(v) != 6 || len(v[5]) != 8 {
			return fmt.Errorf("index row: want 6 values and an 8-byte event_date, got %d", len(v))
		}
		ix.base = append(ix.base, loadedSlot(ix, v[0], v[1], v[2], v[3], v[4], int64(binary.BigEndian.Uint64(v[5]))))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	ix.sort()
	return nil
}
