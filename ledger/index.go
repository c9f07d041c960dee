package ledger

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"time"

	"convpipe/pipeline"
)

// index is an in-memory summary of the conversions table, loaded on the
// first call to Settled: for every key, a 64-bit hash of the key mapped to
// its state and the first 56 bits of its payload hash, 16 bytes per entry
// (a million entries take 16 MiB), sorted, with a directory of where each
// run of leading hash bits starts (about four entries to a run: a lookup
// reads one directory word and one or two cache lines of entries, where a
// binary search over a million reads twenty), plus a map of what was
// written since, merged in when it grows. In a ledger opened
// for writing it is loaded by the writer goroutine and kept current by it
// after every commit, so that it always covers every stored key.
//
// It answers two questions without SQL: "is this key surely absent?"
// (no hash matches) and "is this key final with this payload?" (hash,
// final state and payload prefix match). A wrong yes to the second needs a
// 64-bit collision of two keys' hashes and a 56-bit collision of their
// payload hashes at once; a hash collision otherwise only sends the caller
// to the database.
type index struct {
	seed maphash.Seed
	mu   sync.RWMutex
	base []slot // sorted by h
	// dir[b] is the index in base of the first slot whose hash has the
	// leading bits b (h>>shift); dir[b+1] ends that run. See buildDir.
	dir   []uint32
	shift uint
	delta map[uint64]slot
}

// slot is one key's summary: h its hash, v its packed state and payload
// prefix, src its source (packSource): zero unless the entry's Source is
// bound to its payload hash (see sourceOf). A slot written since the load
// has no src.
type slot struct{ h, v, src uint64 }

// packSource packs the first 64 bits of a source fingerprint fp and an
// accepted EventDate ev (Unix nanoseconds, 0 when unknown) into a slot's
// src: the fingerprint's first 48 bits in the high bits, the event's day
// (since 1970-01-01, UTC) in the low 16, 0 when unknown or after 2149.
func packSource(fp uint64, ev int64) uint64 {
	day := uint64(0)
	if d := ev / int64(24*time.Hour); ev > 0 && d <= 0xffff {
		day = uint64(d)
	}
	return fp&^0xffff | day
}

// Packed values: the payload prefix in the high 56 bits, the state code in
// the low 7, and noPayload when the stored payload hash is not hex.
const (
	stateMask = 0x7f
	noPayload = 0x80
)

var codeStates = func() map[uint64]pipeline.State {
	m := make(map[uint64]pipeline.State)
	for _, s := range []pipeline.State{pipeline.StatePending, pipeline.StateAccepted, pipeline.StateRejected,
		pipeline.StateFailed, pipeline.StateInvalid, pipeline.StateSkipped, pipeline.StateChanged,
		pipeline.StateTracked, pipeline.StateNotTracked} {
		m[stateCode(s)] = s
	}
	return m
}()

// payloadPrefix returns the first 56 bits of a hex payload hash, in the
// high bits.
func payloadPrefix[T ~string | ~[]byte](ph T) (uint64, bool) {
	p, ok := hex64(ph)
	return p &^ 0xff, ok
}

// hex64 reads the first 16 hex digits of s.
func hex64[T ~string | ~[]byte](s T) (uint64, bool) {
	if len(s) < 16 {
		return 0, false
	}
	var p uint64
	for i := range 16 {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		p = p<<4 | uint64(c)
	}
	return p, true
}

// sourceOf returns the first 64 bits of the fingerprint in an entry's
// Source, or 0 when Source is not bound to its payload hash (written by
// pipeline.SourceFor for this very payload hash).
func sourceOf[T ~string | ~[]byte](source, payloadHash T) uint64 {
	n := len(source)
	if n < 16+1+16 || len(payloadHash) < 16 || source[n-17] != '/' || string(source[n-16:]) != string(payloadHash[:16]) {
		return 0
	}
	fp, ok := hex64(source)
	if !ok {
		return 0
	}
	return fp
}

