package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"convpipe/ledger/pgtest"
	"convpipe/pipeline"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(childMain(mode))
	}
	code := m.Run()
	pgtest.StopShared()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// openT opens a ledger at path and closes it when the test ends.
func openT(t testing.TB, path string) *Ledger {
	t.Helper()
	l, err := Open(t.Context(), path, Options{Command: "ledger test"})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return l
}

// sample returns an entry with every field set.
func sample(order string, state pipeline.State) pipeline.Entry {
	return pipeline.Entry{
		Key:          pipeline.Key{EventType: "12345", OrderID: order},
		State:        state,
		PayloadHash:  pipeline.PayloadHash("body of " + order),
		SentHash:     pipeline.PayloadHash("sent body of " + order),
		Attempts:     3,
		HTTPStatus:   400,
		Messages:     []pipeline.Message{{Field: "ItemPrice1", Value: "fifty", Text: "Invalid numeric format", Refs: []pipeline.Ref{{Object: "orders.csv", Line: 7}}}, {Text: "second"}},
		SubmissionID: "A-123",
		QueuedURI:    "/Advertisers/IRx/APISubmissions/A-123",
		MaybeSent:    true,
		Refs:         []pipeline.Ref{{Object: "s3://bucket/a b/orders.csv", Line: 2}, {Object: "orders.parquet", Line: 9}},
		RunID:        "run-1",
	}
}

// withoutTimes returns e with Created and Updated cleared.
func withoutTimes(e pipeline.Entry) pipeline.Entry {
	e.Created, e.Updated = time.Time{}, time.Time{}
	return e
}

func mustPut(t testing.TB, l pipeline.Ledger, e pipeline.Entry) {
	t.Helper()
	if err := l.Put(t.Context(), e); err != nil {
		t.Fatalf("put %s: %v", e.Key, err)
	}
}

func mustGet(t testing.TB, l pipeline.Ledger, k pipeline.Key) pipeline.Entry {
	t.Helper()
	e, ok, err := l.Get(t.Context(), k)
	if err != nil || !ok {
		t.Fatalf("get %s: found %v, err %v", k, ok, err)
	}
	return e
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name, path, wantErr string
	}{
		{"file", "state/ledger.db", ""},
		{"empty", "", "ledger.path: must not be empty"},
		{"blank", "  ", "ledger.path: must not be empty"},
		{"directory", "state/", "ledger.path: \"state/\" names a directory"},
		{"s3", "s3://bucket/ledger.db", "ledger.path: \"s3://bucket/ledger.db\": the ledger must be a local file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Config{Path: tt.path}.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigURL(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == URLEnv {
				return v
			}
			return ""
		}
	}
	tests := []struct {
		name    string
		c       Config
		wantErr string
	}{
		{"url", Config{Path: DefaultPath, URL: "postgres://u@db.internal:5432/convpipe?sslmode=verify-full"}, ""},
		{"postgresql scheme", Config{URL: "postgresql://u@db/convpipe"}, ""},
		{"env url with a password", Config{Path: DefaultPath}.WithEnv(env("postgres://u:pw@db/convpipe")), ""},
		{"password in ledger.url", Config{URL: "postgres://u:hunter2@db/convpipe"}, "ledger.url: must not hold the password"},
		{"password parameter in ledger.url", Config{URL: "postgres://u@db/convpipe?password=hunter2"}, "ledger.url: must not hold the password"},
		{"other scheme", Config{URL: "mysql://u@db/convpipe"}, "ledger.url: \"mysql://u@db/convpipe\" is not a postgres://"},
		{"env other scheme", Config{}.WithEnv(env("sqlite:x.db")), URLEnv + ": "},
		{"no database", Config{URL: "postgres://u@db"}, "names no database"},
		{"missing passfile", Config{URL: "postgres://u@db/c", Passfile: "/nonexistent/pgpass"}, "ledger.passfile: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Validate() = %v: holds the password", err)
			}
		})
	}
	if c := (Config{Path: "a.db"}).WithEnv(env("postgres://u:pw@db/c")).WithFlag("b.db"); c.URL != "" || c.Path != "b.db" {
		t.Errorf("--ledger b.db over the environment's URL = %+v, want the file", c)
	}
	if c := (Config{Path: "a.db"}).WithFlag("postgres://u@db/c"); c.URL != "postgres://u@db/c" || c.Name() != "postgres://u@db/c" {
		t.Errorf("--ledger postgres://... = %+v", c)
	}
	if got := RedactURL("postgres://u:hunter2@db/c?sslmode=require&password=sekrit"); strings.Contains(got, "hunter2") || strings.Contains(got, "sekrit") {
		t.Errorf("RedactURL = %s", got)
	}
}

func TestPutGetRoundTrip(t *testing.T) { forEachBackend(t, testPutGetRoundTrip) }

