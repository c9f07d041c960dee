package sources

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"convpipe/pipeline"
	"convpipe/sources/s3test"
)

func TestMain(m *testing.M) {
	code := m.Run()
	s3test.StopShared()
	os.Exit(code)
}

// orderLine is the conformance data set's row, as Parquet.
type orderLine struct {
	OrderID   string  `parquet:"order_id"`
	Line      int32   `parquet:"line"`
	SKU       string  `parquet:"sku,dict"`
	Quantity  int64   `parquet:"quantity"`
	Price     int64   `parquet:"price,decimal(2:12)"`
	Paid      bool    `parquet:"paid"`
	OrderedAt int64   `parquet:"ordered_at,timestamp(millisecond:utc)"`
	Note      *string `parquet:"note,optional"`
}

var orderHeader = []string{"order_id", "line", "sku", "quantity", "price", "paid", "ordered_at", "note"}

func orderLines(from, to int) []orderLine {
	base := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	var out []orderLine
	for i := from; i < to; i++ {
		l := orderLine{
			OrderID: fmt.Sprintf("ORD-%05d", i/3), Line: int32(i%3 + 1), SKU: fmt.Sprintf("SKU-%d", i%7),
			Quantity: int64(i%4 + 1), Price: int64(i*137%10000 - 500), Paid: i%2 == 0,
			OrderedAt: base.Add(time.Duration(i) * 17 * time.Minute).Add(time.Duration(i%3) * 250 * time.Millisecond).UnixMilli(),
		}
		switch i % 4 {
		case 1:
			l.Note = ptr(fmt.Sprintf("gift, wrap \"%d\"", i))
		case 2:
			l.Note = ptr("Zoë's order")
		case 3:
			l.Note = ptr("") // empty, not null
		}
		out = append(out, l)
	}
	return out
}

// values renders l as every format must deliver it.
func (l orderLine) values() ([]string, []bool) {
	note, null := "", l.Note == nil
	if !null {
		note = *l.Note
	}
	return []string{l.OrderID, fmt.Sprint(l.Line), l.SKU, fmt.Sprint(l.Quantity), formatDecimalInt(l.Price, 2),
		fmt.Sprint(l.Paid), time.UnixMilli(l.OrderedAt).UTC().Format(time.RFC3339Nano), note}, []bool{7: null}
}

