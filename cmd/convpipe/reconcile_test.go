package main

import (
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"convpipe/ledger"
	"convpipe/pipeline"
	"convpipe/sim"
	"convpipe/sinks"
)

// getsAt counts the GET requests the simulator saw (the reads of
// reconciling: listings and lookups).
func getsAt(s *sim.Server) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method == http.MethodGet {
			n++
		}
	}
	return n
}

// TestReconcileOutcomes (issue 14, point 6): about 5,000 orders (5,800
// generated, the cancelled ones left out) over real HTTP,
// 3% failing impact's processing at random, 1% whose OrderId impact
// already had from another integration (answered QUEUED, then
// CONV_DUPLICATE) and three ambiguous sends convpipe retried (its own
// duplicates). The run's own reconcile finds nothing settled (and reads
// none of it from the ledger); once the
// simulator's clock has moved on, `convpipe reconcile` ends with every
// order tracked or not tracked, none unknown, each not-tracked one with
// the reason of its submission record, in at most 25 requests plus one
// per conversion not tracked. A night with nothing new then exits 0 and
// still shows, and exports as gauges, what is open.
func TestReconcileOutcomes(t *testing.T) {
	w := newWorkspace(t, simOpts{cfg: sim.Config{CompleteAfter: 10 * time.Minute, Seed: 14,
		Processing: sim.Processing{ErrorRate: 0.03}}}, cfgOpts{Rate: "5000/s", Workers: 8})
	start := time.Now().UTC().AddDate(0, 0, -30).Format(time.DateOnly)
	want := expectCSV(t, w.gen("in/orders.csv", "-orders", "5800", "-seed", "14", "-start", start))
	alien := preSubmitAliens(t, w, want)
	w.sim.DropNext(3, true) // three sends recorded, their answers lost

	sum := filepath.Join(w.dir, "run.json")
	r := w.run("--summary-json", sum)
	if r.code != exitOK && r.code != exitAttention {
		t.Fatalf("run: %s", r)
	}
	if s := readSummary(t, sum); s.Reconcile == nil || s.Reconcile.Requests != 0 || s.Reconcile.Considered != 0 {
		t.Fatalf("the run's reconcile, before anything settled: %+v", s.Reconcile)
	}
	if n := getsAt(w.sim); n != 0 {
		t.Fatalf("the run's reconcile made %d requests before anything settled", n)
	}

	// impact processes the submissions; on convpipe's side, the settle
	// time is then only a nanosecond.
	w.sim.Advance(2 * time.Hour)
	before := getsAt(w.sim)
	sum = filepath.Join(w.dir, "reconcile.json")
	prom := filepath.Join(w.dir, "reconcile.prom")
	rr := w.exec("reconcile", "--config", w.config, "--settle", "1ns", "--summary-json", sum, "--metrics-file", prom)
	requests := getsAt(w.sim) - before
	if rr.code != exitAttention {
		t.Fatalf("reconcile: want exit 3 (conversions not tracked)\n%s", rr)
	}
	rs := readSummary(t, sum).Reconcile
	notTracked := checkReconciled(t, w, want, alien)
	if rs == nil || rs.Tracked+rs.NotTracked != int64(len(want.valid)) || rs.Unknown != 0 || rs.NotTracked != int64(notTracked) || rs.Requests != int64(requests) {
		t.Fatalf("summary %+v; the ledger has %d not tracked, the simulator saw %d requests", rs, notTracked, requests)
	}
	if budget := 25 + notTracked; requests > budget {
		t.Errorf("reconciling %d conversions took %d requests, over the budget of %d (25 and one per conversion not tracked)", len(want.valid), requests, budget)
	}
	if !strings.Contains(rr.stdout, "not tracked") || !strings.Contains(rr.stdout, "CONV_DUPLICATE") {
		t.Errorf("the summary names no conversion not tracked with its reason:\n%s", rr.stdout)
	}
	checkGauge(t, prom, `convpipe_last_run_reconciled{verdict="not_tracked"}`, notTracked)
	checkGauge(t, prom, `convpipe_last_run_reconciled{verdict="unknown"}`, 0)
	t.Logf("%d orders: %d tracked, %d not tracked (%d from another integration), in %d requests (%d listing pages, %d lookups) against %d for one lookup each",
		len(want.valid), rs.Tracked, rs.NotTracked, len(alien), requests, rs.ListRequests, rs.Lookups, len(want.valid))

	// A night with nothing new: exit 0, the open problems shown and
	// exported.
	prom = filepath.Join(w.dir, "night.prom")
	night := w.run("--metrics-file", prom)
	if night.code != exitOK {
		t.Fatalf("a night with nothing new: want exit 0\n%s", night)
	}
	if !regexp.MustCompile(`open +in the ledger.*\b`+strconv.Itoa(notTracked)+` not_tracked since \d{4}-\d\d-\d\d`).MatchString(night.stdout) ||
		!strings.Contains(night.stdout, "--state not_tracked") {
		t.Errorf("the night's summary does not show what is open:\n%s", night.stdout)
	}
	checkGauge(t, prom, `convpipe_open_problems{state="not_tracked"}`, notTracked)
	checkGauge(t, prom, `convpipe_open_problems{state="rejected"}`, 0)
	if !strings.Contains(readFile(t, prom), `convpipe_open_problem_oldest_timestamp_seconds{state="not_tracked"}`) {
		t.Errorf("no oldest-problem gauge for not_tracked:\n%s", readFile(t, prom))
	}
}

