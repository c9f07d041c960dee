package sources

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Format names how an object's bytes become rows.
const (
	// FormatCSV is comma-separated (or otherwise delimited) text with a
	// header row, plain or gzip-compressed.
	FormatCSV = "csv"
	// FormatParquet is Apache Parquet.
	FormatParquet = "parquet"
)

// Where the date of an object is taken from for Since and Until.
const (
	// DateFromModTime compares the object's modification time.
	DateFromModTime = "modtime"
	// DateFromKey compares the date found in the object's key by
	// KeyDatePattern.
	DateFromKey = "key"
)

// DefaultKeyDatePattern finds a date in keys such as
// "exports/dt=2026-11-22/orders.csv", "exports/date=2026-11-22/..." and
// "exports/2026/11/22/orders.csv".
const DefaultKeyDatePattern = `(?:^|/)(?:dt|date)=(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})(?:/|$)|(?:^|/)(?P<year>\d{4})/(?P<month>\d{2})/(?P<day>\d{2})(?:/|$)`

// DefaultMaxFieldBytes is the default limit on one CSV value.
const DefaultMaxFieldBytes = 1 << 20

// DefaultMaxRecordBytes is the default limit on one CSV record.
const DefaultMaxRecordBytes = 1 << 20

// DefaultMaxInflateRatio is the default limit on how many times its
// compressed size a gzip-compressed CSV object may inflate to. Order
// exports typically compress 5 to 15 times, and even very repetitive
// tabular text (sparse columns, repeated values) seldom passes 50 times;
// DEFLATE cannot exceed about 1,030 times, which only degenerate data
// (one byte over and over) approaches. 100 leaves a margin of twice that
// over real exports and stops a decompression bomb after 100 times its
// size; the 64 MiB floor spares small objects.
const DefaultMaxInflateRatio = 100

// inflateFloor is how many decompressed bytes any gzip object may have,
// whatever its ratio, so that small objects are never refused.
const inflateFloor = 64 << 20

// Config configures a Source: where the export lives, its format and which
// of its objects to read. It decodes from YAML (the "source" section).
//
// Credentials for S3 come only from the AWS SDK's standard chain
// (environment, shared profile, IAM role, web identity), never from here.
type Config struct {
	// Location is a local file, folder or glob ("exports/2026-*/orders_*.csv"),
	// or an S3 URL "s3://bucket/prefix/" whose key part may hold a glob.
	// A folder or prefix selects, recursively, the objects whose names end
	// in an extension of the format (".csv", ".csv.gz", ".parquet"),
	// leaving out names that start with "." or "_". A glob or a single
	// object selects every match. "*" does not match "/". The command
	// line's --source overrides it.
	Location string `yaml:"location"`
	// Format is "csv" or "parquet"; empty chooses by extension (".csv",
	// ".csv.gz", ".parquet"). Gzip-compressed CSV is recognised by its
	// content, whatever its name.
	Format string `yaml:"format"`
	// CSV configures the reading of CSV objects.
	CSV CSVConfig `yaml:"csv"`
	// Since, when set, selects objects dated at or after it: a date
	// ("2026-11-01", the start of that day in UTC) or an RFC 3339 time.
	Since string `yaml:"since"`
	// Until, when set, selects objects dated before it: a date (which
	// includes that whole day, UTC) or an RFC 3339 time (exclusive).
	Until string `yaml:"until"`
	// DateFrom says which date Since and Until compare: "modtime" (the
	// default) or "key" (the date KeyDatePattern finds in the key; an
	// object is selected when its day overlaps the window, and a key with
	// no date makes the listing fail).
	DateFrom string `yaml:"date_from"`
	// KeyDatePattern is a regular expression with the named groups year,
	// month and day that finds the date in a key. Empty means
	// DefaultKeyDatePattern. A name may occur in several alternatives.
	KeyDatePattern string `yaml:"key_date_pattern"`
	// S3 configures access to S3 and S3-compatible stores.
	S3 S3Config `yaml:"s3"`
}