func orderCSV(lines []orderLine) []byte {
	var b bytes.Buffer
	b.WriteString(strings.Join(orderHeader, ",") + "\r\n")
	for _, l := range lines {
		v, _ := l.values()
		for i, s := range v {
			if strings.ContainsAny(s, ",\"") {
				v[i] = `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
			}
		}
		b.WriteString(strings.Join(v, ",") + "\r\n")
	}
	return b.Bytes()
}

// formatCase is one format of the conformance suite.
type formatCase struct {
	name, ext string
	encode    func(testing.TB, []orderLine) []byte
	// firstLine is the Line of the first row: 2 for CSV (after the
	// header), 1 for Parquet.
	firstLine int64
	nulls     bool
}

var formatCases = []formatCase{
	{"csv", ".csv", func(_ testing.TB, l []orderLine) []byte { return orderCSV(l) }, 2, false},
	{"csv.gz", ".csv.gz", func(tb testing.TB, l []orderLine) []byte { return gzipBytes(tb, orderCSV(l)) }, 2, false},
	{"parquet", ".parquet", func(tb testing.TB, l []orderLine) []byte { return parquetBytes(tb, l, 25) }, 1, true},
}

// store is where a conformance run puts its objects.
type fixtureStore interface {
	// location is the Config.Location of rel ("exports/", a glob, a key).
	location(rel string) string
	// key is the pipeline.Object.Key of the object at rel.
	key(rel string) string
	put(tb testing.TB, rel string, data []byte)
	config(c Config) Config
}

type localFixture struct{ root string }

func (f localFixture) location(rel string) string { return filepath.Join(f.root, rel) }
func (f localFixture) key(rel string) string      { return filepath.Join(f.root, rel) }
func (f localFixture) config(c Config) Config     { return c }
func (f localFixture) put(tb testing.TB, rel string, data []byte) {
	p := filepath.Join(f.root, rel)
	old, err := os.Stat(p)
	writeFile(tb, p, data)
	if err == nil { // make a rewrite visible whatever the clock's resolution
		os.Chtimes(p, time.Now(), old.ModTime().Add(time.Second))
	}
}

var bucketSeq atomic.Int64

type s3Fixture struct {
	srv    *s3test.Server
	bucket string
}

func newS3Fixture(t *testing.T) s3Fixture {
	srv := s3test.Shared(t)
	s3Env(t)
	f := s3Fixture{srv: srv, bucket: fmt.Sprintf("bucket-%d", bucketSeq.Add(1))}
	if err := srv.CreateBucket(t.Context(), f.bucket); err != nil {
		t.Fatal(err)
	}
	return f
}

// s3Env points the AWS SDK's standard chain at the test server's
// credentials, and nowhere else (no shared files, no instance metadata).
func s3Env(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func (f s3Fixture) location(rel string) string { return "s3://" + f.bucket + "/" + rel }
func (f s3Fixture) key(rel string) string      { return "s3://" + f.bucket + "/" + rel }
func (f s3Fixture) config(c Config) Config {
	c.S3 = S3Config{Endpoint: f.srv.Endpoint, PathStyle: true, Region: s3test.Region}
	return c
}
func (f s3Fixture) put(tb testing.TB, rel string, data []byte) {
	if err := f.srv.Put(tb.Context(), f.bucket, rel, bytes.NewReader(data)); err != nil {
		tb.Fatal(err)
	}
}

// TestConformance runs the same suite on every store and format.
func TestConformance(t *testing.T) {
	stores := []struct {
		name string
		new  func(*testing.T) fixtureStore
	}{
		{"local", func(t *testing.T) fixtureStore { return localFixture{root: t.TempDir()} }},
		{"s3", func(t *testing.T) fixtureStore { return newS3Fixture(t) }},
	}
	for _, st := range stores {
		for _, fc := range formatCases {
			t.Run(st.name+"/"+fc.name, func(t *testing.T) {
				conformance(t, st.new(t), fc)
			})
		}
	}
}

func conformance(t *testing.T, st fixtureStore, fc formatCase) {
	day1, day2 := orderLines(0, 40), orderLines(40, 100)
	files := map[string][]orderLine{
		"exports/dt=2026-11-21/orders" + fc.ext: day1,
		"exports/dt=2026-11-22/orders" + fc.ext: day2,
		"exports/dt=2026-11-22/empty" + fc.ext:  nil,
	}
	sizes := map[string]int64{}
	for rel, lines := range files {
		data := fc.encode(t, lines)
		sizes[rel] = int64(len(data))
		st.put(t, rel, data)
	}
	// Not part of the export: markers, hidden files, other extensions.
	st.put(t, "exports/_SUCCESS", nil)
	st.put(t, "exports/dt=2026-11-22/.orders"+fc.ext+".tmp", []byte("partial"))
	st.put(t, "exports/dt=2026-11-22/_orders"+fc.ext, []byte("x"))
	st.put(t, "exports/readme.txt", []byte("hello"))
	st.put(t, "exports/_temporary/0/orders"+fc.ext, fc.encode(t, day1))
	st.put(t, "other/orders"+fc.ext, fc.encode(t, day1))

	keys := func(objs []pipeline.Object) []string {
		var k []string
		for _, o := range objs {
			k = append(k, o.Key)
		}
		return k
	}
	all := []string{
		st.key("exports/dt=2026-11-21/orders" + fc.ext),
		st.key("exports/dt=2026-11-22/empty" + fc.ext),
		st.key("exports/dt=2026-11-22/orders" + fc.ext),
	}
	soon := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	selections := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"folder", Config{Location: st.location("exports/")}, all},
		{"folder without slash", Config{Location: strings.TrimSuffix(st.location("exports/"), "/")}, all},
		{"glob", Config{Location: st.location("exports/dt=2026-11-2*/orders*")}, []string{all[0], all[2]}},
		{"glob skips hidden names", Config{Location: st.location("exports/dt=2026-11-22/*")}, all[1:]},
		{"glob naming hidden names", Config{Location: st.location("exports/dt=2026-11-22/_*")}, []string{st.key("exports/dt=2026-11-22/_orders" + fc.ext)}},
		{"one object", Config{Location: st.location("exports/dt=2026-11-21/orders" + fc.ext)}, all[:1]},
		{"key date since", Config{Location: st.location("exports/"), Since: "2026-11-22", DateFrom: DateFromKey}, all[1:]},
		{"key date until", Config{Location: st.location("exports/"), Until: "2026-11-21", DateFrom: DateFromKey}, all[:1]},
		{"key date pattern", Config{Location: st.location("exports/"), Since: "2026-11-22T12:00:00Z", DateFrom: DateFromKey,
			KeyDatePattern: `dt=(?P<year>\d+)-(?P<month>\d+)-(?P<day>\d+)`}, all[1:]},
		{"modtime until", Config{Location: st.location("exports/"), Until: soon}, all},
		{"modtime since", Config{Location: st.location("exports/"), Since: soon}, nil},
		{"nothing there", Config{Location: st.location("exports/dt=2030-*/*")}, nil},
	}
	for _, sel := range selections {
		t.Run("select "+sel.name, func(t *testing.T) {
			src := newSource(t, st.config(sel.cfg))
			objs, err := src.Objects(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(objs); !slices.Equal(got, sel.want) {
				t.Fatalf("Objects = %q\nwant %q", got, sel.want)
			}
		})
	}

	src := newSource(t, st.config(Config{Location: st.location("exports/")}))
	objs, err := src.Objects(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		rel := strings.TrimPrefix(strings.TrimPrefix(o.Key, st.key("")), "/")
		if o.Size != sizes[rel] {
			t.Errorf("%s: size %d, want %d", o.Key, o.Size, sizes[rel])
		}
		if o.ETag == "" || o.Size <= 0 || o.ModTime.IsZero() || time.Since(o.ModTime) > time.Hour {
			t.Errorf("%s: incomplete object %+v", o.Key, o)
		}
	}

	t.Run("rows", func(t *testing.T) {
		for _, o := range objs {
			rel := strings.TrimPrefix(strings.TrimPrefix(o.Key, st.key("")), "/")
			r, err := src.Open(t.Context(), o)
			if err != nil {
				t.Fatalf("Open %s: %v", o.Key, err)
			}
			if got := r.Header().Names(); !slices.Equal(got, orderHeader) {
				t.Fatalf("%s: header %q, want %q", o.Key, got, orderHeader)
			}
			res := readAll(t, r)
			if res.fatal != nil || len(res.errs) > 0 {
				t.Fatalf("%s: errs %v, fatal %v", o.Key, res.errs, res.fatal)
			}
			want := files[rel]
			if len(res.rows) != len(want) {
				t.Fatalf("%s: %d rows, want %d", o.Key, len(res.rows), len(want))
			}
			for i, row := range res.rows {
				vals, nulls := want[i].values()
				if !slices.Equal(row.Values, vals) {
					t.Fatalf("%s row %d: %q\nwant %q", o.Key, i, row.Values, vals)
				}
				if fc.nulls && !slices.Equal(row.Nulls, nulls) || !fc.nulls && row.Nulls != nil {
					t.Fatalf("%s row %d: nulls %v, want %v", o.Key, i, row.Nulls, nulls)
				}
				if ref := row.Ref(); ref != (pipeline.Ref{Object: o.Key, Line: fc.firstLine + int64(i)}) {
					t.Fatalf("%s row %d: ref %v", o.Key, i, ref)
				}
				if *row.Object != o {
					t.Fatalf("%s row %d: object %+v, want %+v", o.Key, i, *row.Object, o)
				}
			}
			if _, err := r.Next(); !errors.Is(err, io.EOF) && !strings.Contains(fmt.Sprint(err), "closed") {
				t.Fatalf("Next after the end and Close = %v", err)
			}
			if err := r.Close(); err != nil {
				t.Fatalf("second Close = %v", err)
			}
		}
	})

	t.Run("concurrent readers", func(t *testing.T) {
		a, err := src.Open(t.Context(), objs[0])
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := src.Open(t.Context(), objs[2])
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		for i := range 40 {
			ra, errA := a.Next()
			rb, errB := b.Next()
			if errA != nil || errB != nil || ra.Values[0] != day1[i].OrderID || rb.Values[0] != day2[i].OrderID {
				t.Fatalf("row %d: %v %v / %v %v", i, ra.Values, errA, rb.Values, errB)
			}
		}
	})

	t.Run("missing object", func(t *testing.T) {
		missing := objs[0]
		missing.Key = st.key("exports/dt=2026-11-21/missing" + fc.ext)
		if r, err := src.Open(t.Context(), missing); err == nil {
			r.Close()
			t.Fatal("Open of a missing object succeeded")
		} else if !strings.Contains(err.Error(), "missing"+fc.ext) {
			t.Fatalf("error does not name the object: %v", err)
		}
	})

	t.Run("changed object", func(t *testing.T) {
		old := objs[1] // the empty one
		st.put(t, "exports/dt=2026-11-22/empty"+fc.ext, fc.encode(t, day1[:3]))
		objs2, err := src.Objects(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if objs2[1].Key != old.Key || objs2[1].ETag == old.ETag {
			t.Fatalf("ETag did not change: %+v, was %+v", objs2[1], old)
		}
		if objs2[0].ETag != objs[0].ETag {
			t.Fatalf("unchanged object's ETag changed: %+v, was %+v", objs2[0], objs[0])
		}
		r, err := src.Open(t.Context(), old)
		if err == nil {
			r.Close()
			t.Fatal("Open of a changed object succeeded")
		}
		if !errors.Is(err, ErrChanged) {
			t.Fatalf("Open of a changed object = %v, want ErrChanged", err)
		}
		r, err = src.Open(t.Context(), objs2[1])
		if err != nil {
			t.Fatal(err)
		}
		if res := readAll(t, r); len(res.rows) != 3 || res.fatal != nil {
			t.Fatalf("new version: %d rows, %v", len(res.rows), res.fatal)
		}
	})
}
