package mapping

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"convpipe/pipeline"
	grouping "convpipe/pipeline/group"
)

var update = flag.Bool("update", false, "rewrite the want files of the case folders")

// testNow is "now" for every case: EventDates after it (plus the
// tolerance) are in the future.
var testNow = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

// result is one order's line in want.jsonl.
type result struct {
	Key      pipeline.Key       `json:"key"`
	Body     string             `json:"body,omitempty"`
	Skip     string             `json:"skip,omitempty"`
	Skipped  []pipeline.Message `json:"skipped_rows,omitempty"`
	Problems []pipeline.Message `json:"problems,omitempty"`
}

// loadMapping reads and compiles a case's mapping.yaml.
func loadMapping(t testing.TB, path string) (*Mapping, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, err
	}
	m, err := New(cfg)
	if err != nil {
		return nil, err
	}
	m.now = func() time.Time { return testNow }
	return m, nil
}

// readCSV reads a CSV file into rows as a source would: the header is
// line 1 and each row carries the line on which its record starts.
func readCSV(t testing.TB, name string, r io.Reader) (*pipeline.Header, []pipeline.Row) {
	t.Helper()
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	names, err := cr.Read()
	if err != nil {
		t.Fatalf("%s: header: %v", name, err)
	}
	h := pipeline.NewHeader(names)
	obj := &pipeline.Object{Key: name}
	var rows []pipeline.Row
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		line, _ := cr.FieldPos(0)
		rows = append(rows, pipeline.Row{Object: obj, Line: int64(line), Header: h, Values: rec})
	}
	return h, rows
}

// group groups rows by order key as a run does by default (group mode
// auto), orders in the order of their first line.
func group(m *Mapping, rows []pipeline.Row) [][]pipeline.Row {
	out, err := groupWith(grouping.Config{}, m, rows)
	if err != nil {
		panic(err)
	}
	return out
}

// groupWith groups rows with the real Grouper configured by cfg.
func groupWith(cfg grouping.Config, m *Mapping, rows []pipeline.Row) ([][]pipeline.Row, error) {
	var out [][]pipeline.Row
	g := grouping.New(cfg, m.OrderKey, func(lines []pipeline.Row) error {
		out = append(out, lines)
		return nil
	})
	defer g.Close()
	for _, r := range rows {
		if err := g.Add(r); err != nil {
			return nil, err
		}
	}
	return out, g.Flush()
}

// caseConfig reads a case folder's configuration: its mapping.yaml, or
// the mapping: and group: sections of the convpipe configuration named
// by its file "config" (a path relative to the folder), as the examples
// in configs/ are tested.
func caseConfig(t testing.TB, dir string) (*Mapping, grouping.Config, error) {
	t.Helper()
	ref, err := os.ReadFile(filepath.Join(dir, "config"))
	if os.IsNotExist(err) {
		m, err := loadMapping(t, filepath.Join(dir, "mapping.yaml"))
		return m, grouping.Config{}, err
	}
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, strings.TrimSpace(string(ref))))
	if err != nil {
		t.Fatal(err)
	}
	var whole struct {
		Mapping yaml.Node `yaml:"mapping"`
		Group   yaml.Node `yaml:"group"`
	}
	if err := yaml.Unmarshal(data, &whole); err != nil {
		t.Fatal(err)
	}
	var gc grouping.Config
	if whole.Group.Kind != 0 {
		if err := whole.Group.Decode(&gc); err != nil {
			return nil, gc, err
		}
	}
	mdata, err := yaml.Marshal(&whole.Mapping)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(mdata)
	if err != nil {
		return nil, gc, err
	}
	m, err := New(cfg)
	if err != nil {
		return nil, gc, err
	}
	m.now = func() time.Time { return testNow }
	return m, gc, nil
}

func toResult(md pipeline.Mapped) result {
	r := result{Key: md.Conversion.Key, Skip: md.Skip, Skipped: md.SkippedRows, Problems: md.Problems}
	if md.Skip == "" {
		r.Body = md.Conversion.Encode()
	}
	return r
}