func testPutGetRoundTrip(t *testing.T, b backend) {
	l := b.temp(t)
	tests := []struct {
		name string
		e    pipeline.Entry
	}{
		{"every field", sample("O-1", pipeline.StateRejected)},
		{"minimal", pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: "O-2"}, State: pipeline.StatePending}},
		{"no event type", pipeline.Entry{Key: pipeline.Key{OrderID: "O-3"}, State: pipeline.StateInvalid, Messages: []pipeline.Message{{Field: "EventTypeId", Text: "missing"}}}},
		{"unicode and escapes", pipeline.Entry{
			Key:   pipeline.Key{EventType: "Online Sale", OrderID: "Ö/\"7\"\n"},
			State: pipeline.StateSkipped,
			Refs:  []pipeline.Ref{{Object: `c:\exports\"q".csv`, Line: 1}, {Object: "<&>", Line: 0}},
		}},
		{"accepted", func() pipeline.Entry {
			e := sample("O-4", pipeline.StateAccepted)
			e.Messages, e.HTTPStatus, e.MaybeSent = nil, 200, false
			return e
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			mustPut(t, l, tt.e)
			got := mustGet(t, l, tt.e.Key)
			if !reflect.DeepEqual(withoutTimes(got), tt.e) {
				t.Errorf("Get() =\n%+v\nwant\n%+v", withoutTimes(got), tt.e)
			}
			if got.Created.Before(before.Add(-time.Second)) || got.Updated.Before(got.Created) || got.Created.Location() != time.UTC {
				t.Errorf("times: created %v, updated %v (put at %v)", got.Created, got.Updated, before)
			}
		})
	}
}

func TestGetMissing(t *testing.T) { forEachBackend(t, testGetMissing) }

func testGetMissing(t *testing.T, b backend) {
	l := b.temp(t)
	mustPut(t, l, sample("O-1", pipeline.StateAccepted))
	for _, k := range []pipeline.Key{{EventType: "12345", OrderID: "O-2"}, {EventType: "999", OrderID: "O-1"}, {OrderID: "O-1"}} {
		e, ok, err := l.Get(t.Context(), k)
		if err != nil || ok || !reflect.DeepEqual(e, pipeline.Entry{}) {
			t.Errorf("Get(%s) = %+v, %v, %v; want none", k, e, ok, err)
		}
	}
}

// TestStateTransitions walks one key through the states a run and its
// reruns write, checking each write is read back whole, that Created stays
// and Updated moves on.
func TestStateTransitions(t *testing.T) { forEachBackend(t, testStateTransitions) }

func testStateTransitions(t *testing.T, b backend) {
	l := b.temp(t)
	key := pipeline.Key{EventType: "12345", OrderID: "O-9"}
	steps := []struct {
		state    pipeline.State
		status   int
		attempts int
		payload  string
	}{
		{pipeline.StatePending, 0, 0, "v1"},
		{pipeline.StateFailed, 503, 4, "v1"},
		{pipeline.StatePending, 503, 4, "v1"},
		{pipeline.StateRejected, 400, 5, "v1"},
		{pipeline.StatePending, 400, 5, "v2"},
		{pipeline.StateAccepted, 200, 6, "v2"},
		{pipeline.StateChanged, 200, 6, "v3"},
		{pipeline.StateInvalid, 0, 6, "v4"},
		{pipeline.StateSkipped, 0, 6, "v5"},
	}
	var created, updated time.Time
	for i, s := range steps {
		t.Run(fmt.Sprintf("%d-%s", i, s.state), func(t *testing.T) {
			e := pipeline.Entry{Key: key, State: s.state, HTTPStatus: s.status, Attempts: s.attempts,
				PayloadHash: pipeline.PayloadHash(s.payload), RunID: fmt.Sprintf("run-%d", i)}
			if s.state == pipeline.StateChanged {
				e.SentHash = pipeline.PayloadHash("v2")
			}
			mustPut(t, l, e)
			got := mustGet(t, l, key)
			if !reflect.DeepEqual(withoutTimes(got), e) {
				t.Fatalf("Get() = %+v, want %+v", withoutTimes(got), e)
			}
			if i == 0 {
				created = got.Created
			} else if !got.Created.Equal(created) {
				t.Errorf("Created = %v, want %v kept from the first write", got.Created, created)
			}
			if got.Updated.Before(updated) {
				t.Errorf("Updated went back: %v after %v", got.Updated, updated)
			}
			updated = got.Updated
			var n int
			if err := l.Entries(t.Context(), pipeline.Filter{}, func(pipeline.Entry) error { n++; return nil }); err != nil || n != 1 {
				t.Errorf("Entries: %d entries, err %v; want 1", n, err)
			}
		})
	}
}

func TestPutRejects(t *testing.T) { forEachBackend(t, testPutRejects) }

func testPutRejects(t *testing.T, b backend) {
	l := b.temp(t)
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		e       pipeline.Entry
		wantErr string
	}{
		{"no order id", t.Context(), pipeline.Entry{Key: pipeline.Key{EventType: "1"}, State: pipeline.StatePending}, "invalid entry: no OrderId"},
		{"no state", t.Context(), pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: "O"}}, `unknown state ""`},
		{"unknown state", t.Context(), pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: "O"}, State: "done"}, `unknown state "done"`},
		{"canceled", canceled, sample("O", pipeline.StatePending), "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := l.Put(tt.ctx, tt.e)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "ledger ") {
				t.Fatalf("Put() = %v, want an error naming the ledger and %q", err, tt.wantErr)
			}
			if invalid := tt.ctx.Err() == nil; errors.Is(err, ErrInvalidEntry) != invalid {
				t.Errorf("errors.Is(%v, ErrInvalidEntry) = %v, want %v", err, !invalid, invalid)
			}
			if _, ok, _ := l.Get(t.Context(), tt.e.Key); ok {
				t.Errorf("rejected entry %s was stored", tt.e.Key)
			}
		})
	}
}

func TestPutAll(t *testing.T) { forEachBackend(t, testPutAll) }

