package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"convpipe/pipeline"
)

// agedExport writes an export of one-line orders dated daysAgo[i] days
// before now (Berlin wall time, as samples/gen writes it), ids o1, o2….
func agedExport(t *testing.T, path string, daysAgo ...int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("order_id,store,created_at,status,customer_id,email,click_id,promo_code,currency,sku,product_name,category,quantity,unit_price,discount\n")
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(berlin)
	for i, d := range daysAgo {
		at := now.AddDate(0, 0, -d).Add(-time.Hour).Format("2006-01-02 15:04:05")
		fmt.Fprintf(&b, "o%d,online,%s,paid,C1,c1@example.com,clk%d,,EUR,SKU1,Anvil,tools,1,10.00,0\n", i+1, at, i+1)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAgeGuard: an order older than mapping.max_event_age (88 days by
// default) is recorded invalid with its date and age and not sent; plan
// shows the ages and warns; --allow-old sends them for one run.
func TestAgeGuard(t *testing.T) {
	w := newWorkspace(t, simOpts{}, cfgOpts{MaxEventAge: "88d"})
	agedExport(t, w.path("in/orders.csv"), 2, 40, 87, 100, 400, 12000)

	r := w.exec("plan", "--config", w.config)
	if r.code != exitOK ||
		!strings.Contains(r.stdout, "event dates    of those to send: 1 under 7 days old, 0 7-30 days, 2 30-88 days, 0 88-398 days, 0 older") ||
		!strings.Contains(r.stdout, "WARNING        3 orders older than mapping.max_event_age (88d) are invalid, not sent") {
		t.Fatalf("plan does not show the ages and the warning:\n%s", r)
	}
	r = w.mustRun(exitAttention)
	if n := len(w.sim.Accepted()); n != 3 {
		t.Fatalf("the simulator accepted %d orders, want the 3 within 88 days\n%s", n, r)
	}
	es := w.export()
	if got := countState(es, pipeline.StateInvalid); got != 3 {
		t.Fatalf("%d invalid entries, want 3", got)
	}
	for _, e := range es {
		if e.State != pipeline.StateInvalid {
			continue
		}
		if len(e.Messages) != 1 || !strings.Contains(e.Messages[0].Text, "days ago, older than max_event_age 88d: impact would re-date it") {
			t.Errorf("%s: messages %+v, want the date, the age and the reason", e.Key, e.Messages)
		}
	}
	if !strings.Contains(r.stdout, "3 invalid") {
		t.Errorf("the summary does not count the old orders as invalid:\n%s", r.stdout)
	}

	w.mustRun(exitOK, "--allow-old", "--all")
	if n := len(w.sim.Accepted()); n != 6 {
		t.Fatalf("with --allow-old the simulator has %d orders, want 6", n)
	}
}

// TestEventWindow: --events-since/--events-until select orders by their
// EventDate; the others are counted, neither sent nor recorded nor a
// problem, and a later run without the window sends them.
func TestEventWindow(t *testing.T) {
	w := newWorkspace(t, simOpts{}, cfgOpts{MaxEventAge: "88d"})
	agedExport(t, w.path("in/orders.csv"), 2, 35, 40, 60, 400)
	day := func(d int) string { return time.Now().UTC().AddDate(0, 0, -d).Format(time.DateOnly) }

	r := w.mustRun(exitOK, "--events-since", day(50), "--events-until", day(30), "--summary-json", "s.json")
	if n := len(w.sim.Accepted()); n != 2 {
		t.Fatalf("the simulator accepted %d orders, want the 2 in the window\n%s", n, r)
	}
	s := readSummary(t, w.path("s.json"))
	if s.Total.OutsideWindow != 3 || s.Total.Invalid != 0 || s.Total.Accepted != 2 {
		t.Errorf("summary: %+v; want 3 outside the window (the one older than 88 days among them), none invalid, 2 accepted", s.Total)
	}
	if !strings.Contains(r.stdout, "window    3 orders dated outside --events-since/--events-until") {
		t.Errorf("the summary does not say what was outside the window:\n%s", r.stdout)
	}
	if es := w.export(); len(es) != 2 {
		t.Errorf("the ledger has %d entries, want only the 2 sent: %+v", len(es), es)
	}
	w.mustRun(exitAttention, "--all") // the 400-day-old order is invalid
	if n := len(w.sim.Accepted()); n != 4 {
		t.Errorf("without the window the simulator has %d orders, want 4", n)
	}

	for _, bad := range [][]string{
		{"--events-since", "2026-13-01"},
		{"--events-since", day(10), "--events-until", day(20)},
	} {
		r := w.run(bad...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--events-") {
			t.Errorf("run %v: want exit 2 naming the flag\n%s", bad, r)
		}
	}
}
