package ledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"convpipe/pipeline"
)

// Benchmarks run on each backend with the ledger's real settings: SQLite
// (WAL, synchronous=FULL) on files under the system's temporary
// directory, PostgreSQL (synchronous_commit=on, fsync=on) on the server
// pgtest starts on loopback, in the same temporary directory:
//
//	go test ./ledger -run '^$' -bench . -benchmem
//
// BenchmarkRerun1M builds a ledger of a million entries first (about half
// a minute) and is left out unless asked for: -bench Rerun1M.

func benchKey(i int) pipeline.Key {
	return pipeline.Key{EventType: "12345", OrderID: fmt.Sprintf("ORD-%09d", i)}
}

// benchEntry returns a typical accepted entry: two source rows, no
// messages.
func benchEntry(i int) pipeline.Entry {
	return pipeline.Entry{
		Key:          benchKey(i),
		State:        pipeline.StateAccepted,
		PayloadHash:  benchPayload(i),
		Attempts:     1,
		HTTPStatus:   200,
		SubmissionID: "A-1234567-89ab",
		QueuedURI:    "/Advertisers/IRabc/APISubmissions/A-1234567-89ab",
		Refs:         []pipeline.Ref{{Object: "s3://bucket/exports/2026-01-01/orders.csv", Line: int64(i + 2)}, {Object: "s3://bucket/exports/2026-01-01/orders.csv", Line: int64(i + 3)}},
		RunID:        "20260101T000000Z-abcd",
	}
}

func benchPayload(i int) string { return pipeline.PayloadHash(fmt.Sprint("payload ", i)) }

// forEachBackendB runs fn as a sub-benchmark for each backend.
func forEachBackendB(b *testing.B, fn func(b *testing.B, be backend)) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) { fn(b, be) })
	}
}

// fill writes benchEntry(0..n-1) in large transactions, the fast way to
// build a big ledger.
func fill(tb testing.TB, l Store, n int) {
	tb.Helper()
	if l, ok := l.(*Postgres); ok {
		fillPostgres(tb, l, n)
		return
	}
	fillSQLite(tb, l.(*Ledger), n)
}

// fillPostgres writes benchEntry(0..n-1) in PutAlls of 5,000.
func fillPostgres(tb testing.TB, l *Postgres, n int) {
	tb.Helper()
	const chunk = 5000
	es := make([]pipeline.Entry, 0, chunk)
	for lo := 0; lo < n; lo += chunk {
		es = es[:0]
		for i := lo; i < min(n, lo+chunk); i++ {
			es = append(es, benchEntry(i))
		}
		if err := l.PutAll(context.Background(), es); err != nil {
			tb.Fatal(err)
		}
	}
}

func fillSQLite(tb testing.TB, l *Ledger, n int) {
	tb.Helper()
	const chunk = 50000
	for lo := 0; lo < n; lo += chunk {
		err := runTx(context.Background(), l.wconn, func(ctx context.Context) error {
			for i := lo; i < min(n, lo+chunk); i++ {
				e := benchEntry(i)
				refs, _ := marshalList(e.Refs)
				now := time.Now().UnixNano()
				// The same arguments as a Put's, whatever columns the
				// schema has.
				if _, err := l.putStmt.ExecContext(ctx, putArgs(l.account, e, entryCol{refs: refs, created: now, updated: now})...); err != nil {
					return err
				}
			}
			return nil
		}, nil)
		if err != nil {
			tb.Fatal(err)
		}
	}
}

var (
	benchDirOnce sync.Once
	benchDir     string
	benchFiles   sync.Map // backend and size → place of a filled ledger
)

// bigLedger returns a ledger of n benchEntry entries on backend be, built
// once per test process (benchmark functions run several times) and
// removed at exit.
func bigLedger(b *testing.B, be backend, n int) Store {
	b.Helper()
	place := bigPlace(b, be, n)
	return be.openT(b, place)
}

// bigPlace returns the place of bigLedger's ledger, closed.
func bigPlace(b *testing.B, be backend, n int) string {
	b.Helper()
	benchDirOnce.Do(func() {
		var err error
		if benchDir, err = os.MkdirTemp("", "ledger-bench-"); err != nil {
			b.Fatal(err)
		}
	})
	id := fmt.Sprintf("%s-%d", be.name, n)
	if p, ok := benchFiles.Load(id); ok {
		return p.(string)
	}
	place := filepath.Join(benchDir, fmt.Sprintf("ledger-%d.db", n))
	if be.name != sqliteBackend.name {
		place = be.place(b)
	}
	l, err := be.open(context.Background(), place, Options{})
	if err != nil {
		b.Fatal(err)
	}
	// A fill that fails must not leave the ledger locked for the next
	// benchmark, whose error would hide this one.
	b.Cleanup(func() { l.Close() })
	start := time.Now()
	fill(b, l, n)
	b.Logf("built a %s ledger of %d entries in %v", be.name, n, time.Since(start).Round(time.Millisecond))
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	benchFiles.Store(id, place)
	return place
}

// BenchmarkPut measures durable writes from 4, 8 and 64 concurrent
// callers, as the pipeline's workers make them: each Put returns after
// its transaction's fsync; group commit puts the callers that wait
// together into one transaction.
func BenchmarkPut(b *testing.B) { forEachBackendB(b, benchmarkPut) }

