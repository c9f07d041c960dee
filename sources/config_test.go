package sources

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestConfigDecodes(t *testing.T) {
	const doc = `
location: s3://bucket/exports/dt=*/orders_*.csv
format: csv
csv:
  delimiter: ";"
  quote: '"'
  lazy_quotes: true
  max_field_bytes: 2048
  max_record_bytes: 4096
  max_inflate_ratio: 200
since: 2026-11-01
until: 2026-11-30T12:00:00Z
date_from: key
key_date_pattern: 'dt=(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})'
s3:
  region: eu-west-1
  endpoint: http://127.0.0.1:9000
  path_style: true
  profile: exports
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Location: "s3://bucket/exports/dt=*/orders_*.csv", Format: "csv",
		CSV:   CSVConfig{Delimiter: ";", Quote: `"`, LazyQuotes: true, MaxFieldBytes: 2048, MaxRecordBytes: 4096, MaxInflateRatio: 200},
		Since: "2026-11-01", Until: "2026-11-30T12:00:00Z", DateFrom: "key",
		KeyDatePattern: `dt=(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})`,
		S3:             S3Config{Region: "eu-west-1", Endpoint: "http://127.0.0.1:9000", PathStyle: true, Profile: "exports"},
	}
	if c != want {
		t.Fatalf("decoded %+v\nwant %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	set, _ := c.compile()
	if set.s3.bucket != "bucket" || set.s3.prefix != "exports/dt=" || set.s3.glob != "exports/dt=*/orders_*.csv" {
		t.Fatalf("s3 location %+v", set.s3)
	}
	if set.maxField != 2048 || set.maxRecord != 4096 || set.inflateRatio != 200 {
		t.Fatalf("limits: field %d, record %d, inflate ratio %d", set.maxField, set.maxRecord, set.inflateRatio)
	}
	if !set.since.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) || !set.until.Equal(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("window %v..%v", set.since, set.until)
	}

	dec = yaml.NewDecoder(strings.NewReader("location: x\ncsv:\n  delimeter: ';'\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&Config{}); err == nil {
		t.Fatal("unknown key accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		err  string // "" when valid
	}{
		{"local file", Config{Location: "exports/orders.csv"}, ""},
		{"local glob", Config{Location: "exports/2026-*/orders_*.csv"}, ""},
		{"tab word", Config{Location: "x", CSV: CSVConfig{Delimiter: "tab"}}, ""},
		{"unicode delimiter", Config{Location: "x", CSV: CSVConfig{Delimiter: "¦"}}, ""},
		{"until only date", Config{Location: "x", Until: "2026-11-30"}, ""},
		{"missing location", Config{}, "source.location: required"},
		{"other scheme", Config{Location: "gs://bucket/x"}, "source.location: \"gs://bucket/x\": only local paths and s3:// URLs"},
		{"bad local glob", Config{Location: "exports/[a"}, "source.location: bad glob"},
		{"s3 without bucket", Config{Location: "s3:///x"}, "source.location: \"s3:///x\": want s3://bucket/prefix/"},
		{"s3 bad glob", Config{Location: "s3://b/x/[a"}, "source.location: bad glob"},
		{"format", Config{Location: "x", Format: "json"}, "source.format: \"json\""},
		{"delimiter two chars", Config{Location: "x", CSV: CSVConfig{Delimiter: ";;"}}, "source.csv.delimiter"},
		{"delimiter quote", Config{Location: "x", CSV: CSVConfig{Delimiter: `"`}}, "source.csv.delimiter"},
		{"delimiter newline", Config{Location: "x", CSV: CSVConfig{Delimiter: "\n"}}, "source.csv.delimiter"},
		{"quote", Config{Location: "x", CSV: CSVConfig{Quote: "'"}}, "source.csv.quote: \"'\": only '\"' is supported"},
		{"max field", Config{Location: "x", CSV: CSVConfig{MaxFieldBytes: -1}}, "source.csv.max_field_bytes: must be >= 0"},
		{"max record", Config{Location: "x", CSV: CSVConfig{MaxRecordBytes: -1}}, "source.csv.max_record_bytes: must be >= 0"},
		{"small max record", Config{Location: "x", CSV: CSVConfig{MaxRecordBytes: 10}}, ""},
		{"max record under max field", Config{Location: "x", CSV: CSVConfig{MaxFieldBytes: 2048, MaxRecordBytes: 1024}},
			"source.csv.max_record_bytes: 1024 is less than max_field_bytes 2048"},
		{"max inflate ratio", Config{Location: "x", CSV: CSVConfig{MaxInflateRatio: -1}}, "source.csv.max_inflate_ratio: must be >= 0"},
		{"since", Config{Location: "x", Since: "yesterday"}, "source.since: \"yesterday\""},
		{"until", Config{Location: "x", Until: "2026-13-01"}, "source.until"},
		{"empty window", Config{Location: "x", Since: "2026-11-02", Until: "2026-11-01"}, "source.until: 2026-11-01 is not after since"},
		{"date from", Config{Location: "x", DateFrom: "ctime"}, "source.date_from: \"ctime\""},
		{"pattern syntax", Config{Location: "x", KeyDatePattern: "("}, "source.key_date_pattern"},
		{"pattern groups", Config{Location: "x", KeyDatePattern: `(\d{4})-(\d{2})-(\d{2})`}, "needs the named groups year, month and day"},
		{"endpoint", Config{Location: "s3://b/", S3: S3Config{Endpoint: "localhost:9000"}}, "source.s3.endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("Validate = %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("Validate = %v, want %q", err, tc.err)
			}
			if _, nerr := New(t.Context(), tc.cfg); (nerr == nil) != (err == nil) {
				t.Fatalf("New = %v, Validate = %v", nerr, err)
			}
		})
	}
}

