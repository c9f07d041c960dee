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

func TestDryRunWriteError(t *testing.T) {
	_, err := NewDryRun(failWriter{}).Send(t.Context(), conv(1))
	if !errors.Is(err, pipeline.ErrFatal) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("error %v", err)
	}
}

func TestDiscard(t *testing.T) {
	var d Discard
	out, err := d.Send(t.Context(), conv(1))
	if err != nil || out.State != pipeline.StateAccepted || d.Count() != 1 {
		t.Fatalf("%+v %v", out, err)
	}
}
