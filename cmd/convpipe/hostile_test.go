package main

import (
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"convpipe/pipeline"
)

// hostile is a small API server of its own, not the simulator: it keeps
// the orders it took and answers each order's requests as its class
// says, with the answers the hardening review found convpipe misreading
// (a duplicate ItemSku taken as its own acceptance, a 503 after recording
// taken as never processed, waits of ten years, a lowered hourly limit, an
// echoed Authorization header).
type hostile struct {
	mu       sync.Mutex
	taken    map[string]int // OrderId → times recorded
	requests map[string]int // OrderId → requests
}

// The classes of orders, by a hash of their OrderId.
const (
	classHonest     = iota // QUEUED, taken
	classItemDup           // 500 (not taken), then 400 duplicate ItemSku: impact took nothing
	class503Taken          // 503 after taking it, then the documented duplicate OrderId
	classRetryAfter        // 429 with a Retry-After ten years ahead, then QUEUED
	classResetFar          // QUEUED, taken, with a window spent until 2286
	classEcho              // 500 echoing the Authorization header and body, then QUEUED
	classLimitOne          // QUEUED, taken, with X-RateLimit-Limit-hour: 1
	classes
)

func classOf(orderID string) int {
	h := fnv.New32a()
	io.WriteString(h, orderID)
	return int(h.Sum32() % classes)
}

func (h *hostile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	id := form.Get("OrderId")
	h.mu.Lock()
	h.requests[id]++
	n := h.requests[id]
	taken := h.taken[id] > 0
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	take := func() {
		h.mu.Lock()
		h.taken[id]++
		h.mu.Unlock()
	}
	queued := func() {
		take()
		w.Header().Set("X-RateLimit-Limit-hour", "1000000")
		fmt.Fprintf(w, `{"Status":"QUEUED","QueuedUri":"/Advertisers/%s/APISubmissions/H-%s"}`, testSID, id)
	}
	dupOrderID := func() {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"Status":"ERROR","Message":"Invalid conversion","Errors":[{"Field":"OrderId","Message":"Duplicate OrderId (%s): a conversion with this OrderId was already received for this event type"}]}`, id)
	}
	switch c := classOf(id); {
	case taken && c != classItemDup:
		dupOrderID()
	case c == classItemDup && n == 1, c == classEcho && n == 1:
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, `{"Status":"ERROR","Message":"internal error handling %q with %q"}`, r.Header.Get("Authorization"), string(body))
	case c == classItemDup:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"Errors":[{"Field":"ItemSku2","Message":"Duplicate ItemSku within order id %s"}]}`, id)
	case c == class503Taken && n == 1:
		take()
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"Status":"ERROR","Message":"upstream unavailable"}`)
	case c == classRetryAfter && n == 1:
		w.Header().Set("Retry-After", time.Now().AddDate(10, 0, 0).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"Status":"ERROR","Message":"slow down"}`)
	case c == classResetFar:
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", "9999999999")
		queued()
	case c == classLimitOne:
		queued()
		w.Header().Set("X-RateLimit-Limit-hour", "1") // overrides queued's
	default:
		queued()
	}
}

// TestHostileServer runs the binary against the hostile server: every
// order the server took is accepted once and no other is recorded as
// accepted; every wait it asks for is capped at sink.max_wait; no form of
// the token reaches the ledger, the results or the output.
func TestHostileServer(t *testing.T) {
	h := &hostile{taken: map[string]int{}, requests: map[string]int{}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	w := newWorkspace(t, simOpts{}, cfgOpts{URL: srv.URL, Workers: 4, MaxAttempts: 5, Extra: "  max_wait: 250ms\n"})
	want := expectCSV(t, w.gen("in/orders.csv", "-rows", size("200", "2000"), "-seed", "21"))
	start := time.Now()
	r := w.run("--summary-json", "s.json")
	elapsed := time.Since(start)
	noPanic(t, r.stdout+r.stderr)
	if r.code != exitAttention {
		t.Fatalf("exit %d, want 3 (the duplicate ItemSku orders are rejected)\n%s", r.code, r)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	byClass := make([]int, classes)
	falselyAccepted, accepted, rejected := 0, 0, 0
	for _, e := range w.export() {
		if strings.HasPrefix(e.Key.EventType, "!") {
			continue
		}
		id := e.Key.OrderID
		byClass[classOf(id)]++
		switch {
		case e.State == pipeline.StateAccepted && h.taken[id] == 0:
			falselyAccepted++
			t.Errorf("%s recorded accepted, but the server never took it", id)
		case e.State == pipeline.StateAccepted:
			accepted++
		case h.taken[id] > 0:
			t.Errorf("%s: %s, but the server took it", id, e.State)
		case classOf(id) == classItemDup && e.State == pipeline.StateRejected:
			rejected++
		case e.State == pipeline.StateSkipped && want.skipped[id]:
		default:
			t.Errorf("%s: %s, want rejected (duplicate ItemSku) or accepted", id, e.State)
		}
	}
	for id, n := range h.taken {
		if n != 1 {
			t.Errorf("%s taken %d times, want once", id, n)
		}
		if !want.valid[id] {
			t.Errorf("%s taken, but not a valid order of the export", id)
		}
	}
	if accepted+rejected != len(want.valid) || accepted != len(h.taken) {
		t.Errorf("%d accepted, %d rejected of %d valid orders; the server took %d", accepted, rejected, len(want.valid), len(h.taken))
	}
	for c, n := range byClass {
		if n == 0 {
			t.Errorf("no order of class %d: the export does not exercise it", c)
		}
	}
	leaks := tokenForms(testSID, testToken)
	files := []string{w.ledger}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(w.ledger), "results", "*")); len(m) > 0 {
		files = append(files, m...)
	}
	for _, where := range append(readAll(t, files), r.stdout, r.stderr, exportText(w)) {
		for _, f := range leaks {
			if strings.Contains(where, f) {
				t.Errorf("a form of the token (%.12s…) was written", f)
			}
		}
	}
	note(t, "hostile server (its own, not the simulator): %d valid orders, %d accepted once (every one the server took), %d rejected (duplicate ItemSku after a 500), 0 falsely accepted (found %d); waits of ten years and a reset in 2286 capped at max_wait 250ms: the run took %s; no form of the token written",
		len(want.valid), accepted, rejected, falselyAccepted, elapsed.Round(time.Second))
}