// runCase maps a case folder's input and returns want.jsonl's content, or
// the error that stopped it (config or header).
func runCase(t *testing.T, dir string) ([]byte, error) {
	m, gc, err := caseConfig(t, dir)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(dir, "input.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, rows := readCSV(t, "input.csv", f)
	if err := m.CheckHeader(pipeline.Object{Key: "input.csv"}, h); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	orders, err := groupWith(gc, m, rows)
	if err != nil {
		return nil, err
	}
	for _, lines := range orders {
		md := m.Map(lines)
		if md.Conversion == nil {
			t.Fatalf("Map returned a nil conversion")
		}
		if err := enc.Encode(toResult(md)); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes(), nil
}

// TestCases runs every case folder under testdata: mapping.yaml (or a
// file config naming a whole convpipe configuration, whose mapping and
// group sections are used) and input.csv in, want.jsonl (one result per
// order) or want.err out.
func TestCases(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/mapping.yaml")
	if err != nil {
		t.Fatal(err)
	}
	refs, _ := filepath.Glob("testdata/*/config")
	dirs = append(dirs, refs...)
	if len(dirs) == 0 {
		t.Fatal("no case folders")
	}
	for _, d := range dirs {
		dir := filepath.Dir(d)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			got, err := runCase(t, dir)
			wantJSON, wantErr := filepath.Join(dir, "want.jsonl"), filepath.Join(dir, "want.err")
			if *update {
				os.Remove(wantJSON)
				os.Remove(wantErr)
				if err != nil {
					writeFile(t, wantErr, []byte(err.Error()+"\n"))
				} else {
					writeFile(t, wantJSON, got)
				}
				return
			}
			if want, rerr := os.ReadFile(wantErr); rerr == nil {
				if err == nil {
					t.Fatalf("got no error, want %s", want)
				}
				if g := err.Error() + "\n"; g != string(want) {
					t.Fatalf("error:\ngot  %s\nwant %s", g, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			want, rerr := os.ReadFile(wantJSON)
			if rerr != nil {
				t.Fatalf("no want.jsonl or want.err (run with -update): %v", rerr)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("results differ (run with -update to accept):\n%s", diffLines(string(want), string(got)))
			}
			assertNoEmail(t, got)
		})
	}
}

// assertNoEmail fails when a plain e-mail address appears in a result's
// messages.
func assertNoEmail(t *testing.T, jsonl []byte) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(jsonl))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		for _, m := range slices.Concat(r.Problems, r.Skipped) {
			if hasEmail(m.Value) || hasEmail(m.Text) {
				t.Errorf("plain e-mail address in message %+v", m)
			}
		}
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// diffLines shows the lines of want and got that differ.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("- " + wl + "\n+ " + gl + "\n")
		}
	}
	return b.String()
}

// TestExampleRequest checks the conversion built from testdata/example
// against the example request of the API reference: the same fields and
// values (as a set: the reference sends some order-level fields after the
// items, the encoder sends them all first), and the exact body the encoder
// makes, kept in want.body.
func TestExampleRequest(t *testing.T) {
	const dir = "testdata/example"
	m, err := loadMapping(t, filepath.Join(dir, "mapping.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "input.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, rows := readCSV(t, "input.csv", f)
	orders := group(m, rows)
	if len(orders) != 1 {
		t.Fatalf("got %d orders, want 1", len(orders))
	}
	md := m.Map(orders[0])
	if len(md.Problems) > 0 || md.Skip != "" {
		t.Fatalf("problems: %+v, skip %q", md.Problems, md.Skip)
	}

	var want []string
	data, err := os.ReadFile(filepath.Join(dir, "request.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			want = append(want, l)
		}
	}
	var got []string
	for _, f := range md.Conversion.Form() {
		got = append(got, f.Name+"="+f.Value)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("fields differ from the reference's example:\n%s", diffLines(strings.Join(want, "\n"), strings.Join(got, "\n")))
	}

	body := md.Conversion.Encode() + "\n"
	golden := filepath.Join(dir, "want.body")
	if *update {
		writeFile(t, golden, []byte(body))
	}
	wantBody, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if body != string(wantBody) {
		t.Errorf("body:\ngot  %s\nwant %s", body, wantBody)
	}
	if k := md.Conversion.Key; k != (pipeline.Key{EventType: "12345", OrderID: "9217374917471"}) {
		t.Errorf("key = %+v", k)
	}
}

// errorsAs is errors.As with a type parameter.
func errorsAs[T error](err error) (T, bool) {
	var target T
	ok := errors.As(err, &target)
	return target, ok
}