// TestConfigLimitDefaults checks the CSV limits a Config leaves unset:
// the record limit follows a larger field limit.
func TestConfigLimitDefaults(t *testing.T) {
	for _, tc := range []struct {
		csv                  CSVConfig
		field, record, ratio int
	}{
		{CSVConfig{}, DefaultMaxFieldBytes, DefaultMaxRecordBytes, DefaultMaxInflateRatio},
		{CSVConfig{MaxFieldBytes: 4 << 20}, 4 << 20, 4 << 20, DefaultMaxInflateRatio},
		{CSVConfig{MaxFieldBytes: 1 << 10}, 1 << 10, DefaultMaxRecordBytes, DefaultMaxInflateRatio},
		{CSVConfig{MaxRecordBytes: 1 << 10}, DefaultMaxFieldBytes, 1 << 10, DefaultMaxInflateRatio},
		{CSVConfig{MaxInflateRatio: 1000}, DefaultMaxFieldBytes, DefaultMaxRecordBytes, 1000},
	} {
		set, err := Config{Location: "x", CSV: tc.csv}.compile()
		if err != nil {
			t.Fatal(err)
		}
		if set.maxField != tc.field || set.maxRecord != tc.record || set.inflateRatio != int64(tc.ratio) || set.inflateFloor != 64<<20 {
			t.Errorf("%+v: field %d, record %d, inflate ratio %d, floor %d; want %d, %d, %d, 64 MiB",
				tc.csv, set.maxField, set.maxRecord, set.inflateRatio, set.inflateFloor, tc.field, tc.record, tc.ratio)
		}
	}
}

func TestKeyDate(t *testing.T) {
	def, _ := compileKeyDate(DefaultKeyDatePattern)
	custom, _ := compileKeyDate(`orders_(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})\.csv$`)
	tests := []struct {
		key  string
		re   string
		want string // "" when no date
	}{
		{"s3://b/exports/dt=2026-11-22/orders.csv", "", "2026-11-22"},
		{"exports/date=2026-01-05/part-0.parquet", "", "2026-01-05"},
		{"s3://b/exports/2026/11/22/orders.csv", "", "2026-11-22"},
		{"2026/02/28/orders.csv", "", "2026-02-28"},
		{"exports/dt=2026-02-30/orders.csv", "", ""},
		{"exports/dt=2026-13-01/orders.csv", "", ""},
		{"exports/xdt=2026-11-22/orders.csv", "", ""},
		{"exports/orders.csv", "", ""},
		{"exports/2026/11/orders.csv", "", ""},
		{"exports/orders_20261122.csv", "custom", "2026-11-22"},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			re := def
			if tc.re == "custom" {
				re = custom
			}
			d, ok := keyDate(re, tc.key)
			got := ""
			if ok {
				got = d.Format(time.DateOnly)
			}
			if got != tc.want {
				t.Fatalf("keyDate = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestKeyDateMissingFailsTheListing(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/dt=2026-11-22/orders.csv", []byte("a\n1\n"))
	writeFile(t, dir+"/orders.csv", []byte("a\n1\n"))
	src := newSource(t, Config{Location: dir, DateFrom: DateFromKey, Since: "2026-11-01"})
	_, err := src.Objects(t.Context())
	if err == nil || !strings.Contains(err.Error(), dir+"/orders.csv: no date in the key") {
		t.Fatalf("Objects = %v", err)
	}
}

func TestS3NeedsRegion(t *testing.T) {
	s3Env(t)
	_, err := New(t.Context(), Config{Location: "s3://bucket/exports/"})
	if err == nil || !strings.Contains(err.Error(), "s3: no region: set source.s3.region, AWS_REGION") {
		t.Fatalf("New = %v", err)
	}
	if _, err := New(t.Context(), Config{Location: "s3://bucket/exports/", S3: S3Config{Region: "eu-west-1"}}); err != nil {
		t.Fatalf("New with a region = %v", err)
	}
	t.Setenv("AWS_REGION", "eu-central-1")
	if _, err := New(t.Context(), Config{Location: "s3://bucket/exports/"}); err != nil {
		t.Fatalf("New with AWS_REGION = %v", err)
	}
}