// stateCode returns the code of a state read as text.
func stateCode[T ~string | ~[]byte](s T) uint64 {
	switch string(s) {
	case string(pipeline.StatePending):
		return 1
	case string(pipeline.StateAccepted):
		return 2
	case string(pipeline.StateRejected):
		return 3
	case string(pipeline.StateFailed):
		return 4
	case string(pipeline.StateInvalid):
		return 5
	case string(pipeline.StateSkipped):
		return 6
	case string(pipeline.StateChanged):
		return 7
	case string(pipeline.StateTracked):
		return 8
	case string(pipeline.StateNotTracked):
		return 9
	}
	return 0
}

// pack returns the packed value of a state and a payload hash.
func pack[T ~string | ~[]byte](state, payloadHash T) uint64 {
	p, ok := payloadPrefix(payloadHash)
	if !ok {
		return stateCode(state) | noPayload
	}
	return p | stateCode(state)
}

func newIndex() *index {
	ix := &index{seed: maphash.MakeSeed(), delta: make(map[uint64]slot)}
	ix.buildDir()
	return ix
}

// hash hashes the event type and the OrderId, with a NUL between.
func (ix *index) hash(k pipeline.Key) uint64 {
	var h maphash.Hash
	h.SetSeed(ix.seed)
	h.WriteString(k.EventType)
	h.WriteByte(0)
	h.WriteString(k.OrderID)
	return h.Sum64()
}

// hashBytes is hash of a key read as bytes; the same bytes give the same
// hash.
func (ix *index) hashBytes(eventType, orderID []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(ix.seed)
	h.Write(eventType)
	h.WriteByte(0)
	h.Write(orderID)
	return h.Sum64()
}

func (ix *index) sort() {
	slices.SortFunc(ix.base, func(a, b slot) int { return cmp.Compare(a.h, b.h) })
	ix.base = slices.Clip(ix.base)
	ix.buildDir()
}

// dirBits is how many leading hash bits the directory of n slots uses:
// about four slots to a run, and a directory of at most 16 MiB.
func dirBits(n int) uint {
	return uint(min(max(bits.Len(uint(n))-2, 0), 22))
}

// buildDir builds the directory of base, which is sorted. The hashes are
// keyed by a random seed (maphash), so the runs stay short whatever the
// keys are.
func (ix *index) buildDir() {
	b := dirBits(len(ix.base))
	ix.shift = 64 - b // b == 0: h>>64 is 0, one run holds everything
	dir := make([]uint32, 1<<b+1)
	for _, s := range ix.base {
		dir[s.h>>ix.shift+1]++
	}
	for i := 1; i < len(dir); i++ {
		dir[i] += dir[i-1]
	}
	ix.dir = dir
}

func (ix *index) lookup(h uint64) (uint64, bool) {
	s, ok := ix.find(h)
	return s.v, ok
}

// find returns the slot of hash h.
func (ix *index) find(h uint64) (slot, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if s, ok := ix.delta[h]; ok {
		return s, true
	}
	b := h >> ix.shift
	run := ix.base[ix.dir[b]:ix.dir[b+1]]
	for _, s := range run {
		if s.h == h {
			return s, true
		}
		if s.h > h {
			break
		}
	}
	return slot{}, false
}

// set records a committed write. The slot has no source: an entry written
// since the load is mapped again when it comes back.
func (ix *index) set(h, v uint64) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.delta[h] = slot{h: h, v: v}
	if len(ix.delta) >= max(1<<16, len(ix.base)/4) {
		ix.merge()
	}
}

// merge folds delta into base: sort the delta, then one merge pass.
func (ix *index) merge() {
	d := make([]slot, 0, len(ix.delta))
	for _, s := range ix.delta {
		d = append(d, s)
	}
	slices.SortFunc(d, func(a, b slot) int { return cmp.Compare(a.h, b.h) })
	out := make([]slot, 0, len(ix.base)+len(d))
	i, j := 0, 0
	for i < len(ix.base) && j < len(d) {
		switch {
		case ix.base[i].h < d[j].h:
			out = append(out, ix.base[i])
			i++
		case ix.base[i].h > d[j].h:
			out = append(out, d[j])
			j++
		default: // the newer value wins
			out = append(out, d[j])
			i++
			j++
		}
	}
	out = append(out, ix.base[i:]...)
	out = append(out, d[j:]...)
	ix.base = out
	ix.buildDir()
	clear(ix.delta)
}