func testPutAll(t *testing.T, b backend) {
	l := b.temp(t)
	if err := l.PutAll(t.Context(), nil); err != nil {
		t.Errorf("PutAll(nil) = %v", err)
	}
	es := []pipeline.Entry{sample("A", pipeline.StateAccepted), sample("B", pipeline.StateFailed), sample("C", pipeline.StatePending)}
	if err := l.PutAll(t.Context(), es); err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if got := mustGet(t, l, e.Key); !reflect.DeepEqual(withoutTimes(got), e) {
			t.Errorf("Get(%s) = %+v, want %+v", e.Key, withoutTimes(got), e)
		}
	}
	// One bad entry: none is written.
	bad := []pipeline.Entry{sample("D", pipeline.StateAccepted), {Key: pipeline.Key{EventType: "1"}, State: pipeline.StateAccepted}}
	if err := l.PutAll(t.Context(), bad); !errors.Is(err, ErrInvalidEntry) {
		t.Errorf("PutAll with an entry without OrderId = %v, want ErrInvalidEntry", err)
	}
	if _, ok, _ := l.Get(t.Context(), bad[0].Key); ok {
		t.Error("PutAll wrote part of a refused list")
	}
}

func TestEntriesFilter(t *testing.T) { forEachBackend(t, testEntriesFilter) }

func testEntriesFilter(t *testing.T, b backend) {
	l := b.temp(t)
	put := func(et, order string, st pipeline.State, run string) {
		mustPut(t, l, pipeline.Entry{Key: pipeline.Key{EventType: et, OrderID: order}, State: st, RunID: run})
	}
	// Written out of order: Entries sorts by event type, then OrderId.
	put("2", "A", pipeline.StateAccepted, "r2")
	put("1", "B", pipeline.StateFailed, "r1")
	put("1", "A", pipeline.StateAccepted, "r1")
	put("1", "C", pipeline.StateAccepted, "r2")
	put("2", "B", pipeline.StatePending, "r2")

	tests := []struct {
		name string
		f    pipeline.Filter
		want []string
	}{
		{"all", pipeline.Filter{}, []string{"1/A", "1/B", "1/C", "2/A", "2/B"}},
		{"state", pipeline.Filter{State: pipeline.StateAccepted}, []string{"1/A", "1/C", "2/A"}},
		{"run", pipeline.Filter{RunID: "r2"}, []string{"1/C", "2/A", "2/B"}},
		{"order", pipeline.Filter{OrderID: "A"}, []string{"1/A", "2/A"}},
		{"state and run", pipeline.Filter{State: pipeline.StateAccepted, RunID: "r1"}, []string{"1/A"}},
		{"all three", pipeline.Filter{State: pipeline.StatePending, RunID: "r2", OrderID: "B"}, []string{"2/B"}},
		{"none", pipeline.Filter{State: pipeline.StateChanged}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := l.Entries(t.Context(), tt.f, func(e pipeline.Entry) error {
				got = append(got, e.Key.String())
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Entries(%+v) = %v, want %v", tt.f, got, tt.want)
			}
		})
	}

	t.Run("callback error stops", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := l.Entries(t.Context(), pipeline.Filter{}, func(pipeline.Entry) error {
			n++
			if n == 2 {
				return stop
			}
			return nil
		})
		if err != stop || n != 2 {
			t.Errorf("Entries() = %v after %d calls, want the callback's error as is after 2", err, n)
		}
	})
	t.Run("callback may call the ledger", func(t *testing.T) {
		err := l.Entries(t.Context(), pipeline.Filter{}, func(e pipeline.Entry) error {
			if _, _, err := l.Get(t.Context(), e.Key); err != nil {
				return err
			}
			return l.Put(t.Context(), pipeline.Entry{Key: pipeline.Key{EventType: "3", OrderID: e.Key.OrderID}, State: pipeline.StateSkipped})
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := l.Entries(ctx, pipeline.Filter{}, func(pipeline.Entry) error { return nil })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Entries() = %v, want context.Canceled", err)
		}
	})
}

func TestCounts(t *testing.T) { forEachBackend(t, testCounts) }

func testCounts(t *testing.T, b backend) {
	l := b.temp(t)
	for i, st := range []pipeline.State{pipeline.StateAccepted, pipeline.StateAccepted, pipeline.StateFailed} {
		mustPut(t, l, pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: fmt.Sprint(i)}, State: st})
	}
	got, err := l.Counts(t.Context())
	want := map[pipeline.State]int64{pipeline.StateAccepted: 2, pipeline.StateFailed: 1}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Counts() = %v, %v; want %v", got, err, want)
	}
}

func TestObjects(t *testing.T) { forEachBackend(t, testObjects) }