// preSubmitAliens records at the simulator, as another integration would
// have, every 100th valid order's OrderId in another campaign, and
// returns those OrderIds.
func preSubmitAliens(t *testing.T, w *workspace, want orders) map[string]bool {
	t.Helper()
	ids := make([]string, 0, len(want.valid))
	for id := range want.valid {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	alien := map[string]bool{}
	for i := 0; i < len(ids); i += 100 {
		v := url.Values{"EventTypeId": {"12345"}, "CampaignId": {"2000"}, "OrderId": {ids[i]}, "ClickId": {"other-" + ids[i]},
			"EventDate": {time.Now().UTC().AddDate(0, 0, -3).Format(time.RFC3339)}, "CurrencyCode": {"EUR"}, "OrderSubTotalPostDiscount": {"10.00"}}
		if _, err := w.sim.Submit(v); err != nil {
			t.Fatal(err)
		}
		alien[ids[i]] = true
	}
	w.sim.Advance(time.Hour) // processed before our sends
	return alien
}

// checkReconciled checks every order's entry: tracked (with an action,
// or a note saying why none is known) or not tracked with the reason its
// submission record gives, read again here; an order whose OrderId
// impact had from another integration is not tracked as CONV_DUPLICATE
// unless that other one failed. It returns the count not tracked.
func checkReconciled(t *testing.T, w *workspace, want orders, alien map[string]bool) int {
	t.Helper()
	cfg := sinks.Config{BaseURL: w.url, Rate: "100000/s", Burst: 50, Workers: 4, MaxAttempts: 3,
		BackoffInitial: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond, RequestTimeout: 5 * time.Second}
	rd, err := sinks.NewWithCredentials(cfg, sinks.Credentials{AccountSID: testSID, AuthToken: testToken}, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	notTracked, dups, seen := 0, 0, 0
	for _, e := range w.export() {
		if !want.valid[e.Key.OrderID] {
			continue
		}
		seen++
		r := e.Reconciled
		switch {
		case r == nil:
			t.Errorf("%s: %s, never reconciled", e.Key, e.State)
		case e.State == pipeline.StateTracked:
			if r.ActionID == "" && r.Note == "" {
				t.Errorf("%s: tracked without an action or a note: %+v", e.Key, r)
			}
		case e.State == pipeline.StateNotTracked:
			notTracked++
			sub, err := rd.LookupSubmission(t.Context(), e.QueuedURI)
			if err != nil || sub.ErrorReason != r.ErrorReason || r.ErrorReason == "" || r.Meaning == "" || strings.Contains(r.Meaning, "not in convpipe's table") {
				t.Errorf("%s: not tracked as %+v; its submission says %+v (%v)", e.Key, r, sub, err)
			}
			if r.ErrorReason == "CONV_DUPLICATE" {
				dups++
				if !alien[e.Key.OrderID] {
					t.Errorf("%s: CONV_DUPLICATE, but no other integration sent it", e.Key)
				}
			}
		default:
			t.Errorf("%s: %s after reconciling: %+v", e.Key, e.State, r)
		}
	}
	if seen != len(want.valid) {
		t.Errorf("%d of the %d valid orders in the ledger", seen, len(want.valid))
	}
	// About 3% of the others fail their processing, and so do not make
	// their OrderId a duplicate.
	if dups < len(alien)*9/10 || dups > len(alien) || notTracked < len(want.valid)*2/100 {
		t.Errorf("%d not tracked, %d as CONV_DUPLICATE of the %d sent by another integration", notTracked, dups, len(alien))
	}
	return notTracked
}

// checkGauge checks that the metrics file at path has the sample name
// (with its labels) at value.
func checkGauge(t *testing.T, path, name string, value int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	line := name + " " + strconv.Itoa(value)
	for _, l := range strings.Split(string(b), "\n") {
		if l == line {
			return
		}
	}
	t.Errorf("%s: no line %q:\n%s", path, line, b)
}

// TestRunReconcilesWithLeftoverQuota: the reconcile step at the end of a
// run takes only what sending left of the quota window: the rest of it,
// or nothing (and says so) when sending used it all.
func TestRunReconcilesWithLeftoverQuota(t *testing.T) {
	// The simulator's quota windows are whole hours: keep the run inside
	// one.
	if left := time.Until(time.Now().Truncate(time.Hour).Add(time.Hour)); left < 30*time.Second {
		time.Sleep(left + time.Second)
	}
	for _, tt := range []struct {
		name  string
		extra int // the quota beyond the orders to send
	}{{"quota left", 5}, {"quota spent", 0}} {
		t.Run(tt.name, func(t *testing.T) {
			probe := t.TempDir()
			p := filepath.Join(probe, "o.csv")
			cmd := exec.Command(genPath, "-orders", "24", "-seed", "3", "-start", genStart, "-out", p)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("gen: %v\n%s", err, b)
			}
			valid := len(expectCSV(t, p).valid)
			tt := struct {
				quota  int
				budget int64
			}{valid + tt.extra, int64(tt.extra)}
			w := newWorkspace(t, simOpts{cfg: sim.Config{Quota: tt.quota, Window: time.Hour, CompleteAfter: -1}},
				cfgOpts{RunExtra: "reconcile:\n  settle: 1ns\n"})
			w.gen("in/orders.csv", "-orders", "24", "-seed", "3")
			sum := filepath.Join(w.dir, "run.json")
			r := w.run("--summary-json", sum)
			if r.code != exitOK {
				t.Fatalf("run: %s", r)
			}
			s := readSummary(t, sum)
			rs, sent := s.Reconcile, posts(w.sim)
			if rs == nil || s.Total.Accepted != int64(sent) || sent != valid {
				t.Fatalf("%d sent; reconcile %+v", sent, rs)
			}
			if gets := getsAt(w.sim); int64(gets) != rs.Requests || sent+gets > tt.quota || rs.Budget != tt.budget {
				t.Fatalf("%d sends and %d reads against a quota of %d; reconcile %+v", sent, gets, tt.quota, rs)
			}
			if tt.budget == 0 {
				if rs.NotRun == "" || !strings.Contains(r.stdout, "reconcile not made") {
					t.Errorf("no reconcile and no word why: %+v\n%s", rs, r.stdout)
				}
				return
			}
			if rs.Considered != int64(sent) || rs.Tracked != rs.Considered || rs.Requests != 1 {
				t.Errorf("with quota left: %+v", rs)
			}
		})
	}
}

// TestReconcileWarnsWhenNoLongerLearnable: a conversion accepted more
// than 90 days ago whose action is not found can no longer be learned
// (impact keeps submission records 90 days): reconcile warns about it by
// key, counts it, records it as final, and does not ask again.
func TestReconcileWarnsWhenNoLongerLearnable(t *testing.T) {
	w := newWorkspace(t, simOpts{}, cfgOpts{})
	l, err := ledger.Open(t.Context(), w.path("ledger", "ledger.db"), ledger.Options{Account: testSID})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().UTC().AddDate(0, 0, -100)
	e := pipeline.Entry{Key: pipeline.Key{EventType: "12345", OrderID: "old-1"}, State: pipeline.StateAccepted, PayloadHash: "h",
		SubmissionID: "SIM99999999", QueuedURI: "/Advertisers/" + testSID + "/APISubmissions/SIM99999999", CampaignID: "1000",
		EventDate: old.Add(-time.Hour), AcceptedAt: old, RunID: "r0"}
	if err := l.Put(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	l.Close()
	sum := filepath.Join(w.dir, "r.json")
	r := w.exec("reconcile", "--config", w.config, "--summary-json", sum)
	if r.code != exitOK {
		t.Fatalf("reconcile: %s", r)
	}
	rs := readSummary(t, sum).Reconcile
	if rs == nil || rs.Expired != 1 || rs.Unknown != 1 || !strings.Contains(r.stderr, "can no longer be learned") ||
		!strings.Contains(r.stderr, "old-1") || !strings.Contains(r.stdout, "WARNING") {
		t.Fatalf("summary %+v\n%s", rs, r)
	}
	got := w.export()
	if len(got) != 1 || got[0].Reconciled == nil || !got[0].Reconciled.Final || got[0].State != pipeline.StateAccepted {
		t.Fatalf("entry after reconciling: %+v", got)
	}
	show := w.exec("ledger", "show", "--ledger", w.ledger, "old-1")
	if show.code != 0 || !strings.Contains(show.stdout, `"reconcile_history"`) || !strings.Contains(show.stdout, "can no longer be learned") {
		t.Errorf("ledger show prints no reconcile history:\n%s", show)
	}
	before := getsAt(w.sim)
	r = w.exec("reconcile", "--config", w.config, "--summary-json", sum)
	if rs := readSummary(t, sum).Reconcile; r.code != exitOK || rs.Considered != 0 || getsAt(w.sim) != before {
		t.Errorf("asked again: %+v, %d requests\n%s", rs, getsAt(w.sim)-before, r)
	}
}

// TestReconcileBudget: while orders are left to send, the end of a run
// takes only reconcile.share of the hourly quota (none by default); once
// all is sent, what the server left, or before it said, the hourly
// quota; never more than reconcile.max_requests.
func TestReconcileBudget(t *testing.T) {
	imp, err := sinks.NewWithCredentials(sinks.Config{BaseURL: "http://127.0.0.1:1", Rate: "1000/h"},
		sinks.Credentials{AccountSID: testSID, AuthToken: testToken}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer imp.Close()
	stopped := pipeline.Summary{Stopped: "deadline reached"}
	unsent := pipeline.Summary{Total: pipeline.Counts{Unsent: 3}}
	for _, tt := range []struct {
		name   string
		s      pipeline.Summary
		share  float64
		max    int
		budget int
	}{
		{"left to send, no share", stopped, 0, 0, 0},
		{"left to send, a tenth", unsent, 0.1, 0, 100},
		{"left to send, a tenth, bounded", stopped, 0.1, 40, 40},
		{"all sent, the window not known", pipeline.Summary{}, 0, 0, 1000},
		{"all sent, bounded", pipeline.Summary{}, 0, 25, 25},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j := &runJob{imp: imp}
			j.cfg.Sink.Rate = "1000/h"
			j.cfg.Reconcile.Share, j.cfg.Reconcile.MaxRequests = tt.share, tt.max
			n, why := j.reconcileBudget(tt.s)
			if n != tt.budget || (n == 0) != (why != "") {
				t.Errorf("budget %d (%q), want %d", n, why, tt.budget)
			}
		})
	}
}

// TestReconcilePostgres: with the ledger in PostgreSQL, the run and
// `convpipe reconcile` record the same: every order tracked or not
// tracked (a campaign without contract), with its history.
func TestReconcilePostgres(t *testing.T) {
	w := newWorkspace(t, simOpts{cfg: sim.Config{Processing: sim.Processing{Campaigns: []string{"1000"}}}}, cfgOpts{})
	w.usePostgres()
	p := w.gen("in/orders.csv", "-orders", "60", "-seed", "9")
	// The orders of the store "online" go to a campaign the simulated
	// account has no contract for.
	cfg := strings.Replace(readFile(t, w.config), `CampaignId: {const: "1000"}`,
		`CampaignId: {column: store, transforms: [{lookup: {online: "2000"}, default: "1000"}]}`, 1)
	if err := os.WriteFile(w.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	want := expectCSV(t, p)
	w.mustRun(exitOK)
	w.sim.Advance(2 * time.Hour)
	if r := w.exec("reconcile", "--config", w.config, "--settle", "1ns"); r.code != exitAttention {
		t.Fatalf("reconcile: want exit 3\n%s", r)
	}
	online := 0
	for _, e := range w.export() {
		if !want.valid[e.Key.OrderID] {
			continue
		}
		isOnline := strings.HasPrefix(e.Key.OrderID, "online-")
		switch {
		case isOnline && (e.State != pipeline.StateNotTracked || e.Reconciled.ErrorReason != "CONTRACT_NOT_FOUND" || e.CampaignID != "2000"):
			t.Errorf("%s: %s %+v", e.Key, e.State, e.Reconciled)
		case !isOnline && (e.State != pipeline.StateTracked || e.Reconciled.ActionID == ""):
			t.Errorf("%s: %s %+v", e.Key, e.State, e.Reconciled)
		}
		if isOnline {
			online++
		}
	}
	if online == 0 {
		t.Fatal("no order of the store online")
	}
}

// TestReconcileStopsAtTheDeadline: a reconcile for which the quota allows
// no further request before the deadline stops early, as sending does: it
// records what it learned, says that it stopped, and exits 0, both as the
// step at the end of `convpipe run` (whose sending had finished) and as
// `convpipe reconcile`. At one request a minute, the bucket holds exactly
// the run's sends: the step's first request would come after the
// deadline; then `convpipe reconcile`'s full bucket lasts for the
// listings and some of the lookups, never all.
func TestReconcileStopsAtTheDeadline(t *testing.T) {
	probe := filepath.Join(t.TempDir(), "o.csv")
	if b, err := exec.Command(genPath, "-orders", "6", "-seed", "5", "-start", genStart, "-out", probe).CombinedOutput(); err != nil {
		t.Fatalf("gen: %v\n%s", err, b)
	}
	valid := len(expectCSV(t, probe).valid)
	// Submissions stay queued: listing finds no action, so every
	// conversion is looked up.
	w := newWorkspace(t, simOpts{cfg: sim.Config{CompleteAfter: 10 * time.Minute}},
		cfgOpts{Rate: "1/m", Burst: valid, RunExtra: "reconcile:\n  settle: 1ns\n"})
	w.gen("in/orders.csv", "-orders", "6", "-seed", "5")
	const outOfTime = "the quota allows no request before the deadline"

	sum := filepath.Join(w.dir, "run.json")
	r := w.run("--max-duration", "30s", "--summary-json", sum)
	if r.code != exitOK {
		t.Fatalf("run: want exit 0 (sending finished; reconcile stopped at the deadline)\n%s", r)
	}
	s := readSummary(t, sum)
	if s.Total.Accepted != int64(valid) || s.Stopped != "" {
		t.Fatalf("sending: %d of %d accepted, stopped %q", s.Total.Accepted, valid, s.Stopped)
	}
	if rs := s.Reconcile; rs == nil || !strings.Contains(rs.Stopped, outOfTime) || rs.Requests != 0 || rs.Considered != int64(valid) {
		t.Fatalf("the run's reconcile: %+v", s.Reconcile)
	}
	if !strings.Contains(r.stdout, "reconcile stopped early: ") || strings.Contains(r.stdout, "FAILED") {
		t.Errorf("the summary does not say the reconcile stopped early:\n%s", r.stdout)
	}

	sum = filepath.Join(w.dir, "reconcile.json")
	rr := w.exec("reconcile", "--config", w.config, "--max-duration", "30s", "--summary-json", sum)
	if rr.code != exitOK {
		t.Fatalf("reconcile: want exit 0 (stopped at the deadline)\n%s", rr)
	}
	rs := readSummary(t, sum).Reconcile
	if rs == nil || !strings.Contains(rs.Stopped, outOfTime) || rs.Requests != int64(valid) || rs.Lookups >= int64(valid) || rs.Unknown != int64(valid) {
		t.Fatalf("convpipe reconcile: want %d requests (the bucket), fewer lookups than conversions, stopped, all unknown: %+v", valid, rs)
	}
	if n := getsAt(w.sim); n != valid {
		t.Errorf("the simulator saw %d reads, the summary says %d", n, valid)
	}
	if !strings.Contains(rr.stdout, "reconcile stopped early: ") {
		t.Errorf("the summary does not say the reconcile stopped early:\n%s", rr.stdout)
	}
	// Nothing was learned: every conversion stays accepted, for the next
	// reconcile.
	if n := countState(w.export(), pipeline.StateAccepted); n != valid {
		t.Errorf("%d entries accepted after the stopped reconcile, want %d (still unknown)", n, valid)
	}
}
