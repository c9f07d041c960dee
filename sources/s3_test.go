package sources

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"convpipe/pipeline"
	"convpipe/sources/s3test"
)

func TestS3ListingMoreThanAPage(t *testing.T) {
	f := newS3Fixture(t)
	const n = 1100 // ListObjectsV2 returns at most 1,000 keys a page
	keys := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range 8 {
		wg.Go(func() {
			for i := range keys {
				key := fmt.Sprintf("many/dt=2026-11-%02d/part-%04d.csv", i%28+1, i)
				if err := f.srv.Put(t.Context(), f.bucket, key, strings.NewReader("a\n1\n")); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		keys <- i
	}
	close(keys)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		cfg  Config
		want int
	}{
		{"prefix", Config{Location: f.location("many/")}, n},
		{"glob", Config{Location: f.location("many/*/part-1*.csv")}, 100},
		{"key dates", Config{Location: f.location("many/"), DateFrom: DateFromKey, Since: "2026-11-27"}, 78},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := newSource(t, f.config(tc.cfg)).Objects(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) != tc.want {
				t.Fatalf("%d objects, want %d", len(objs), tc.want)
			}
			if !slices.IsSortedFunc(objs, func(a, b pipeline.Object) int { return strings.Compare(a.Key, b.Key) }) {
				t.Fatal("objects are not sorted by key")
			}
			seen := map[string]bool{}
			for _, o := range objs {
				if seen[o.Key] || o.Size != 4 || o.ETag == "" {
					t.Fatalf("bad or repeated object %+v", o)
				}
				seen[o.Key] = true
			}
		})
	}
}