func testObjects(t *testing.T, b backend) {
	l := b.temp(t)
	mod := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	obj := pipeline.Object{Key: "s3://b/orders.csv", ETag: `"abc"`, Size: 100, ModTime: mod}
	done := func(o pipeline.Object) bool {
		t.Helper()
		ok, err := l.ObjectDone(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if done(obj) {
		t.Fatal("ObjectDone before MarkObjectDone = true")
	}
	if err := l.MarkObjectDone(t.Context(), obj, "r1"); err != nil {
		t.Fatal(err)
	}
	noETag := pipeline.Object{Key: "local.csv", Size: 5}
	if err := l.MarkObjectDone(t.Context(), noETag, "r1"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		obj  pipeline.Object
		want bool
	}{
		{"same", obj, true},
		{"same, other mod time", pipeline.Object{Key: obj.Key, ETag: obj.ETag, Size: obj.Size}, true},
		{"other etag", pipeline.Object{Key: obj.Key, ETag: `"abd"`, Size: obj.Size}, false},
		{"other size", pipeline.Object{Key: obj.Key, ETag: obj.ETag, Size: 101}, false},
		{"other key", pipeline.Object{Key: "s3://b/orders2.csv", ETag: obj.ETag, Size: obj.Size}, false},
		{"recorded without etag", noETag, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := done(tt.obj); got != tt.want {
				t.Errorf("ObjectDone(%+v) = %v, want %v", tt.obj, got, tt.want)
			}
		})
	}
	// Marking again with a new ETag replaces the record.
	obj2 := obj
	obj2.ETag = `"new"`
	if err := l.MarkObjectDone(t.Context(), obj2, "r2"); err != nil {
		t.Fatal(err)
	}
	if done(obj) || !done(obj2) {
		t.Error("after re-marking, the old ETag still matches or the new one does not")
	}
	var recs []ObjectRecord
	if err := l.Objects(t.Context(), func(r ObjectRecord) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Object.Key != "local.csv" || recs[1].Object != obj2 || recs[1].RunID != "r2" || recs[1].ProcessedAt.IsZero() {
		t.Errorf("Objects() = %+v", recs)
	}
	if err := l.MarkObjectDone(t.Context(), pipeline.Object{}, "r1"); err == nil {
		t.Error("MarkObjectDone of an object without key succeeded")
	}
}

func TestRuns(t *testing.T) { forEachBackend(t, testRuns) }

func testRuns(t *testing.T, b backend) {
	l := b.temp(t)
	start := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	run := pipeline.RunInfo{ID: "r1", Started: start, Args: "convpipe run --config c.yaml"}
	if err := l.BeginRun(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	if err := l.BeginRun(t.Context(), run); err == nil || !strings.Contains(err.Error(), "already recorded") {
		t.Errorf("second BeginRun(r1) = %v, want already recorded", err)
	}
	got, ok, err := l.Run(t.Context(), "r1")
	if err != nil || !ok || !reflect.DeepEqual(got, run) {
		t.Errorf("Run(r1) = %+v, %v, %v; want %+v", got, ok, err, run)
	}
	sum := &pipeline.Summary{RunID: "r1", Stopped: "deadline", Total: pipeline.Counts{Rows: 10, Accepted: 3, Unsent: 2},
		Objects: []pipeline.ObjectSummary{{Key: "a.csv", Counts: pipeline.Counts{Rows: 10}}}, Seconds: 1.5}
	run.Finished = start.Add(time.Hour)
	run.Summary = sum
	run.Args = ""
	if err := l.FinishRun(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	run.Args = "convpipe run --config c.yaml" // kept from BeginRun
	got, ok, err = l.Run(t.Context(), "r1")
	if err != nil || !ok || !reflect.DeepEqual(got, run) {
		t.Errorf("Run(r1) = %+v, %v, %v; want %+v", got, ok, err, run)
	}
	// A run finished without having begun is still recorded.
	if err := l.FinishRun(t.Context(), pipeline.RunInfo{ID: "r0", Summary: &pipeline.Summary{RunID: "r0"}}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	if err := l.Runs(t.Context(), func(r pipeline.RunInfo) error { ids = append(ids, r.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ids, []string{"r1", "r0"}) {
		t.Errorf("Runs() = %v, want [r1 r0] (by start)", ids)
	}
	if _, ok, err := l.Run(t.Context(), "nope"); ok || err != nil {
		t.Errorf("Run(nope) = %v, %v", ok, err)
	}
	for _, f := range []func(context.Context, pipeline.RunInfo) error{l.BeginRun, l.FinishRun} {
		if err := f(t.Context(), pipeline.RunInfo{}); err == nil {
			t.Error("a run without id was accepted")
		}
	}
}

func TestConcurrentPuts(t *testing.T) { forEachBackend(t, testConcurrentPuts) }

func testConcurrentPuts(t *testing.T, b backend) {
	l := b.temp(t)
	const workers, each = 16, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				e := pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: fmt.Sprintf("%02d-%03d", w, i)}, State: pipeline.StatePending, Attempts: i}
				if err := l.Put(t.Context(), e); err != nil {
					t.Error(err)
					return
				}
				if got := mustGet(t, l, e.Key); got.Attempts != i {
					t.Errorf("read after write: attempts %d, want %d", got.Attempts, i)
				}
			}
		})
	}
	wg.Wait()
	c, err := l.Counts(t.Context())
	if err != nil || c[pipeline.StatePending] != workers*each {
		t.Errorf("Counts() = %v, %v; want %d pending", c, err, workers*each)
	}
}

// TestBatchFailureIsolated commits one batch in which one write fails:
// the others must still commit, and each caller gets its own result.
func TestBatchFailureIsolated(t *testing.T) { forEachBackend(t, testBatchFailureIsolated) }

func testBatchFailureIsolated(t *testing.T, b backend) {
	l := b.temp(t)
	var hooks []string
	errs, isBad := commitWithBadWrite(t, l, func(order string) { hooks = append(hooks, order) })
	for i, err := range errs {
		_, found, gerr := l.Get(t.Context(), pipeline.Key{EventType: "1", OrderID: fmt.Sprint(i)})
		if gerr != nil {
			t.Fatal(gerr)
		}
		if i == 2 {
			if !isBad(err) || found {
				t.Errorf("write 2: err %v, stored %v; want its own error and nothing stored", err, found)
			}
			continue
		}
		if err != nil || !found {
			t.Errorf("write %d: err %v, stored %v; want committed", i, err, found)
		}
	}
	if want := []string{"0", "1", "3", "4"}; !reflect.DeepEqual(hooks, want) {
		t.Errorf("after hooks ran for %v, want %v in commit order", hooks, want)
	}
}

// commitWithBadWrite commits, in one batch of l's writer, the writes of
// keys 1/0 to 1/4, of which 1/2 fails; after runs for each write that
// committed. It returns each write's result, and how to tell the bad
// write's error.
func commitWithBadWrite(t *testing.T, l Store, after func(order string)) ([]error, func(error) bool) {
	errs := make([]error, 5)
	switch l := l.(type) {
	case *Ledger:
		bad := errors.New("bad write")
		var reqs []*writeReq
		for i := range 5 {
			e := pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: fmt.Sprint(i)}, State: pipeline.StateAccepted}
			reqs = append(reqs, &writeReq{
				exec: func(ctx context.Context) error {
					if i == 2 {
						return bad
					}
					_, err := l.putStmt.ExecContext(ctx, putArgs("", e, entryCol{created: 1, updated: 1})...)
					return err
				},
				after: func() { after(e.Key.OrderID) },
				done:  make(chan error, 1),
			})
		}
		l.commit(reqs)
		for i, r := range reqs {
			errs[i] = <-r.done
		}
		return errs, func(err error) bool { return err == bad }
	case *Postgres:
		// The server refuses the bad write: a state its CHECK forbids.
		var reqs []*pgWriteReq
		for i := range 5 {
			state := "accepted"
			if i == 2 {
				state = "bogus"
			}
			order := fmt.Sprint(i)
			reqs = append(reqs, &pgWriteReq{
				stmts: []pgStmt{{pgPutSQL, pgPutArgs("", pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: order}, State: pipeline.State(state)},
					entryCol{created: 1, updated: 1})}},
				after: func() { after(order) },
				done:  make(chan error, 1),
			})
		}
		l.commit(reqs)
		for i, r := range reqs {
			errs[i] = <-r.done
		}
		return errs, func(err error) bool { return err != nil && strings.Contains(err.Error(), "conversions_state_check") }
	}
	t.Fatalf("no batch test for %T", l)
	return nil, nil
}

