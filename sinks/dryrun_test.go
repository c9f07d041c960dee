package sinks

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"convpipe/pipeline"
)

func TestDryRun(t *testing.T) {
	var buf bytes.Buffer
	d := NewDryRun(&buf)
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out, err := d.Send(t.Context(), conv(i))
			if err != nil || out.State != pipeline.StatePending || out.Attempts != 0 {
				t.Errorf("outcome %+v, %v", out, err)
			}
		})
	}
	wg.Wait()
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if d.Count() != n {
		t.Fatalf("count %d", d.Count())
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var line struct {
			Key    string            `json:"key"`
			Body   string            `json:"body"`
			Fields map[string]string `json:"fields"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		var i int
		for i = range n {
			if conv(i).Key.String() == line.Key {
				break
			}
		}
		c := conv(i)
		if line.Body != c.Encode() || line.Fields["OrderId"] != c.Key.OrderID || line.Fields["ItemSku1"] != "SKU-1" {
			t.Errorf("line %+v does not match conversion %d", line, i)
		}
		// The fields keep the body's order.
		if !strings.HasPrefix(sc.Text()[strings.Index(sc.Text(), `"fields":`):], `"fields":{"EventTypeId":`) {
			t.Errorf("fields out of order: %s", sc.Text())
		}
		seen[line.Key] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct lines, want %d", len(seen), n)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestDryRunWriteError: the output's write error comes back, as fatal,
// from the Send whose line fills the buffer, from every later Send, and
// from Flush.
func TestDryRunWriteError(t *testing.T) {
	d := NewDryRun(failWriter{})
	var first error
	for i := 0; i < 10000 && first == nil; i++ {
		_, first = d.Send(t.Context(), conv(i))
	}
	for name, err := range map[string]error{"first failing Send": first, "Flush": d.Flush()} {
		if !errors.Is(err, pipeline.ErrFatal) || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("%s: error %v, want a fatal disk full", name, err)
		}
	}
	if _, err := d.Send(t.Context(), conv(1)); !errors.Is(err, pipeline.ErrFatal) {
		t.Errorf("Send after the failure: %v, want fatal", err)
	}
}

// TestAppendJSONText: what appendJSONText writes decodes, as a JSON
// string, to the text (invalid UTF-8 as U+FFFD, as encoding/json does),
// for every kind of character that needs escaping.
func TestAppendJSONText(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and backslash \`, "new\nline\ttab\rcr", "\x00\x01\x1f\x7f",
		"<html> & ampersand", "ümlaut €uro 🚀", "line\u2028sep\u2029para", "bad \xff\xfe utf8 \xe2\x82", "=SUM(A1)",
	} {
		b := append([]byte{'"'}, appendJSONText(nil, s)...)
		b = append(b, '"')
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("%q: %s does not decode: %v", s, b, err)
			continue
		}
		want, _ := json.Marshal(s) // encoding/json's own reading of s
		var wantS string
		_ = json.Unmarshal(want, &wantS)
		if got != wantS {
			t.Errorf("%q: decodes to %q, want %q", s, got, wantS)
		}
	}
}

func FuzzAppendJSONText(f *testing.F) {
	f.Add("plain")
	f.Add("a\"b\\c\n\x00\xff\u2028")
	f.Fuzz(func(t *testing.T, s string) {
		b := append([]byte{'"'}, appendJSONText(nil, s)...)
		b = append(b, '"')
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: %s does not decode: %v", s, b, err)
		}
		want, _ := json.Marshal(s)
		var wantS string
		_ = json.Unmarshal(want, &wantS)
		if got != wantS {
			t.Fatalf("%q: decodes to %q, want %q", s, got, wantS)
		}
	})
}

func TestDiscard(t *testing.T) {
	var d Discard
	out, err := d.Send(t.Context(), conv(1))
	if err != nil || out.State != pipeline.StateAccepted || d.Count() != 1 {
		t.Fatalf("%+v %v", out, err)
	}
}
