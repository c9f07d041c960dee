package main

import (
	"fmt"
	"io"
	"time"
)

// batchProcessing is how long impact takes to process a batch file: its
// documentation says "typically within 24 hours".
const batchProcessing = 24 * time.Hour

// wayInput is what plan knows when it chooses the way of sending.
type wayInput struct {
	// toSend are the orders to send; batchable those a batch file can
	// carry (dated within 88 days); apiOnly the others.
	toSend, batchable, apiOnly int64
	// heldOld are the orders the age guard keeps back (--allow-old would
	// send them, through the API only).
	heldOld int64
	// perSecond is the account's quota; rate as configured.
	perSecond float64
	rate      string
	perFile   int
}

// wayPlan is plan's choice of the way, with its reasons.
type wayPlan struct {
	API   time.Duration // sending everything through the API
	Files int           // batch files for the batchable orders
	// Way is "api", "batch" or "" (nothing to send); Why says why, and
	// Also what the other way must still carry.
	Way, Why, Also string
}

// chooseWay chooses between the API and batch files (pure): the API when
// it is done before impact would typically have processed a file (its
// answers come at once, a file's within 24 hours), or when no order can
// go in a file; batch files otherwise, the orders a file cannot carry
// left to the API.
func chooseWay(in wayInput) wayPlan {
	var p wayPlan
	if in.toSend == 0 {
		return p
	}
	if in.perSecond > 0 {
		p.API = time.Duration(float64(in.toSend) / in.perSecond * float64(time.Second))
	}
	per := int64(max(in.perFile, 1))
	p.Files = int((in.batchable + per - 1) / per)
	switch {
	case in.batchable == 0:
		p.Way, p.Why = "api", "no order to send is recent enough for a batch file (88 days)"
	case p.API <= batchProcessing:
		p.Way, p.Why = "api", fmt.Sprintf("the API is done in about %s at %s, before impact would typically have processed a batch file (within 24 hours), and answers each order at once", humanDuration(p.API), in.rate)
	default:
		p.Way, p.Why = "batch", fmt.Sprintf("the API would take about %s at %s; %d batch files go up in minutes and impact typically processes them within 24 hours", humanDuration(p.API), in.rate, p.Files)
		if in.apiOnly > 0 {
			p.Also = fmt.Sprintf("%d orders older than 88 days cannot go in a batch file: send them with --via api afterwards (about %s)", in.apiOnly,
				humanDuration(time.Duration(float64(in.apiOnly)/in.perSecond*float64(time.Second))))
		}
	}
	if in.heldOld > 0 {
		p.Also += fmt.Sprintf("%s%d orders older than mapping.max_event_age are held back: only the API can carry them, and only with --allow-old", sep(p.Also), in.heldOld)
	}
	return p
}

func sep(s string) string {
	if s == "" {
		return ""
	}
	return "; "
}

// print writes the choice.
func (p wayPlan) print(w io.Writer) {
	if p.Way == "" {
		return
	}
	fmt.Fprintf(w, "  the API        about %s (one request per order, no retries)\n", humanDuration(p.API))
	files := "files"
	if p.Files == 1 {
		files = "file"
	}
	fmt.Fprintf(w, "  batch files    %d %s: upload in minutes, then impact's processing, typically within 24 hours; orders older than 88 days: API only\n", p.Files, files)
	fmt.Fprintf(w, "  recommended    --via %s: %s\n", p.Way, p.Why)
	if p.Also != "" {
		fmt.Fprintf(w, "  also           %s\n", p.Also)
	}
}

// wayInput is what the ages counted say for chooseWay: the orders under
// 88 days can go in a batch file.
func (a *ageCounts) wayInput(toSend int64, perSecond float64, cfg Config) wayInput {
	b := a.buckets
	batchable := b[0] + b[1] + b[2]
	return wayInput{toSend: toSend, batchable: batchable, apiOnly: toSend - batchable, heldOld: a.tooOld,
		perSecond: perSecond, rate: cfg.Sink.Rate, perFile: cfg.Sink.Batch.WithDefaults().PerFile}
}