func TestSettled(t *testing.T) { forEachBackend(t, testSettled) }

func testSettled(t *testing.T, b backend) {
	l := b.temp(t)
	ph := func(s string) string { return pipeline.PayloadHash(s) }
	key := func(o string) pipeline.Key { return pipeline.Key{EventType: "1", OrderID: o} }
	// Written before the index is loaded.
	mustPut(t, l, pipeline.Entry{Key: key("acc"), State: pipeline.StateAccepted, PayloadHash: ph("a")})
	mustPut(t, l, pipeline.Entry{Key: key("rej"), State: pipeline.StateRejected, PayloadHash: ph("r")})
	mustPut(t, l, pipeline.Entry{Key: key("fail"), State: pipeline.StateFailed, PayloadHash: ph("f")})
	mustPut(t, l, pipeline.Entry{Key: key("odd"), State: pipeline.StateInvalid, PayloadHash: "not-hex"})

	check := func(t *testing.T, k pipeline.Key, payload string, wantState pipeline.State, want bool) {
		t.Helper()
		st, ok, err := l.Settled(t.Context(), k, payload)
		if err != nil || ok != want || st != wantState {
			t.Errorf("Settled(%s, %.8s) = %q, %v, %v; want %q, %v", k, payload, st, ok, err, wantState, want)
		}
	}
	tests := []struct {
		name    string
		k       pipeline.Key
		payload string
		state   pipeline.State
		want    bool
	}{
		{"accepted same payload", key("acc"), ph("a"), pipeline.StateAccepted, true},
		{"accepted other payload", key("acc"), ph("a2"), "", false},
		{"rejected same payload", key("rej"), ph("r"), pipeline.StateRejected, true},
		{"failed is not final", key("fail"), ph("f"), "", false},
		{"absent", key("new"), ph("n"), "", false},
		{"other event type", pipeline.Key{EventType: "2", OrderID: "acc"}, ph("a"), "", false},
		{"non-hex payload, exact match", key("odd"), "not-hex", pipeline.StateInvalid, true},
		{"non-hex payload, other", key("odd"), "not-hex2", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, tt.k, tt.payload, tt.state, tt.want) })
	}
	if indexOf(l) == nil {
		t.Fatal("index not loaded by Settled")
	}
	t.Run("writes after loading", func(t *testing.T) {
		mustPut(t, l, pipeline.Entry{Key: key("fail"), State: pipeline.StateAccepted, PayloadHash: ph("f")})
		check(t, key("fail"), ph("f"), pipeline.StateAccepted, true)
		mustPut(t, l, pipeline.Entry{Key: key("acc"), State: pipeline.StateChanged, PayloadHash: ph("a2"), SentHash: ph("a")})
		check(t, key("acc"), ph("a"), "", false)
		check(t, key("acc"), ph("a2"), pipeline.StateChanged, true)
		mustPut(t, l, pipeline.Entry{Key: key("new"), State: pipeline.StatePending, PayloadHash: ph("n")})
		check(t, key("new"), ph("n"), "", false)
		if _, ok, _ := l.Get(t.Context(), key("new")); !ok {
			t.Error("Get misses a key written after the index loaded")
		}
		if _, ok, _ := l.Get(t.Context(), key("never")); ok {
			t.Error("Get finds a key never written")
		}
	})
	t.Run("merge", func(t *testing.T) {
		ix := indexOf(l)
		want := map[pipeline.Key]uint64{}
		for i := range 3000 {
			k := key(fmt.Sprint("m", i))
			want[k] = pack(string(pipeline.StateAccepted), ph(k.OrderID))
			ix.set(ix.hash(k), want[k])
			if i%1000 == 0 {
				ix.mu.Lock()
				ix.merge()
				ix.mu.Unlock()
			}
		}
		for k, v := range want {
			if got, ok := ix.lookup(ix.hash(k)); !ok || got != v {
				t.Fatalf("lookup(%s) = %x, %v; want %x", k, got, ok, v)
			}
		}
		check(t, key("fail"), ph("f"), pipeline.StateAccepted, true)
	})
}