// tokenForms are the forms a token can be leaked in: raw, the Basic
// credentials, URL-escaped.
func tokenForms(sid, token string) []string {
	return []string{token, base64.StdEncoding.EncodeToString([]byte(sid + ":" + token)), url.QueryEscape(token)}
}

func readAll(t *testing.T, paths []string) []string {
	t.Helper()
	var out []string
	for _, p := range paths {
		for _, q := range []string{p, p + "-wal"} {
			if b, err := os.ReadFile(q); err == nil {
				out = append(out, string(b))
			}
		}
	}
	return out
}

func exportText(w *workspace) string {
	r := w.exec("ledger", "export", "--ledger", w.ledger)
	return r.stdout
}

// resourceLimit is the memory the resource scenario must stay under.
const resourceLimit = 256 << 20

// TestResourceBombs runs the binary over an export with a gzip bomb (one
// line that inflates to a gigabyte and a half at full size) and a plain
// line of 300 MB beside an ordinary file: the bomb and the line are
// recorded problems, every valid order of the ordinary file is accepted
// once, and the peak RSS stays under 256 MiB. Before, the 300 MB line took
// 991 MB and the bomb 4.66 GB: OOM-killed on every run.
func TestResourceBombs(t *testing.T) {
	w := newWorkspace(t, simOpts{}, cfgOpts{})
	src := w.gen("in/orders.csv", "-rows", "60", "-seed", "31")
	want := expectCSV(t, src)
	header := firstLine(t, src)
	bomb := size(int64(64<<20), int64(1536<<20))
	long := size(int64(16<<20), int64(300<<20))
	writeBigLine(t, w.path("in/bomb.csv.gz"), header, bomb, true)
	writeBigLine(t, w.path("in/long.csv"), header, long, false)
	r := w.run("--summary-json", "s.json")
	if r.code != exitAttention {
		t.Fatalf("exit %d, want 3: the bomb and the long line need a human\n%s", r.code, r)
	}
	checkExactlyOnce(t, w.sim, want.valid)
	problems := map[string]string{}
	for _, e := range w.export("--state", "invalid") {
		if len(e.Messages) > 0 {
			problems[e.Key.String()] = e.Messages[0].Text
		}
	}
	var bombSeen, longSeen bool
	for k, m := range problems {
		bombSeen = bombSeen || strings.Contains(k, "bomb.csv.gz")
		longSeen = longSeen || (strings.Contains(k, "long.csv") && strings.Contains(m, "max_record_bytes"))
	}
	if !bombSeen || !longSeen {
		t.Errorf("recorded problems %v: want one for bomb.csv.gz and one naming max_record_bytes for long.csv", problems)
	}
	if r.maxRSS == 0 || r.maxRSS >= resourceLimit {
		t.Errorf("peak RSS %d MiB, want under %d MiB", r.maxRSS>>20, resourceLimit>>20)
	}
	note(t, "a gzip bomb (one line of %d MiB inflated) and a plain line of %d MiB beside %d valid orders: both recorded as problems (exit 3), every valid order accepted once, peak RSS %d MiB (limit %d MiB), %s",
		bomb>>20, long>>20, len(want.valid), r.maxRSS>>20, resourceLimit>>20, r.elapsed.Round(100*time.Millisecond))
}

func firstLine(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return line
}

// writeBigLine writes header and one line of n bytes (one field), gzipped
// when zip is set, streaming: the test holds no more than a buffer.
func writeBigLine(t *testing.T, path, header string, n int64, zip bool) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out io.Writer = f
	var zw *gzip.Writer
	if zip {
		zw = gzip.NewWriter(f)
		out = zw
	}
	if _, err := io.WriteString(out, header+"\n"); err != nil {
		t.Fatal(err)
	}
	chunk := []byte(strings.Repeat("x", 1<<20))
	for left := n; left > 0; left -= int64(len(chunk)) {
		if _, err := out.Write(chunk[:min(int64(len(chunk)), left)]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := io.WriteString(out, "\n"); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