// CSVConfig configures CSV reading.
type CSVConfig struct {
	// Delimiter separates fields: one character, or "auto" (the default):
	// each object's own, the one of ",", ";", tab and "|" that its header
	// line holds most often outside quotes (a comma when it holds none),
	// so that one run reads files of different dialects. "\t" (backslash
	// t) and "tab" mean a tab. With a delimiter set, a header of one
	// column that holds another of those four is a file error that names
	// it.
	Delimiter string `yaml:"delimiter"`
	// Encoding is the character encoding of the CSV objects: "utf-8" (the
	// default), "windows-1252" (also "cp1252"), "latin-1" (also
	// "iso-8859-1") or "utf-16" (the byte order mark tells the
	// endianness, else the NUL bytes do; "utf-16le" and "utf-16be" fix
	// it). A byte order mark decides, whatever this says: a UTF-8 one is
	// dropped, a UTF-16 one makes the object UTF-16. Bytes that are not
	// UTF-8 in an object read as UTF-8 are a row error (a file error in
	// the header) that names the encoding they suggest. The limits below
	// count the decoded (UTF-8) bytes, which the reader holds, except
	// max_inflate_ratio, which counts the bytes gzip inflates to, before
	// decoding.
	Encoding string `yaml:"encoding"`
	// Quote is the quote character. Only `"` (the default) is supported:
	// encoding/csv has no other, and Validate rejects the rest.
	Quote string `yaml:"quote"`
	// LazyQuotes lets a quote appear in an unquoted field and a
	// non-doubled quote in a quoted field (encoding/csv's LazyQuotes).
	LazyQuotes bool `yaml:"lazy_quotes"`
	// MaxFieldBytes is the largest value a row may hold, in bytes of
	// UTF-8 (after decoding, see Encoding); a larger one is a row error
	// naming the field. 0 means DefaultMaxFieldBytes.
	MaxFieldBytes int `yaml:"max_field_bytes"`
	// MaxRecordBytes is the largest record the reader holds, counting
	// every byte of it in UTF-8, after decoding (quoted line breaks
	// included), but the line feed that ends it. It is checked as the bytes are read, so a longer
	// record is never held whole: it is a row error naming its line, and
	// reading goes on after the line break that ends it (outside quotes);
	// a longer header is a file error. 0 means DefaultMaxRecordBytes, or
	// MaxFieldBytes if that is more; when both are set, it must not be
	// less than MaxFieldBytes.
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// MaxInflateRatio bounds a gzip-compressed object: it may decompress
	// to this many times its compressed size, or to 64 MiB if that is
	// more, so that small objects are never refused; more is a file error.
	// 0 means DefaultMaxInflateRatio (100).
	MaxInflateRatio int `yaml:"max_inflate_ratio"`
}

// S3Config configures the S3 client.
type S3Config struct {
	// Region is the bucket's region. Empty takes it from the environment
	// or profile; with a custom Endpoint it falls back to "us-east-1".
	Region string `yaml:"region"`
	// Endpoint is the URL of an S3-compatible store (MinIO, Ceph, R2,
	// versitygw). Empty means AWS.
	Endpoint string `yaml:"endpoint"`
	// PathStyle addresses buckets as endpoint/bucket/key instead of
	// bucket.endpoint/key, as most S3-compatible stores need.
	PathStyle bool `yaml:"path_style"`
	// Profile selects a shared-config profile instead of AWS_PROFILE.
	Profile string `yaml:"profile"`
}

// Validate checks the configuration and names the first bad field.
func (c Config) Validate() error {
	_, err := c.compile()
	return err
}

// settings is a validated Config in the form the readers use.
type settings struct {
	cfg    Config
	format string // "" = by extension
	// comma is the delimiter, 0 to detect it in each object's header.
	comma rune
	// encoding is the canonical name of source.csv.encoding, "" for UTF-8.
	encoding  string
	maxField  int
	maxRecord int
	// inflateRatio and inflateFloor bound a gzip object's decompressed
	// bytes: inflateRatio times its size, at least inflateFloor.
	inflateRatio int64
	inflateFloor int64
	since        time.Time // zero = open
	until        time.Time // zero = open
	dateFrom     string
	keyDate      *regexp.Regexp
	s3           *s3Location // nil for local
	localPath    string
}