func TestDecodeRefs(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []pipeline.Ref
		fast bool
	}{
		{"one", `[{"object":"a.csv","line":2}]`, []pipeline.Ref{{Object: "a.csv", Line: 2}}, true},
		{"two", `[{"object":"s3://b/a b.csv","line":2},{"object":"x","line":-1}]`, []pipeline.Ref{{Object: "s3://b/a b.csv", Line: 2}, {Object: "x", Line: -1}}, true},
		{"escapes", `[{"object":"a\"b\\c\u003c","line":3}]`, []pipeline.Ref{{Object: `a"b\c<`, Line: 3}}, false},
		{"other order", `[{"line":3,"object":"a"}]`, []pipeline.Ref{{Object: "a", Line: 3}}, false},
		{"empty", `[]`, []pipeline.Ref{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := parseRefs(tt.in); ok != tt.fast {
				t.Errorf("parseRefs fast path = %v, want %v", ok, tt.fast)
			}
			got, err := decodeRefs(tt.in)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decodeRefs(%s) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
	if _, err := decodeRefs(`[{"object":`); err == nil {
		t.Error("decodeRefs of broken JSON succeeded")
	}
}

func FuzzDecodeRefs(f *testing.F) {
	f.Add(`[{"object":"a.csv","line":2},{"object":"b","line":3}]`)
	f.Add(`[{"object":"a\"","line":2}]`)
	f.Add(`[{"object":"a","line":01}]`)
	f.Add(`[{"object":"a","line":+1}]`)
	f.Add("[{\"object\":\"a\tb\",\"line\":-0}]")
	f.Add("[{\"object\":\"\xff\",\"line\":1}]")
	f.Fuzz(func(t *testing.T, s string) {
		fast, ok := parseRefs(s)
		if !ok {
			return
		}
		var want []pipeline.Ref
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatalf("fast path took %q, encoding/json refuses it: %v", s, err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("parseRefs(%q) = %+v, encoding/json %+v", s, fast, want)
		}
	})
}

func TestSchema(t *testing.T) {
	dir := t.TempDir()
	raw := rawSQL
	t.Run("version and id", func(t *testing.T) {
		path := filepath.Join(dir, "v.db")
		l := openT(t, path)
		var v, id int
		var mode, sync string
		l.wconn.QueryRowContext(t.Context(), `PRAGMA user_version`).Scan(&v)
		l.wconn.QueryRowContext(t.Context(), `PRAGMA application_id`).Scan(&id)
		l.wconn.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode)
		l.wconn.QueryRowContext(t.Context(), `PRAGMA synchronous`).Scan(&sync)
		if v != schemaVersion || id != applicationID || mode != "wal" || sync != "2" {
			t.Errorf("user_version %d, application_id %x, journal_mode %s, synchronous %s; want %d, %x, wal, 2 (FULL)", v, id, mode, sync, schemaVersion, applicationID)
		}
	})
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		wantErr string
	}{
		{"other database", func(t *testing.T, path string) {
			raw(t, path, `CREATE TABLE t (x)`)
		}, "not a convpipe ledger"},
		{"not sqlite", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(strings.Repeat("order_id,amount\n1,2\n", 300)), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "not a SQLite database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".db")
			tt.prepare(t, path)
			for name, open := range map[string]func() (*Ledger, error){
				"Open":         func() (*Ledger, error) { return Open(t.Context(), path, Options{}) },
				"OpenReadOnly": func() (*Ledger, error) { return OpenReadOnly(t.Context(), path) },
			} {
				l, err := open()
				if err == nil {
					l.Close()
					t.Fatalf("%s succeeded", name)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Errorf("%s: %v; want an error naming %s and %q", name, err, path, tt.wantErr)
				}
			}
		})
	}
}

// TestNewerSchema: a ledger whose schema is newer than this code knows is
// refused by Open and OpenReadOnly, naming the ledger, before anything is
// read or written.
func TestNewerSchema(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		place := b.place(t)
		l, err := b.open(t.Context(), place, Options{})
		if err != nil {
			t.Fatal(err)
		}
		mustPut(t, l, sample("O-1", pipeline.StateAccepted))
		l.Close()
		b.setVersion(t, place, 99)
		for name, open := range map[string]func() (Store, error){
			"Open":         func() (Store, error) { return b.open(t.Context(), place, Options{}) },
			"OpenReadOnly": func() (Store, error) { return b.openRO(t.Context(), place) },
		} {
			l, err := open()
			if err == nil {
				l.Close()
				t.Fatalf("%s succeeded", name)
			}
			if want := "schema version 99 is newer than this convpipe knows"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), b.display(place)) {
				t.Errorf("%s: %v; want an error naming %s and %q", name, err, b.display(place), want)
			}
		}
	})
}

