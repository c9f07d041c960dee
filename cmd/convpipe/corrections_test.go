package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"convpipe/ledger"
	"convpipe/pipeline"
	"convpipe/sim"
)

// correctionFilters are the reversal filters the corrections cases add to
// the end-to-end configuration's mapping.
const correctionFilters = `      reason: order cancelled
      reversal: cancelled
    - skip: order
      when: {column: status, in: [returned]}
      reason: order returned
      reversal: returned
    - skip: order
      when: {column: status, in: [test]}
      reason: a test order
      reversal: test`

// corrWorkspace is a workspace whose mapping marks cancelled, returned
// and test orders as reversals.
func corrWorkspace(t *testing.T, sc sim.Config) *workspace {
	t.Helper()
	w := newWorkspace(t, simOpts{cfg: sc}, cfgOpts{})
	b, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "      reason: order cancelled", correctionFilters, 1)
	if err := os.WriteFile(w.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// orderLine is one line of an export in the sample's columns.
type orderLine struct {
	id, status, sku, qty, price string
}

// writeExport writes lines as in/<name>, dated a day ago (Berlin time).
func writeExport(t *testing.T, w *workspace, name string, lines []orderLine) {
	t.Helper()
	berlin, _ := time.LoadLocation("Europe/Berlin")
	when := time.Now().Add(-24 * time.Hour).In(berlin).Format("2006-01-02 15:04:05")
	var b strings.Builder
	b.WriteString("order_id,store,created_at,status,customer_id,email,click_id,promo_code,currency,sku,product_name,category,quantity,unit_price,discount\n")
	for _, l := range lines {
		fmt.Fprintf(&b, "%s,berlin,%s,%s,C%s,c%s@example.com,clk_%s,,EUR,%s,Thing,tools,%s,%s,0.00\n", l.id, when, l.status, l.id, l.id, l.id, l.sku, l.qty, l.price)
	}
	if err := os.WriteFile(w.path("in", name), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// order3001 is the order every case starts from: SKU-A 2 × 10.00 and
// SKU-B 1 × 5.50, 25.50 in all.
func order3001(status string) []orderLine {
	return []orderLine{{"3001", status, "SKU-A", "2", "10.00"}, {"3001", status, "SKU-B", "1", "5.50"}}
}

// action returns the simulator's action of OrderId, as GET /Actions
// lists it.
func action(t *testing.T, w *workspace, orderID string) map[string]string {
	t.Helper()
	q := url.Values{"CampaignId": {"1000"}, "StartDate": {w.sim.Now().Add(-40 * 24 * time.Hour).UTC().Format(time.RFC3339)},
		"EndDate": {w.sim.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, w.url+"/Advertisers/"+testSID+"/Actions?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(testSID, testToken)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /Actions: %s", resp.Status)
	}
	var page struct {
		Actions []map[string]string
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	for _, a := range page.Actions {
		if a["Oid"] == orderID {
			return a
		}
	}
	t.Fatalf("no action of %s in GET /Actions: %v", orderID, page.Actions)
	return nil
}

// corrections reads the ledger's corrections of OrderId.
func ledgerCorrections(t *testing.T, w *workspace, orderID string) ([]pipeline.Correction, pipeline.Entry) {
	t.Helper()
	l, err := ledger.OpenReadOnly(context.Background(), w.ledger)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var cs []pipeline.Correction
	if err := l.Corrections(t.Context(), pipeline.CorrectionFilter{OrderID: orderID}, func(c pipeline.Correction) error {
		cs = append(cs, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e, _, err := l.Get(t.Context(), pipeline.Key{EventType: "12345", OrderID: orderID})
	if err != nil {
		t.Fatal(err)
	}
	return cs, e
}

// TestCorrectionCases runs each case against the simulator over HTTP: the
// order accepted, then a new export (or the same one changed) sent with
// run --corrections; it checks impact's state in GET /Actions and the
// ledger's.
func TestCorrectionCases(t *testing.T) {
	tests := []struct {
		name    string
		second  []orderLine
		advance time.Duration // of the simulated clock before the second run
		code    int
		state   string // the action's State after
		amount  string // its Amount after
		kind    pipeline.CorrectionKind
		corr    pipeline.CorrectionState
		entry   pipeline.State
	}{
		{"partial return", []orderLine{{"3001", "paid", "SKU-A", "1", "10.00"}, {"3001", "paid", "SKU-B", "1", "5.50"}},
			0, 0, "PENDING", "15.50", pipeline.CorrectItems, pipeline.CorrectionApplied, pipeline.StateAccepted},
		{"item removed", []orderLine{{"3001", "paid", "SKU-A", "2", "10.00"}},
			0, 0, "PENDING", "20.00", pipeline.CorrectItems, pipeline.CorrectionApplied, pipeline.StateAccepted},
		{"full return", order3001("returned"), 0, 0, "REVERSED", "25.50", pipeline.CorrectReversal, pipeline.CorrectionApplied, pipeline.StateAccepted},
		{"cancelled order", order3001("cancelled"), 0, 0, "REVERSED", "25.50", pipeline.CorrectReversal, pipeline.CorrectionApplied, pipeline.StateAccepted},
		{"price correction", []orderLine{{"3001", "paid", "SKU-A", "2", "8.00"}, {"3001", "paid", "SKU-B", "1", "5.50"}},
			0, 0, "PENDING", "21.50", pipeline.CorrectAmount, pipeline.CorrectionApplied, pipeline.StateAccepted},
		{"test order found after acceptance", order3001("test"), 0, 0, "REVERSED", "25.50", pipeline.CorrectReversal, pipeline.CorrectionApplied, pipeline.StateAccepted},
		{"too late", []orderLine{{"3001", "paid", "SKU-A", "1", "10.00"}, {"3001", "paid", "SKU-B", "1", "5.50"}},
			30 * 24 * time.Hour, exitAttention, "APPROVED", "25.50", pipeline.CorrectItems, pipeline.CorrectionTooLate, pipeline.StateChanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := corrWorkspace(t, sim.Config{})
			writeExport(t, w, "orders_1.csv", order3001("paid"))
			w.mustRun(0)
			w.sim.Advance(time.Minute + tt.advance)
			writeExport(t, w, "orders_2.csv", tt.second)
			r := w.mustRun(tt.code, "--corrections")
			a := action(t, w, "berlin-3001")
			if a["State"] != tt.state || a["Amount"] != tt.amount {
				t.Fatalf("impact's action %v, want %s %s\n%s", a, tt.state, tt.amount, r)
			}
			cs, e := ledgerCorrections(t, w, "berlin-3001")
			if len(cs) != 1 || cs[0].Kind != tt.kind || cs[0].State != tt.corr || e.State != tt.entry {
				t.Fatalf("ledger: corrections %+v, entry %s\n%s", cs, e.State, r)
			}
			if n := len(w.sim.Modifications()); (tt.corr == pipeline.CorrectionApplied) != (n == 1) {
				t.Fatalf("%d modifications taken", n)
			}
			refused := 0
			for _, q := range w.sim.Requests() {
				if q.Method == http.MethodPut && q.Status == http.StatusBadRequest {
					refused++
				}
			}
			if (tt.corr == pipeline.CorrectionTooLate) != (refused == 1) {
				t.Fatalf("%d PUTs refused: a locking date unknown is sent, and impact's refusal recorded", refused)
			}
			if tt.corr == pipeline.CorrectionTooLate && (cs[0].PaidInError != "10.00" || !strings.Contains(r.stdout, "10.00 EUR paid in error")) {
				t.Fatalf("too late without the amount paid in error: %+v\n%s", cs[0], r)
			}
			if !strings.Contains(r.stdout, "corrections — 1 written") {
				t.Fatalf("the run does not report its correction:\n%s", r)
			}
			// A third run (the objects are unchanged) changes nothing more.
			w.mustRun(0, "--corrections")
			if cs2, _ := ledgerCorrections(t, w, "berlin-3001"); len(cs2) != 1 || len(w.sim.Modifications()) > 1 {
				t.Fatalf("the correction was made again: %+v", cs2)
			}
			show := w.exec("ledger", "show", "berlin-3001", "--ledger", w.ledger)
			if !strings.Contains(show.stdout, "history of 12345/berlin-3001") || !strings.Contains(show.stdout, string(tt.corr)) {
				t.Fatalf("ledger show:\n%s", show)
			}
		})
	}
}

// TestCancelledWithoutCorrections is the bug the corrections fix: an
// accepted order later cancelled was "1 skipped, OK, exit 0". Now the run
// says it needs a reversal (exit 3), plan shows it, apply makes it.
func TestCancelledWithoutCorrections(t *testing.T) {
	w := corrWorkspace(t, sim.Config{})
	writeExport(t, w, "orders_1.csv", order3001("paid"))
	w.mustRun(0)
	w.sim.Advance(time.Minute)
	writeExport(t, w, "orders_2.csv", order3001("cancelled"))
	r := w.mustRun(exitAttention)
	for _, want := range []string{"need a reversal", "corrections plan", "1 planned"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the run's summary lacks %q:\n%s", want, r)
		}
	}
	if len(w.sim.Modifications()) != 0 {
		t.Fatal("a correction was sent without --corrections")
	}
	p := w.exec("corrections", "plan", "--ledger", w.ledger)
	for _, want := range []string{"12345/berlin-3001  #1 full reversal: planned", "accepted  25.50 EUR: SKU-A 2 × 10.00, SKU-B 1 × 5.50",
		"request   DELETE /Advertisers/{AccountSID}/Actions  ActionTrackerId=12345&DispositionCode=ORDER_ERROR&OrderId=berlin-3001"} {
		if !strings.Contains(p.stdout, want) {
			t.Errorf("corrections plan lacks %q:\n%s", want, p)
		}
	}
	ap := w.exec("corrections", "apply", "--config", w.config)
	if ap.code != 0 || action(t, w, "berlin-3001")["State"] != "REVERSED" {
		t.Fatalf("corrections apply:\n%s", ap)
	}
	results, _ := filepath.Glob(w.ledger + ".results-*.csv")
	found := false
	for _, f := range results {
		if strings.Contains(readFile(t, f), "correction reversal: applied") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no results file has the correction's line: %v", results)
	}
}

// TestMassChangeGuard: a change that touches every accepted order (here
// every price) corrects nothing and stops with an error saying why and
// how to override; the override applies them.
func TestMassChangeGuard(t *testing.T) {
	w := corrWorkspace(t, sim.Config{})
	var first, second []orderLine
	for i := range 12 {
		id := fmt.Sprint(4000 + i)
		first = append(first, orderLine{id, "paid", "SKU-A", "1", "10.00"})
		second = append(second, orderLine{id, "paid", "SKU-A", "1", "9.00"})
	}
	writeExport(t, w, "orders_1.csv", first)
	w.mustRun(0)
	w.sim.Advance(time.Minute)
	writeExport(t, w, "orders_2.csv", second)
	r := w.mustRun(exitFatal, "--corrections")
	for _, want := range []string{"12 of the 12 accepted orders", "nothing was corrected", "--max-share 100%"} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("the guard's error lacks %q:\n%s", want, r)
		}
	}
	if n := len(w.sim.Modifications()); n != 0 {
		t.Fatalf("%d corrections sent past the guard", n)
	}
	if r := w.exec("corrections", "apply", "--config", w.config); r.code != exitFatal {
		t.Fatalf("apply without the override:\n%s", r)
	}
	if r := w.exec("corrections", "apply", "--config", w.config, "--max-share", "100%"); r.code != 0 || len(w.sim.Modifications()) != 12 {
		t.Fatalf("apply with the override: %d modifications\n%s", len(w.sim.Modifications()), r)
	}
	if a := action(t, w, "berlin-4003"); a["Amount"] != "9.00" {
		t.Fatalf("action after the override: %v", a)
	}
}

// TestCorrectionOfAnOrderWithoutLines: an order accepted before the
// ledger kept what impact accepted (its lines removed here, as in a
// ledger migrated from schema version 2) that changes later is a manual
// correction with what is known; nothing is sent.
func TestCorrectionOfAnOrderWithoutLines(t *testing.T) {
	w := corrWorkspace(t, sim.Config{})
	writeExport(t, w, "orders_1.csv", order3001("paid"))
	w.mustRun(0)
	db, err := sql.Open("sqlite", w.ledger)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM order_lines`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	w.sim.Advance(time.Minute)
	writeExport(t, w, "orders_2.csv", []orderLine{{"3001", "paid", "SKU-A", "1", "10.00"}, {"3001", "paid", "SKU-B", "1", "5.50"}})
	r := w.mustRun(exitAttention, "--corrections")
	if n := len(w.sim.Modifications()); n != 0 {
		t.Fatalf("%d corrections sent for an order whose accepted values are unknown", n)
	}
	cs, e := ledgerCorrections(t, w, "berlin-3001")
	if len(cs) != 1 || cs[0].State != pipeline.CorrectionManual || e.State != pipeline.StateChanged || cs[0].After != "15.50" {
		t.Fatalf("ledger: %+v, entry %s\n%s", cs, e.State, r)
	}
	p := w.exec("corrections", "plan", "--ledger", w.ledger)
	for _, want := range []string{"needs a manual correction", "unknown (accepted before convpipe kept amounts)", "the order's amount is now 15.50 EUR", "1 need a person"} {
		if !strings.Contains(p.stdout, want) {
			t.Errorf("corrections plan lacks %q:\n%s", want, p)
		}
	}
	if p.code != exitAttention {
		t.Errorf("corrections plan: exit %d, want %d", p.code, exitAttention)
	}
}

// TestCorrectionOfATrackedOrder: an order a reconcile found tracked, then
// returned in part and later cancelled, is corrected and reversed like an
// accepted one; and where the locking date the reconcile learned has
// passed, a correction is too late without a request being spent.
func TestCorrectionOfATrackedOrder(t *testing.T) {
	// tracked runs the first night and a reconcile; the simulator's
	// actions lock lockAfter after their event date (a day ago).
	tracked := func(t *testing.T, lockAfter time.Duration) *workspace {
		w := corrWorkspace(t, sim.Config{LockAfter: lockAfter})
		writeExport(t, w, "orders_1.csv", order3001("paid"))
		w.mustRun(0)
		w.sim.Advance(2 * time.Hour)
		if r := w.exec("reconcile", "--config", w.config, "--settle", "1ns"); r.code != 0 {
			t.Fatalf("reconcile:\n%s", r)
		}
		if _, e := ledgerCorrections(t, w, "berlin-3001"); e.State != pipeline.StateTracked || e.Reconciled == nil || e.Reconciled.LockingDate.IsZero() {
			t.Fatalf("after reconcile: %s %+v, want tracked with a locking date", e.State, e.Reconciled)
		}
		return w
	}
	partial := []orderLine{{"3001", "paid", "SKU-A", "1", "10.00"}, {"3001", "paid", "SKU-B", "1", "5.50"}}

	t.Run("corrected, then reversed", func(t *testing.T) {
		w := tracked(t, 20*24*time.Hour)
		writeExport(t, w, "orders_2.csv", partial)
		r := w.mustRun(0, "--corrections", "--no-reconcile")
		if a := action(t, w, "berlin-3001"); a["Amount"] != "15.50" || a["State"] != "PENDING" {
			t.Fatalf("impact's action after the partial return of a tracked order: %v\n%s", a, r)
		}
		writeExport(t, w, "orders_3.csv", order3001("cancelled"))
		r = w.mustRun(0, "--corrections", "--no-reconcile")
		cs, _ := ledgerCorrections(t, w, "berlin-3001")
		if a := action(t, w, "berlin-3001"); a["State"] != "REVERSED" || len(cs) != 2 || cs[1].State != pipeline.CorrectionApplied {
			t.Fatalf("the cancellation of a tracked order: action %v, corrections %+v\n%s", a, cs, r)
		}
	})
	t.Run("cancelled while tracked", func(t *testing.T) {
		w := tracked(t, 20*24*time.Hour)
		writeExport(t, w, "orders_2.csv", order3001("cancelled"))
		r := w.mustRun(0, "--corrections", "--no-reconcile")
		cs, _ := ledgerCorrections(t, w, "berlin-3001")
		if a := action(t, w, "berlin-3001"); a["State"] != "REVERSED" || len(cs) != 1 || cs[0].Kind != pipeline.CorrectReversal {
			t.Fatalf("the cancellation of a tracked order: action %v, corrections %+v\n%s", a, cs, r)
		}
	})
	t.Run("past the locking date", func(t *testing.T) {
		w := tracked(t, 12*time.Hour) // locked 12 hours ago
		writeExport(t, w, "orders_2.csv", partial)
		before := len(w.sim.Requests())
		r := w.mustRun(exitAttention, "--corrections", "--no-reconcile")
		cs, _ := ledgerCorrections(t, w, "berlin-3001")
		if len(cs) != 1 || cs[0].State != pipeline.CorrectionTooLate || cs[0].PaidInError != "10.00" {
			t.Fatalf("a correction past the locking date: %+v\n%s", cs, r)
		}
		for _, q := range w.sim.Requests()[before:] {
			if q.Method == http.MethodPut || q.Method == http.MethodDelete {
				t.Fatalf("a %s was sent past the locking date the reconcile learned", q.Method)
			}
		}
	})
}