// compile validates c section by section, in the order of its fields, and
// returns the first error, which names the field.
func (c Config) compile() (*settings, error) {
	s := &settings{cfg: c}
	for _, step := range []func(*settings) error{
		(*settings).compileLocation,
		(*settings).compileFormat,
		(*settings).compileCSV,
		(*settings).compileWindow,
		(*settings).compileDateFrom,
		(*settings).compileS3,
	} {
		if err := step(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// compileLocation sets s3 or localPath from source.location.
func (s *settings) compileLocation() error {
	loc := s.cfg.Location
	if strings.TrimSpace(loc) == "" {
		return errors.New("source.location: required (or --source)")
	}
	if strings.HasPrefix(loc, "s3://") {
		l, err := parseS3Location(loc)
		if err != nil {
			return fmt.Errorf("source.location: %w", err)
		}
		s.s3 = l
		return nil
	}
	if strings.Contains(loc, "://") {
		return fmt.Errorf("source.location: %q: only local paths and s3:// URLs are supported", loc)
	}
	if _, err := filepath.Match(loc, ""); err != nil {
		return fmt.Errorf("source.location: bad glob %q: %w", loc, err)
	}
	s.localPath = filepath.Clean(loc)
	return nil
}

// compileFormat sets format from source.format.
func (s *settings) compileFormat() error {
	switch f := s.cfg.Format; f {
	case "", FormatCSV, FormatParquet:
		s.format = f
		return nil
	default:
		return fmt.Errorf("source.format: %q: must be %q, %q or empty (by extension)", f, FormatCSV, FormatParquet)
	}
}

// compileCSV sets comma, the encoding and the limits from source.csv.
func (s *settings) compileCSV() error {
	c := s.cfg.CSV
	comma, err := parseDelimiter(c.Delimiter)
	if err != nil {
		return err
	}
	s.comma = comma
	if s.encoding, err = parseEncoding(c.Encoding); err != nil {
		return err
	}
	if c.Quote != "" && c.Quote != `"` {
		return fmt.Errorf("source.csv.quote: %q: only '\"' is supported (encoding/csv has no other quote character)", c.Quote)
	}
	return s.compileCSVLimits()
}

// compileCSVLimits sets maxField, maxRecord and the inflate bound from
// source.csv.
func (s *settings) compileCSVLimits() error {
	c := s.cfg.CSV
	switch {
	case c.MaxFieldBytes < 0:
		return errors.New("source.csv.max_field_bytes: must be >= 0")
	case c.MaxFieldBytes == 0:
		s.maxField = DefaultMaxFieldBytes
	default:
		s.maxField = c.MaxFieldBytes
	}
	switch {
	case c.MaxRecordBytes < 0:
		return errors.New("source.csv.max_record_bytes: must be >= 0")
	case c.MaxRecordBytes == 0:
		s.maxRecord = max(DefaultMaxRecordBytes, s.maxField)
	case c.MaxFieldBytes > 0 && c.MaxRecordBytes < c.MaxFieldBytes:
		return fmt.Errorf("source.csv.max_record_bytes: %d is less than max_field_bytes %d", c.MaxRecordBytes, c.MaxFieldBytes)
	default:
		s.maxRecord = c.MaxRecordBytes
	}
	switch {
	case c.MaxInflateRatio < 0:
		return errors.New("source.csv.max_inflate_ratio: must be >= 0")
	case c.MaxInflateRatio == 0:
		s.inflateRatio = DefaultMaxInflateRatio
	default:
		s.inflateRatio = int64(c.MaxInflateRatio)
	}
	s.inflateFloor = inflateFloor
	return nil
}

// parseDelimiter parses source.csv.delimiter: empty and "auto" are 0
// (detect it in each object), `\t` and "tab" are a tab, anything else
// must be one character.
func parseDelimiter(d string) (rune, error) {
	switch d {
	case "", "auto":
		return 0, nil
	case `\t`, "tab":
		return '\t', nil
	}
	r, size := utf8.DecodeRuneInString(d)
	if size != len(d) || r == utf8.RuneError || r == '"' || r == '\r' || r == '\n' || r == 0xFEFF {
		return 0, fmt.Errorf("source.csv.delimiter: %q: must be one character other than a quote or a line break", d)
	}
	return r, nil
}

// compileWindow sets since and until from source.since and source.until.
func (s *settings) compileWindow() error {
	c := s.cfg
	var err error
	if s.since, err = ParseBound(c.Since, false); err != nil {
		return fmt.Errorf("source.since: %w", err)
	}
	if s.until, err = ParseBound(c.Until, true); err != nil {
		return fmt.Errorf("source.until: %w", err)
	}
	if !s.since.IsZero() && !s.until.IsZero() && !s.since.Before(s.until) {
		return fmt.Errorf("source.until: %s is not after since %s", c.Until, c.Since)
	}
	return nil
}

// compileDateFrom sets dateFrom and keyDate from source.date_from and
// source.key_date_pattern.
func (s *settings) compileDateFrom() error {
	c := s.cfg
	switch c.DateFrom {
	case "", DateFromModTime:
		s.dateFrom = DateFromModTime
	case DateFromKey:
		s.dateFrom = DateFromKey
	default:
		return fmt.Errorf("source.date_from: %q: must be %q or %q", c.DateFrom, DateFromModTime, DateFromKey)
	}
	pattern := c.KeyDatePattern
	if pattern == "" {
		pattern = DefaultKeyDatePattern
	}
	var err error
	if s.keyDate, err = compileKeyDate(pattern); err != nil {
		return fmt.Errorf("source.key_date_pattern: %w", err)
	}
	return nil
}

// compileS3 checks source.s3.endpoint.
func (s *settings) compileS3() error {
	if e := s.cfg.S3.Endpoint; e != "" {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("source.s3.endpoint: %q: must be an http:// or https:// URL", e)
		}
	}
	return nil
}

// ParseBound parses a Since or Until value (of objects, or of orders'
// event dates). A date alone is the start of that day in UTC, or for an
// upper bound the start of the next day. An empty value is the zero time:
// no bound.
func ParseBound(v string, upper bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.Parse(time.DateOnly, v); err == nil {
		if upper {
			d = d.AddDate(0, 0, 1)
		}
		return d, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want a date (2006-01-02) or an RFC 3339 time", v)
}

func compileKeyDate(pattern string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, n := range re.SubexpNames() {
		have[n] = true
	}
	for _, n := range []string{"year", "month", "day"} {
		if !have[n] {
			return nil, fmt.Errorf("%q: needs the named groups year, month and day, e.g. (?P<year>\\d{4})", pattern)
		}
	}
	return re, nil
}

// s3Location is a parsed s3:// location.
type s3Location struct {
	bucket string
	// prefix is the key part before the first glob character.
	prefix string
	// glob is the whole key pattern when it has glob characters.
	glob string
}

func parseS3Location(loc string) (*s3Location, error) {
	rest := strings.TrimPrefix(loc, "s3://")
	bucket, key, _ := strings.Cut(rest, "/")
	if bucket == "" || strings.ContainsAny(bucket, "*?[") {
		return nil, fmt.Errorf("%q: want s3://bucket/prefix/", loc)
	}
	l := &s3Location{bucket: bucket, prefix: key}
	if i := strings.IndexAny(key, `*?[\`); i >= 0 {
		if _, err := path.Match(key, ""); err != nil {
			return nil, fmt.Errorf("bad glob %q: %w", key, err)
		}
		l.prefix, l.glob = key[:i], key
	}
	return l, nil
}
