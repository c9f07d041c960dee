package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"convpipe/pipeline"
)

// ErrChanged reports that an object's content changed since it was
// listed: its ETag (for a local file, its size or modification time) is
// no longer the one in the pipeline.Object.
var ErrChanged = errors.New("object changed since it was listed")

// Source reads an export from local disk or S3, as CSV or Parquet. It is
// safe for concurrent use.
type Source struct {
	set   *settings
	store store
}

var (
	_ pipeline.Source     = (*Source)(nil)
	_ pipeline.Positioner = (*csvReader)(nil)
	_ pipeline.Positioner = (*parquetReader)(nil)
)

// store is where the bytes live: it lists objects and opens them either as
// a stream or for random access.
type store interface {
	// list returns the objects under the location, with the glob or the
	// folder filter (extension, hidden names) applied, in any order.
	list(ctx context.Context) ([]pipeline.Object, error)
	// open streams an object. It fails with ErrChanged when obj.ETag is
	// set and differs from the stored object's.
	open(ctx context.Context, obj pipeline.Object) (io.ReadCloser, error)
	// openAt opens an object for random access and returns its size. Like
	// open, it fails with ErrChanged when obj.ETag is set and differs.
	openAt(ctx context.Context, obj pipeline.Object) (readerAtCloser, int64, error)
}

// readerAtCloser is random access to one object of known size.
type readerAtCloser interface {
	io.ReaderAt
	io.Closer
}

// New returns the Source that cfg describes. It validates cfg and, for S3,
// loads the AWS configuration (credentials are resolved lazily, so a
// credential problem shows at the first Objects or Open call). ctx bounds
// that loading only.
func New(ctx context.Context, cfg Config) (*Source, error) {
	set, err := cfg.compile()
	if err != nil {
		return nil, err
	}
	s := &Source{set: set}
	if set.s3 != nil {
		st, err := newS3Store(ctx, set)
		if err != nil {
			return nil, err
		}
		s.store = st
	} else {
		s.store = &localStore{set: set}
	}
	return s, nil
}

// Objects lists the objects the source selects, sorted by key: those under
// its location that match its glob and fall in its date window.
func (s *Source) Objects(ctx context.Context) ([]pipeline.Object, error) {
	objs, err := s.store.list(ctx)
	if err != nil {
		return nil, err
	}
	out := objs[:0]
	for _, o := range objs {
		ok, err := s.set.inWindow(o)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b pipeline.Object) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Open opens one object for reading, as its format says. ctx governs the
// whole reading of the object, not only the opening. An error is a file
// error: the object is missing, changed since it was listed (ErrChanged),
// unreadable or not of its format.
func (s *Source) Open(ctx context.Context, obj pipeline.Object) (pipeline.RowReader, error) {
	format, err := s.set.formatOf(obj.Key)
	if err != nil {
		return nil, err
	}
	o := obj
	switch format {
	case FormatParquet:
		ra, size, err := s.store.openAt(ctx, obj)
		if err != nil {
			return nil, err
		}
		r, err := newParquetReader(&o, ra, size)
		if err != nil {
			ra.Close()
			return nil, err
		}
		return r, nil
	default:
		rc, err := s.store.open(ctx, obj)
		if err != nil {
			return nil, err
		}
		r, err := newCSVReader(&o, rc, s.set)
		if err != nil {
			rc.Close()
			return nil, err
		}
		return r, nil
	}
}

// formatOf returns the format of the object named key.
func (set *settings) formatOf(key string) (string, error) {
	if set.format != "" {
		return set.format, nil
	}
	if f := formatByName(key); f != "" {
		return f, nil
	}
	return "", fmt.Errorf("%s: cannot tell the format from the name (want .csv, .csv.gz or .parquet); set source.format", key)
}

// formatByName returns the format an object's name implies, or "".
func formatByName(key string) string {
	name := strings.ToLower(path.Base(key))
	switch {
	case strings.HasSuffix(name, ".csv"), strings.HasSuffix(name, ".csv.gz"):
		return FormatCSV
	case strings.HasSuffix(name, ".parquet"):
		return FormatParquet
	}
	return ""
}

// selectedInFolder reports whether a file found under a folder or prefix
// is part of the export: rel is its path below the folder. Names that
// start with "." or "_" (at any level: "_temporary/", ".part.csv",
// "_SUCCESS") are not, nor are files without an extension of the format.
func (set *settings) selectedInFolder(rel string) bool {
	for seg := range strings.SplitSeq(rel, "/") {
		if hidden(seg) {
			return false
		}
	}
	f := formatByName(rel)
	if set.format != "" {
		return f == set.format
	}
	return f != ""
}

// selectedByGlob reports whether a key that pattern matched is part of the
// export: a hidden name ("." or "_" first) only when the pattern's last
// element starts the same way.
func selectedByGlob(pattern, key string) bool {
	base := path.Base(key)
	return !hidden(base) || path.Base(pattern)[0] == base[0]
}

func hidden(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// inWindow reports whether o falls in the Since/Until window.
func (set *settings) inWindow(o pipeline.Object) (bool, error) {
	if set.since.IsZero() && set.until.IsZero() {
		return true, nil
	}
	if set.dateFrom == DateFromModTime {
		t := o.ModTime
		return (set.since.IsZero() || !t.Before(set.since)) && (set.until.IsZero() || t.Before(set.until)), nil
	}
	day, ok := keyDate(set.keyDate, o.Key)
	if !ok {
		return false, fmt.Errorf("%s: no date in the key (source.key_date_pattern %q); narrow source.location or set source.date_from: modtime", o.Key, set.keyDate.String())
	}
	end := day.AddDate(0, 0, 1)
	return (set.since.IsZero() || end.After(set.since)) && (set.until.IsZero() || day.Before(set.until)), nil
}

// keyDate finds the date in key with re, whose named groups year, month
// and day may each occur in several alternatives: the first that took part
// in the match counts.
func keyDate(re *regexp.Regexp, key string) (time.Time, bool) {
	m := re.FindStringSubmatchIndex(key)
	if m == nil {
		return time.Time{}, false
	}
	var ymd [3]int
	for i, name := range re.SubexpNames() {
		var slot int
		switch name {
		case "year":
			slot = 0
		case "month":
			slot = 1
		case "day":
			slot = 2
		default:
			continue
		}
		if ymd[slot] != 0 || m[2*i] < 0 {
			continue
		}
		n, err := strconv.Atoi(key[m[2*i]:m[2*i+1]])
		if err != nil {
			return time.Time{}, false
		}
		ymd[slot] = n
	}
	if ymd[1] < 1 || ymd[1] > 12 || ymd[2] < 1 || ymd[2] > 31 || ymd[0] == 0 {
		return time.Time{}, false
	}
	t := time.Date(ymd[0], time.Month(ymd[1]), ymd[2], 0, 0, 0, 0, time.UTC)
	if t.Day() != ymd[2] { // 2026-02-31
		return time.Time{}, false
	}
	return t, true
}