// bigCSV writes a CSV of about size bytes to a temporary file and returns
// its path and row count.
func bigCSV(t *testing.T, size int) (string, int) {
	p := filepath.Join(t.TempDir(), "big.csv")
	fh, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(fh)
	fmt.Fprintln(w, "order_id,line,sku,quantity,price,note")
	written, rows := 0, 0
	for written < size {
		n, _ := fmt.Fprintf(w, "ORD-%08d,%d,SKU-%d,%d,%d.%02d,%s\n", rows/3, rows%3+1, rows%97, rows%5+1, rows%1000, rows%100,
			strings.Repeat("n", rows%61))
		written += n
		rows++
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	return p, rows
}

func TestS3LargeObjectInBoundedMemory(t *testing.T) {
	f := newS3Fixture(t)
	const size = 32 << 20
	p, rows := bigCSV(t, size)
	fh, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if err := f.srv.Put(t.Context(), f.bucket, "big/orders.csv", fh); err != nil {
		t.Fatal(err)
	}
	src := newSource(t, f.config(Config{Location: f.location("big/")}))
	objs, err := src.Objects(t.Context())
	if err != nil || len(objs) != 1 || objs[0].Size < size {
		t.Fatalf("Objects = %+v, %v", objs, err)
	}

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	r, err := src.Open(t.Context(), objs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for {
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("ORD-%08d", n/3); row.Values[0] != want || row.Line != int64(n+2) {
			t.Fatalf("row %d: %v line %d", n, row.Values, row.Line)
		}
		n++
		if n%20000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	if n != rows {
		t.Fatalf("%d rows, want %d", n, rows)
	}
	// Streaming keeps the heap far below the object's size.
	if grown := int64(peak) - int64(base); grown > size/4 {
		t.Fatalf("heap grew by %d MiB reading a %d MiB object", grown>>20, size>>20)
	}
	t.Logf("%d rows; heap grew by at most %d KiB", n, (int64(peak)-int64(base))>>10)
}

func TestS3ETagChange(t *testing.T) {
	f := newS3Fixture(t)
	f.put(t, "x/orders.csv", []byte("a\n1\n"))
	src := newSource(t, f.config(Config{Location: f.location("x/")}))
	before, err := src.Objects(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	f.put(t, "x/orders.csv", []byte("a\n2\n")) // same size, new content
	after, err := src.Objects(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 1 || len(after) != 1 || before[0].ETag == after[0].ETag || before[0].Size != after[0].Size {
		t.Fatalf("before %+v, after %+v: want one object with a new ETag", before, after)
	}
	if _, err := src.Open(t.Context(), before[0]); !errors.Is(err, ErrChanged) {
		t.Fatalf("Open(old version) = %v, want ErrChanged", err)
	}
	// An Object without an ETag reads the current version.
	r, err := src.Open(t.Context(), pipeline.Object{Key: after[0].Key})
	if err != nil {
		t.Fatal(err)
	}
	if res := readAll(t, r); len(res.rows) != 1 || res.rows[0].Values[0] != "2" {
		t.Fatalf("read %+v", res)
	}
}

func TestS3WrongCredentials(t *testing.T) {
	f := newS3Fixture(t)
	f.put(t, "x/orders.csv", []byte("a\n1\n"))
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
	src := newSource(t, f.config(Config{Location: f.location("x/")}))
	_, err := src.Objects(t.Context())
	if err == nil {
		t.Fatal("Objects with a wrong secret succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"s3: list s3://" + f.bucket + "/x/", "access denied, check the credentials", "403"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "not-the-secret") {
		t.Errorf("error leaks the secret: %q", msg)
	}
	_, err = src.Open(t.Context(), pipeline.Object{Key: f.key("x/orders.csv"), ETag: "x", Size: 4})
	if err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("Open with a wrong secret = %v", err)
	}
}

func TestS3MissingBucket(t *testing.T) {
	f := newS3Fixture(t)
	src := newSource(t, f.config(Config{Location: "s3://no-such-bucket-here/x/"}))
	if _, err := src.Objects(t.Context()); err == nil || !strings.Contains(err.Error(), "no such bucket") {
		t.Fatalf("Objects = %v", err)
	}
}

// TestS3ResumeAfterCuts reads objects through a proxy that cuts the first
// connections mid-response: the reader resumes each time where it was.
func TestS3ResumeAfterCuts(t *testing.T) {
	f := newS3Fixture(t)
	csvPath, csvRows := bigCSV(t, 1<<20)
	csvData, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	f.put(t, "cut/orders.csv", csvData)
	f.put(t, "cut/orders.csv.gz", gzipBytes(t, csvData))
	const pqRows = 30000
	f.put(t, "cut/orders.parquet", parquetBytes(t, wideRows(pqRows), 10000))

	proxy, err := s3test.NewProxy(strings.TrimPrefix(f.srv.Endpoint, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	objs, err := newSource(t, f.config(Config{Location: f.location("cut/")})).Objects(t.Context())
	if err != nil || len(objs) != 3 {
		t.Fatalf("Objects = %v, %v", objs, err)
	}
	cfg := f.config(Config{Location: f.location("cut/")})
	cfg.S3.Endpoint = proxy.Endpoint

	tests := []struct {
		obj   pipeline.Object
		rows  int
		cuts  int
		after int64
	}{
		{objs[0], csvRows, 3, 48 << 10},
		{objs[1], csvRows, 2, 48 << 10},
		{objs[2], pqRows, 3, 16 << 10},
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.obj.Key), func(t *testing.T) {
			src := newSource(t, cfg) // a new client: no idle connections to reuse
			before, rangesBefore := proxy.Cuts(), proxy.RangeRequests()
			proxy.CutNext(tc.cuts, tc.after)
			defer proxy.CutNext(0, 0)
			r, err := src.Open(t.Context(), tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			res := readAll(t, r)
			if res.fatal != nil || len(res.errs) > 0 || len(res.rows) != tc.rows {
				t.Fatalf("%d rows, errs %v, fatal %v", len(res.rows), res.errs, res.fatal)
			}
			for i, row := range res.rows {
				if row.Line != int64(i)+res.rows[0].Line {
					t.Fatalf("row %d has line %d: rows lost or repeated", i, row.Line)
				}
			}
			// A designated connection the HTTP client dials but never uses
			// is not cut, so count at least one.
			if got := proxy.Cuts() - before; got < 1 || got > tc.cuts {
				t.Fatalf("%d connections cut, want 1 to %d", got, tc.cuts)
			}
			if got := proxy.RangeRequests() - rangesBefore; got < proxy.Cuts()-before {
				t.Fatalf("%d range requests for %d cuts: the reads did not resume", got, proxy.Cuts()-before)
			}
		})
	}

}

func TestS3ObjectOutsideLocation(t *testing.T) {
	f := newS3Fixture(t)
	src := newSource(t, f.config(Config{Location: f.location("x/")}))
	_, err := src.Open(t.Context(), pipeline.Object{Key: "s3://" + f.bucket + ".csv"})
	if err == nil || !strings.Contains(err.Error(), "is not an s3://bucket/key URL") {
		t.Fatalf("Open = %v", err)
	}
}