// TestPathCharacters opens ledgers whose paths hold the characters a
// SQLite URI gives meaning to.
func TestPathCharacters(t *testing.T) {
	for _, name := range []string{"a b", "q?x=1", "h#frag", "p%20c", "ü"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			path := filepath.Join(dir, "ledger.db")
			l := openT(t, path)
			mustPut(t, l, sample("O-1", pipeline.StateAccepted))
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("the database is not where asked: %v", err)
			}
			ro, err := OpenReadOnly(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			mustGet(t, ro, sample("O-1", "").Key)
		})
	}
}

func TestLockInProcess(t *testing.T) { forEachBackend(t, testLockInProcess) }

func testLockInProcess(t *testing.T, b backend) {
	place := b.place(t)
	path := b.display(place)
	l, err := b.open(t.Context(), place, Options{Command: "convpipe run"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.BeginRun(t.Context(), pipeline.RunInfo{ID: "run-A"}); err != nil {
		t.Fatal(err)
	}
	_, err = b.open(t.Context(), place, Options{})
	if !errors.Is(err, pipeline.ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	var le *LockedError
	if !errors.As(err, &le) || le.Holder.PID != os.Getpid() || le.Holder.RunID != "run-A" || le.Holder.Command != "convpipe run" {
		t.Errorf("LockedError = %+v, want this process, run-A", le)
	}
	for _, want := range []string{path, "locked by another run", fmt.Sprintf("pid %d", os.Getpid()), "run run-A"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	// Reading needs no lock.
	ro, err := b.openRO(t.Context(), place)
	if err != nil {
		t.Fatalf("OpenReadOnly while locked: %v", err)
	}
	ro.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := b.open(t.Context(), place, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	l2.Close()
}

func TestReadOnly(t *testing.T) { forEachBackend(t, testReadOnly) }

func testReadOnly(t *testing.T, b backend) {
	place := b.place(t)
	l := b.openT(t, place)
	mustPut(t, l, sample("O-1", pipeline.StateAccepted))
	if err := l.MarkObjectDone(t.Context(), pipeline.Object{Key: "a.csv", ETag: "e", Size: 1}, "r"); err != nil {
		t.Fatal(err)
	}
	ro, err := b.openRO(t.Context(), place)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	// Written by the run after the reader opened: visible.
	mustPut(t, l, sample("O-2", pipeline.StatePending))
	var keys []string
	if err := ro.Entries(t.Context(), pipeline.Filter{}, func(e pipeline.Entry) error { keys = append(keys, e.Key.OrderID); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(keys, []string{"O-1", "O-2"}) {
		t.Errorf("read-only Entries = %v", keys)
	}
	if e := mustGet(t, ro, sample("O-1", "").Key); e.State != pipeline.StateAccepted {
		t.Errorf("read-only Get = %+v", e)
	}
	if ok, err := ro.ObjectDone(t.Context(), pipeline.Object{Key: "a.csv", ETag: "e", Size: 1}); !ok || err != nil {
		t.Errorf("read-only ObjectDone = %v, %v", ok, err)
	}
	if st, ok, err := ro.Settled(t.Context(), sample("O-1", "").Key, sample("O-1", "").PayloadHash); !ok || err != nil || st != pipeline.StateAccepted {
		t.Errorf("read-only Settled = %v, %v, %v", st, ok, err)
	}
	writes := map[string]func() error{
		"Put":            func() error { return ro.Put(t.Context(), sample("O-3", pipeline.StatePending)) },
		"MarkObjectDone": func() error { return ro.MarkObjectDone(t.Context(), pipeline.Object{Key: "b"}, "r") },
		"BeginRun":       func() error { return ro.BeginRun(t.Context(), pipeline.RunInfo{ID: "r"}) },
		"FinishRun":      func() error { return ro.FinishRun(t.Context(), pipeline.RunInfo{ID: "r"}) },
	}
	for name, w := range writes {
		if err := w(); !errors.Is(err, ErrReadOnly) {
			t.Errorf("read-only %s = %v, want ErrReadOnly", name, err)
		}
	}
	// Still readable after the writer closed (and checkpointed).
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ro2, err := b.openRO(t.Context(), place)
	if err != nil {
		t.Fatalf("OpenReadOnly after the writer closed: %v", err)
	}
	defer ro2.Close()
	if c, err := ro2.Counts(t.Context()); err != nil || c[pipeline.StateAccepted] != 1 || c[pipeline.StatePending] != 1 {
		t.Errorf("Counts = %v, %v", c, err)
	}
	missing := b.place(t)
	if _, err := b.openRO(t.Context(), missing); err == nil || !strings.Contains(err.Error(), b.display(missing)) {
		t.Errorf("OpenReadOnly of a missing ledger = %v", err)
	}
}

func TestClosed(t *testing.T) { forEachBackend(t, testClosed) }

func testClosed(t *testing.T, b backend) {
	place := b.place(t)
	path := b.display(place)
	l, err := b.open(t.Context(), place, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, l, sample("O-1", pipeline.StateAccepted))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	calls := map[string]func() error{
		"Put": func() error { return l.Put(t.Context(), sample("O-2", pipeline.StatePending)) },
		"Get": func() error { _, _, err := l.Get(t.Context(), sample("O-1", "").Key); return err },
		"Entries": func() error {
			return l.Entries(t.Context(), pipeline.Filter{}, func(pipeline.Entry) error { return nil })
		},
		"ObjectDone":     func() error { _, err := l.ObjectDone(t.Context(), pipeline.Object{Key: "a"}); return err },
		"MarkObjectDone": func() error { return l.MarkObjectDone(t.Context(), pipeline.Object{Key: "a"}, "r") },
		"BeginRun":       func() error { return l.BeginRun(t.Context(), pipeline.RunInfo{ID: "r"}) },
		"FinishRun":      func() error { return l.FinishRun(t.Context(), pipeline.RunInfo{ID: "r"}) },
		"Settled": func() error {
			_, _, err := l.Settled(t.Context(), sample("O-1", "").Key, sample("O-1", "").PayloadHash)
			return err
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s after Close = %v, want ErrClosed naming the ledger", name, err)
		}
	}
}

// TestCloseWhileWriting closes the ledger while writers run: every Put
// either committed (and is there after reopening) or failed with
// ErrClosed; none hangs.
func TestCloseWhileWriting(t *testing.T) { forEachBackend(t, testCloseWhileWriting) }

func testCloseWhileWriting(t *testing.T, b backend) {
	place := b.place(t)
	l, err := b.open(t.Context(), place, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var committed []pipeline.Key
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				e := pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: fmt.Sprintf("%d-%d", w, i)}, State: pipeline.StatePending}
				err := l.Put(context.Background(), e)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				committed = append(committed, e.Key)
				mu.Unlock()
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	l2 := b.openT(t, place)
	for _, k := range committed {
		mustGet(t, l2, k)
	}
	if len(committed) == 0 {
		t.Error("nothing committed before Close")
	}
}

// TestEntriesOfARunUseItsIndex: the entries of one run (a run's results
// file) are found by the run's index, not by walking every entry of the
// account: SQLite, without statistics, preferred the account's key index
// for its order, which made the results file of a run that sent nothing
// read the whole ledger (make bench's nightly rerun, docs/benchmarks.md
// part 5).
func TestEntriesOfARunUseItsIndex(t *testing.T) {
	l := sqliteBackend.temp(t).(*Ledger)
	for _, f := range []pipeline.Filter{{RunID: "r1"}, {RunID: "r1", State: pipeline.StateAccepted}, {RunID: "r1", OrderID: "A-1"}} {
		q, args := entriesQuery(l.account, f)
		if got := queryPlan(t, l, q, args...); !strings.Contains(got, "USING INDEX conversions_run") {
			t.Errorf("%+v: plan %q, want the run's index", f, got)
		}
	}
}

// TestIndexLoadScansTheTable: the rerun index is loaded by one scan of
// the table, not by a seek into it for each entry through an index,
// which reads the table's pages in random order.
func TestIndexLoadScansTheTable(t *testing.T) {
	l := sqliteBackend.temp(t).(*Ledger)
	if got := queryPlan(t, l, indexSQL, l.account); got != "SCAN conversions" {
		t.Errorf("plan %q, want SCAN conversions", got)
	}
	// Each part seeks to its first rowid and scans from there.
	if got, want := queryPlan(t, l, indexPartSQL, 1, 2, l.account), "SEARCH conversions USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"; got != want {
		t.Errorf("plan of a part %q, want %q", got, want)
	}
}

// TestIndexLoadInParts loads the index of a ledger in several parts at
// once and checks that it holds what one scan reads: every entry once,
// with its state and payload (one account's entries among another's).
func TestIndexLoadInParts(t *testing.T) {
	old := minPartRows
	minPartRows = 50
	t.Cleanup(func() { minPartRows = old })
	path := filepath.Join(t.TempDir(), "ledger.db")
	ctx := t.Context()
	var es, other []pipeline.Entry
	states := []pipeline.State{pipeline.StateAccepted, pipeline.StateRejected, pipeline.StateFailed, pipeline.StateInvalid}
	for i := range 1000 {
		o := strconv.Itoa(i)
		es = append(es, pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: o}, State: states[i%len(states)], PayloadHash: pipeline.PayloadHash(o)})
		other = append(other, pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: "x" + o}, State: pipeline.StateAccepted, PayloadHash: pipeline.PayloadHash(o)})
	}
	for _, w := range []struct {
		account string
		es      []pipeline.Entry
	}{{"A", es[:500]}, {"B", other}, {"A", es[500:]}} {
		l, err := Open(ctx, path, Options{Account: w.account})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.PutAll(ctx, w.es); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	l, err := Open(ctx, path, Options{Account: "A"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ix := newIndex()
	if err := scanIndexParts(ctx, ix, l.rdb, "A", 4); err != nil {
		t.Fatal(err)
	}
	one := &index{seed: ix.seed, delta: map[uint64]slot{}}
	if err := scanIndex(ctx, one, l.rdb.QueryContext, "A"); err != nil {
		t.Fatal(err)
	}
	if len(ix.base) != len(es) || !slices.Equal(ix.base, one.base) {
		t.Fatalf("index in parts: %d slots, one scan: %d; want %d, the same", len(ix.base), len(one.base), len(es))
	}
	for _, e := range es {
		st, ok, err := l.Settled(ctx, e.Key, e.PayloadHash)
		if err != nil || ok != e.State.Final() || ok && st != e.State {
			t.Fatalf("Settled(%s) = %q, %v, %v; want %q", e.Key, st, ok, err, e.State)
		}
	}
	if _, ok, _ := l.Settled(ctx, other[0].Key, other[0].PayloadHash); ok {
		t.Errorf("Settled found account B's entry in account A's index")
	}
}

// queryPlan returns SQLite's plan of q, its lines joined by "; ".
func queryPlan(t *testing.T, l *Ledger, q string, args ...any) string {
	t.Helper()
	rows, err := l.rdb.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "; ")
}