func benchmarkPut(b *testing.B, be backend) {
	for _, callers := range []int{4, 8, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			l := be.temp(b)
			var n atomic.Int64
			b.SetParallelism(max(1, callers/runtimeProcs()))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := l.Put(context.Background(), benchEntry(int(n.Add(1)))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
		})
	}
}

// BenchmarkPutAll measures one recorder goroutine writing lists of 100.
func BenchmarkPutAll(b *testing.B) { forEachBackendB(b, benchmarkPutAll) }

func benchmarkPutAll(b *testing.B, be backend) {
	l := be.temp(b)
	es := make([]pipeline.Entry, 100)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for i := range es {
			es[i] = benchEntry(n)
			n++
		}
		if err := l.PutAll(context.Background(), es); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "puts/s")
}

// BenchmarkPutSerial measures one caller alone: one fsync per Put.
func BenchmarkPutSerial(b *testing.B) { forEachBackendB(b, benchmarkPutSerial) }

func benchmarkPutSerial(b *testing.B, be backend) {
	l := be.temp(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := l.Put(context.Background(), benchEntry(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
}

const benchSize = 200000

// BenchmarkGet measures lookups of random keys in a ledger of 200,000
// entries through SQL, from one caller and from 2×GOMAXPROCS callers.
func BenchmarkGet(b *testing.B) { forEachBackendB(b, benchmarkGet) }

func benchmarkGet(b *testing.B, be backend) {
	b.Run("serial", func(b *testing.B) {
		l := bigLedger(b, be, benchSize)
		r := rand.New(rand.NewPCG(1, 2))
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, err := l.Get(context.Background(), benchKey(r.IntN(benchSize))); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		l := bigLedger(b, be, benchSize)
		b.SetParallelism(2)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			r := rand.New(rand.NewPCG(rand.Uint64(), 2))
			for pb.Next() {
				if _, ok, err := l.Get(context.Background(), benchKey(r.IntN(benchSize))); err != nil || !ok {
					b.Error(ok, err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
	})
}

// BenchmarkSettled measures the rerun question, "final with this
// payload?", answered from the in-memory index (loaded before timing).
func BenchmarkSettled(b *testing.B) { forEachBackendB(b, benchmarkSettled) }

func benchmarkSettled(b *testing.B, be backend) {
	l := bigLedger(b, be, benchSize)
	if _, _, err := l.Settled(context.Background(), benchKey(0), benchPayload(0)); err != nil {
		b.Fatal(err)
	}
	keys := make([]pipeline.Key, 4096)
	payloads := make([]string, len(keys))
	for i := range keys {
		j := rand.IntN(benchSize)
		keys[i], payloads[i] = benchKey(j), benchPayload(j)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		j := i % len(keys)
		if _, ok, err := l.Settled(context.Background(), keys[j], payloads[j]); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkObjectDone measures the processed-object check a rerun makes
// for every object.
func BenchmarkObjectDone(b *testing.B) { forEachBackendB(b, benchmarkObjectDone) }

func benchmarkObjectDone(b *testing.B, be backend) {
	l := be.temp(b)
	const objects = 1000
	for i := range objects {
		obj := pipeline.Object{Key: fmt.Sprintf("s3://bucket/exports/2026-01-%02d/orders-%04d.csv", i%28+1, i), ETag: fmt.Sprintf(`"%032x"`, i), Size: int64(i)}
		if err := l.MarkObjectDone(context.Background(), obj, "r1"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		j := i % objects
		obj := pipeline.Object{Key: fmt.Sprintf("s3://bucket/exports/2026-01-%02d/orders-%04d.csv", j%28+1, j), ETag: fmt.Sprintf(`"%032x"`, j), Size: int64(j)}
		if ok, err := l.ObjectDone(context.Background(), obj); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkRerun1M is issue 5's rerun with --all over a million accepted
// orders: one Settled per order, in a fresh process's order (index load
// included), and the rare Get. It reports the seconds for the million.
func BenchmarkRerun1M(b *testing.B) { forEachBackendB(b, benchmarkRerun1M) }

func benchmarkRerun1M(b *testing.B, be backend) {
	const n = 1000000
	place := bigPlace(b, be, n)
	keys := make([]pipeline.Key, n)
	payloads := make([]string, n)
	for j, i := range rand.Perm(n) {
		keys[j], payloads[j] = benchKey(i), benchPayload(i)
	}
	b.ResetTimer()
	for b.Loop() {
		l, err := be.open(context.Background(), place, Options{})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, _, err := l.Settled(context.Background(), keys[0], payloads[0]); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/index-load")
		for i, k := range keys {
			if _, ok, err := l.Settled(context.Background(), k, payloads[i]); err != nil || !ok {
				b.Fatal(k, ok, err)
			}
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/1M-lookups")
		l.Close()
	}
}

// BenchmarkWriteCSV measures the results file, through gocsv.
func BenchmarkWriteCSV(b *testing.B) {
	es := make([]pipeline.Entry, 10000)
	for i := range es {
		es[i] = benchEntry(i)
	}
	b.ReportAllocs()
	for b.Loop() {
		w := NewCSVWriter(discard{})
		for _, e := range es {
			if err := w.Write(e); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(es))/b.Elapsed().Seconds(), "lines/s")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
