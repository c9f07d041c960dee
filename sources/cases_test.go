package sources_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"convpipe/mapping"
	"convpipe/pipeline"
	"convpipe/pipeline/engine"
	"convpipe/pipeline/group"
	"convpipe/sources"
)

// caseResult is one order of a case, or one row error, as want.jsonl
// holds it.
type caseResult struct {
	Key      *pipeline.Key      `json:"key,omitempty"`
	Body     string             `json:"body,omitempty"`
	Problems []pipeline.Message `json:"problems,omitempty"`
	Skip     string             `json:"skip,omitempty"`
	RowError *pipeline.Message  `json:"row_error,omitempty"`
}

// TestDialectCases runs every case folder under testdata/cases: the
// files under input/ read by the source that source.yaml configures
// (its location is input/), in one run, mapped by mapping.yaml, each
// order's encoded body, problems or skip (and every row error) compared
// with want.jsonl; -update rewrites it. These are the exports of shops
// in other dialects: other encodings, delimiters, line ends, decimal
// commas, and folders that mix them.
// fixtureClock is the day the test exports with fixed dates are checked
// as of (their EventDates against mapping.max_event_age): the day they
// were written, so that the tests pass whatever the date.
func fixtureClock() time.Time { return time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) }

func TestDialectCases(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "cases", "*", "mapping.yaml"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no case folders: %v", err)
	}
	for _, d := range dirs {
		dir := filepath.Dir(d)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			got := runDialectCase(t, dir)
			wantFile := filepath.Join(dir, "want.jsonl")
			if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
				if err := os.WriteFile(wantFile, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("results differ (run with -update to accept):\ngot\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// runDialectCase runs the case in dir and returns its results, one JSON
// line each, with the folder's path left out of object keys.
func runDialectCase(t *testing.T, dir string) []byte {
	t.Helper()
	var cfg sources.Config
	decodeStrict(t, filepath.Join(dir, "source.yaml"), &cfg)
	cfg.Location = filepath.Join(dir, "input")
	src, err := sources.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "mapping.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mcfg, err := mapping.ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mapping.New(mcfg)
	if err != nil {
		t.Fatal(err)
	}
	m.SetClock(fixtureClock) // the samples' dates are fixed
	var results []caseResult
	opt := engine.Options{
		Source: src, Mapper: m, Group: group.Config{}.WithDefaults(),
		OnDecision: func(d engine.Decision) {
			md := d.Mapped
			results = append(results, caseResult{Key: &md.Conversion.Key, Body: d.Body, Problems: md.Problems, Skip: md.Skip})
		},
		OnRowError: func(msg pipeline.Message) { results = append(results, caseResult{RowError: &msg}) },
	}
	s, err := engine.Run(t.Context(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if s.FileErrors > 0 {
		t.Errorf("%d file errors", s.FileErrors)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	prefix := filepath.ToSlash(filepath.Join(dir, "input")) + "/"
	return []byte(strings.ReplaceAll(buf.String(), prefix, ""))
}

func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