// Settled reports whether key is in a final state (accepted, rejected,
// invalid, skipped or changed) with exactly this payload hash, and which
// state: the question a run asks of every order before deciding whether
// to send it. When it reports false, call Get for the whole entry.
//
// It answers from memory. The first call loads the index (a scan of the
// ledger's table, in parts at once unless the ledger is shared: 1.8 s
// for a million entries on this project's 2-core machine, against 2.5 s
// in one scan; writes wait meanwhile; about 25 bytes per entry stay in
// memory for the life of the Ledger); later calls take well under a
// microsecond, and once the index is loaded Get answers "no entry" from it
// without SQL as well. In a Ledger opened for writing the index is kept
// current by every write; in one opened read-only it is a snapshot taken
// at its first use (another process may write since).
func (l *Ledger) Settled(ctx context.Context, key pipeline.Key, payloadHash string) (pipeline.State, bool, error) {
	p, ok := payloadPrefix(payloadHash)
	if !ok {
		// Not a hex digest: ask the database.
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

// SettledSource reports whether key is accepted (or tracked or not
// tracked since) with the payload that lines of fingerprint fp were
// mapped to (see pipeline.SourceSettler), from the index Settled uses.
// An entry written since the index was loaded is not vouched for: its
// lines are mapped again.
func (l *Ledger) SettledSource(ctx context.Context, key pipeline.Key, fp string, oldest time.Time) (pipeline.State, bool, error) {
	ix, err := l.loadIndex(ctx)
	if err != nil {
		return "", false, err
	}
	st, ok := settledSourceIn(ix, key, fp, oldest)
	return st, ok, nil
}

// settledSourceIn answers SettledSource from ix.
func settledSourceIn(ix *index, key pipeline.Key, fp string, oldest time.Time) (pipeline.State, bool) {
	want, ok := hex64(fp)
	if !ok || want&^0xffff == 0 {
		return "", false
	}
	s, ok := ix.find(ix.hash(key))
	if !ok || s.src&^0xffff != want&^0xffff || s.v&noPayload != 0 {
		return "", false
	}
	// The event's day must begin at or after oldest: an event on the day
	// of oldest, before or after it, is mapped again.
	if day := s.src & 0xffff; !oldest.IsZero() && (day == 0 || int64(day)*int64(24*time.Hour) < oldest.UnixNano()) {
		return "", false
	}
	switch st := codeStates[s.v&stateMask]; st {
	case pipeline.StateAccepted, pipeline.StateTracked, pipeline.StateNotTracked:
		return st, true
	}
	return "", false
}

// settledIn answers Settled from ix for a payload hash whose prefix is p.
func settledIn(ix *index, key pipeline.Key, p uint64) (pipeline.State, bool, error) {
	v, ok := ix.lookup(ix.hash(key))
	if !ok || v&noPayload != 0 || v&^0xff != p {
		return "", false, nil
	}
	st := codeStates[v&stateMask]
	if !st.Final() {
		return "", false, nil
	}
	return st, true, nil
}

// loadIndex returns the index, loading it on first use.
func (l *Ledger) loadIndex(ctx context.Context) (*index, error) {
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
		if err := scanIndex(ctx, ix, l.rdb.QueryContext, l.account); err != nil {
			return nil, fmt.Errorf("ledger %s: load index: %w", l.name, sqlError(err))
		}
		l.idx.Store(ix)
		return ix, nil
	}
	// In the writer, so that no commit falls between the scan and the
	// moment the index starts taking updates. A ledger that is not shared
	// has no other writer: while the writer waits for the scan the table
	// stays as it is, and readers may scan parts of it at once. A shared
	// one is read in one statement, one snapshot.
	err := l.writeThen(ctx, "load index", func(ctx context.Context) error {
		if l.shared {
			return scanIndex(ctx, ix, l.wconn.QueryContext, l.account)
		}
		return scanIndexParts(ctx, ix, l.rdb, l.account, runtime.GOMAXPROCS(0))
	}, func() { l.idx.Store(ix) })
	if err != nil {
		return nil, err
	}
	return ix, nil
}

// queryFunc is the QueryContext of a *sql.DB or a *sql.Conn.
type queryFunc func(ctx context.Context, query string, args ...any) (*sql.Rows, error)

// indexSQL reads what the index holds of account's entries. It scans the
// table in its order ("+account" is not indexable): through an index,
// each row would be a seek into the table, in random order, where the
// scan reads its pages one after the other (the index load is part of
// the rerun with --all that make bench measures, docs/benchmarks.md
// part 5). A ledger of many accounts is
// scanned whole, which stays the faster way up to a score of accounts
// of the same size (PostgreSQL serves many more).
const indexSQL = `SELECT event_type, order_id, state, payload_hash, source, event_date FROM conversions WHERE +account = ?`

// indexPartSQL is indexSQL over one range of rowids: a seek to the first,
// then the table's pages in order, as the whole scan reads them.
const indexPartSQL = `SELECT event_type, order_id, state, payload_hash, source, event_date FROM conversions WHERE rowid BETWEEN ? AND ? AND +account = ?`

// minPartRows is the fewest rowids scanIndexParts gives a part of its own.
var minPartRows int64 = 100_000

// scanIndexParts fills ix from the entries of account as scanIndex does,
// with up to parts readers at once, each scanning its own range of
// rowids: the decoding of a million rows (make bench's rerun, part 5) is
// spread over the cores while the run waits for its index. The caller
// keeps writers out meanwhile.
func scanIndexParts(ctx context.Context, ix *index, db *sql.DB, account string, parts int) error {
	var lo, hi sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT min(rowid), max(rowid) FROM conversions`).Scan(&lo, &hi); err != nil {
		return err
	}
	if !lo.Valid {
		ix.sort()
		return nil
	}
	span := hi.Int64 - lo.Int64 + 1
	parts = int(max(min(int64(parts), 4, span/minPartRows), 1))
	got := make([][]slot, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for i := range parts {
		from := lo.Int64 + span*int64(i)/int64(parts)
		to := lo.Int64 + span*int64(i+1)/int64(parts) - 1
		wg.Go(func() {
			got[i], errs[i] = scanIndexPart(ctx, ix, db, account, from, to)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	n := 0
	for _, g := range got {
		n += len(g)
	}
	ix.base = slices.Grow(ix.base[:0], n)
	for _, g := range got {
		ix.base = append(ix.base, g...)
	}
	ix.sort()
	return nil
}

// scanIndexPart returns the slots of account's entries with rowids from
// from to to.
func scanIndexPart(ctx context.Context, ix *index, db *sql.DB, account string, from, to int64) ([]slot, error) {
	rows, err := db.QueryContext(ctx, indexPartSQL, from, to, account)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []slot
	var et, oid, state, ph, src sql.RawBytes
	var ev int64
	for rows.Next() {
		if err := rows.Scan(&et, &oid, &state, &ph, &src, &ev); err != nil {
			return nil, err
		}
		out = append(out, loadedSlot(ix, et, oid, state, ph, src, ev))
	}
	return out, rows.Err()
}

// scanIndex fills ix from the entries of account.
func scanIndex(ctx context.Context, ix *index, query queryFunc, account string) error {
	rows, err := query(ctx, indexSQL, account)
	if err != nil {
		return err
	}
	defer rows.Close()
	// RawBytes: no allocation per row.
	var et, oid, state, ph, src sql.RawBytes
	var ev int64
	for rows.Next() {
		if err := rows.Scan(&et, &oid, &state, &ph, &src, &ev); err != nil {
			return err
		}
		ix.base = append(ix.base, loadedSlot(ix, et, oid, state, ph, src, ev))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	ix.sort()
	return nil
}

// loadedSlot is the slot of one entry read from the ledger's table.
func loadedSlot(ix *index, et, oid, state, ph, src []byte, ev int64) slot {
	s := slot{h: ix.hashBytes(et, oid), v: pack(state, ph)}
	if fp := sourceOf(src, ph); fp != 0 {
		s.src = packSource(fp, ev)
	}
	return s
}
