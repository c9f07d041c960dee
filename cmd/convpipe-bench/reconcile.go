package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"convpipe/pipeline"
	"convpipe/pipeline/reconcile"
	"convpipe/sim"
	"convpipe/sinks"
)

const (
	reconcileN    = 10000
	reconcileDays = 30
)

// reconcileCase is one measured reconcile: the requests it made, and the
// requests one lookup per conversion made for the same conversions.
type reconcileCase struct {
	name                string
	errorRate           float64
	report              reconcile.Report
	requests, naive     int
	tracked, notTracked int
}

// reconcileCost is figure 9: what reconciling 10,000 accepted conversions
// with event dates over 30 days costs against the simulator (over
// loopback HTTP, requests counted by the simulator), all tracked and with
// 3% processing errors, beside the naive floor of one submission lookup
// per conversion, measured in the same run.
func (b *bench) reconcileCost() error {
	sec := &section{Title: "9. Reconcile: requests per accepted conversion"}
	sec.Text = append(sec.Text, fmt.Sprintf(
		"The simulator (in this process) holds %s accepted conversions of one campaign, event dates spread over %d days, processed. "+
			"`reconcile.Run` (pipeline/reconcile) lists their actions through the sink (`ListActions`, pages of 20,000 over event-date windows of at most 45 days) and looks up only the submissions not found; "+
			"the floor looks up every submission (`LookupSubmission`), one request each. Requests are counted at the simulator.", fmtInt(reconcileN), reconcileDays))
	sec.Table = [][]string{{"case", "reconcile requests", "listing pages", "lookups", "tracked", "not tracked", "one lookup each", "ratio"}}
	for _, c := range []*reconcileCase{{name: "all tracked"}, {name: "3% processing errors", errorRate: 0.03}} {
		if err := b.reconcileRun(c); err != nil {
			return err
		}
		sec.Table = append(sec.Table, []string{c.name, fmtInt(int64(c.requests)), fmtInt(int64(c.report.ListRequests)), fmtInt(int64(c.report.Lookups)),
			fmtInt(int64(c.tracked)), fmtInt(int64(c.notTracked)), fmtInt(int64(c.naive)), fmt.Sprintf("%.0f×", float64(c.naive)/float64(c.requests))})
		target, ok := "≤ 25 requests", c.requests <= 25
		if c.errorRate > 0 {
			target, ok = "≤ 25 + one per conversion not tracked", c.requests <= 25+c.notTracked
		}
		b.report.add(verdict{
			Figure:   fmt.Sprintf("Reconcile %s accepted conversions over %d days of event dates, %s", fmtInt(reconcileN), reconcileDays, c.name),
			Measured: fmt.Sprintf("%d requests (%d not tracked)", c.requests, c.notTracked), Target: target, Met: met(ok && c.tracked+c.notTracked == reconcileN),
			Why: fmt.Sprintf("one lookup per conversion: %s requests (%.0f× more)", fmtInt(int64(c.naive)), float64(c.naive)/float64(c.requests)),
		})
	}
	sec.After = append(sec.After, "See docs/reconcile.md for how the listings and lookups are chosen.")
	b.report.section(sec)
	return nil
}

// reconcileRun measures one case.
func (b *bench) reconcileRun(c *reconcileCase) error {
	const token = "bench-token"
	s := sim.New(sim.Config{AuthToken: token, Seed: 9, Processing: sim.Processing{ErrorRate: c.errorRate}})
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer s.Close()
	sink, err := sinks.NewWithCredentials(sinks.Config{BaseURL: base, Rate: "100000/s", Burst: 50, Workers: 4},
		sinks.Credentials{AccountSID: s.AccountSID(), AuthToken: token}, "bench", slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer sink.Close()
	cs, err := reconcileFixture(s)
	if err != nil {
		return err
	}
	s.Advance(2 * time.Hour)
	ctx := context.Background()
	before := simGets(s)
	c.report, err = reconcile.Run(ctx, sink, cs, s.Now(), reconcile.Options{})
	if err != nil {
		return err
	}
	c.requests = simGets(s) - before
	c.tracked, c.notTracked = c.report.Count(reconcile.Tracked), c.report.Count(reconcile.NotTracked)
	before = simGets(s)
	for _, cv := range cs {
		if _, err := sink.LookupSubmission(ctx, cv.QueuedURI); err != nil {
			return err
		}
	}
	c.naive = simGets(s) - before
	b.logf("reconcile, %s: %d requests (%d pages, %d lookups) against %d", c.name, c.requests, c.report.ListRequests, c.report.Lookups, c.naive)
	return nil
}

// reconcileFixture records the accepted conversions at the simulator.
func reconcileFixture(s *sim.Server) ([]reconcile.Conversion, error) {
	now := time.Now().Truncate(time.Second)
	step := reconcileDays * 24 * time.Hour / reconcileN
	cs := make([]reconcile.Conversion, reconcileN)
	for i := range cs {
		id := fmt.Sprintf("B-%06d", i)
		ed := now.Add(-reconcileDays * 24 * time.Hour).Add(time.Duration(i) * step)
		v := url.Values{"EventTypeId": {"12345"}, "ClickId": {"click-" + id}, "EventDate": {ed.UTC().Format(time.RFC3339)},
			"CampaignId": {"1000"}, "OrderId": {id}, "CurrencyCode": {"EUR"}, "OrderSubTotalPostDiscount": {"10.00"}}
		uri, err := s.Submit(v)
		if err != nil {
			return nil, err
		}
		cs[i] = reconcile.Conversion{Key: pipeline.Key{EventType: "12345", OrderID: id}, CampaignID: "1000", EventDate: ed, AcceptedAt: now, QueuedURI: uri}
	}
	return cs, nil
}

// simGets counts the GET requests the simulator saw.
func simGets(s *sim.Server) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method == http.MethodGet {
			n++
		}
	}
	return n
}
