package main

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"convpipe/pipeline"
)

// reportStates are the ledger states the report counts, in the order its
// charts stack them, with their colours.
var reportStates = []struct {
	state pipeline.State
	color string
}{
	{pipeline.StateTracked, "#1b5e20"},
	{pipeline.StateAccepted, "#2e7d32"},
	{pipeline.StateNotTracked, "#880e4f"},
	{pipeline.StateRejected, "#c62828"},
	{pipeline.StateFailed, "#ef6c00"},
	{pipeline.StateInvalid, "#6a1b9a"},
	{pipeline.StateChanged, "#1565c0"},
	{pipeline.StateSkipped, "#9e9e9e"},
	{pipeline.StatePending, "#fbc02d"},
}

// reportProblemOrders is how many orders the report lists per problem.
const reportProblemOrders = 20

// reportData is what the HTML report shows, computed by buildReport.
type reportData struct {
	Title          string
	Generated      time.Time
	Since, Until   time.Time
	QuotaPerHour   float64
	Totals         map[pipeline.State]int64
	Days           []string                            // "2026-11-23", ascending
	PerDay         map[string]map[pipeline.State]int64 // day: state: orders
	Hours          []string                            // "2026-11-23 01:00", the hours with answers
	PerHour        map[string]int64                    // hour: conversions answered
	Problems       []reportProblem
	Runs           []pipeline.RunInfo
	Remaining      int64   // orders the last run left for the next (unsent, failed)
	ETAHours       float64 // Remaining at the quota, in hours
	LastRunStopped string  // why the last run stopped early, "" if it did not
}

// reportProblem is one reason orders are not accepted, with the orders.
type reportProblem struct {
	State  pipeline.State
	Reason string
	Count  int
	Orders []string // up to reportProblemOrders, "order (file:line)"
}

// buildReport summarises the entries last written within [since, until)
// and the runs that started within it. quotaPerHour is the account's
// quota (0 when unknown).
func buildReport(entries []pipeline.Entry, runs []pipeline.RunInfo, since, until time.Time, quotaPerHour float64) reportData {
	d := reportData{
		Since: since, Until: until, QuotaPerHour: quotaPerHour,
		Totals: map[pipeline.State]int64{}, PerDay: map[string]map[pipeline.State]int64{}, PerHour: map[string]int64{},
	}
	problems := map[string]*reportProblem{}
	for _, e := range entries {
		if e.Updated.Before(since) || !e.Updated.Before(until) {
			continue
		}
		d.Totals[e.State]++
		day := e.Updated.UTC().Format(time.DateOnly)
		if d.PerDay[day] == nil {
			d.PerDay[day] = map[pipeline.State]int64{}
		}
		d.PerDay[day][e.State]++
		if e.Attempts > 0 && e.State != pipeline.StatePending {
			d.PerHour[e.Updated.UTC().Truncate(time.Hour).Format("2006-01-02 15:04")]++
		}
		addProblem(problems, e)
	}
	d.Days = sortedKeys(d.PerDay)
	d.Hours = sortedKeys(d.PerHour)
	for _, p := range problems {
		d.Problems = append(d.Problems, *p)
	}
	sort.Slice(d.Problems, func(i, j int) bool {
		a, b := d.Problems[i], d.Problems[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.State+pipeline.State(a.Reason) < b.State+pipeline.State(b.Reason)
	})
	for _, r := range runs {
		if !r.Started.Before(since) && r.Started.Before(until) {
			d.Runs = append(d.Runs, r)
		}
	}
	sort.Slice(d.Runs, func(i, j int) bool { return d.Runs[i].Started.Before(d.Runs[j].Started) })
	if n := len(d.Runs); n > 0 && d.Runs[n-1].Summary != nil {
		s := d.Runs[n-1].Summary
		d.Remaining = s.Total.Unsent + s.Total.Failed
		d.LastRunStopped = s.Stopped
		if quotaPerHour > 0 {
			d.ETAHours = float64(d.Remaining) / quotaPerHour
		}
	}
	return d
}

// addProblem counts e under its first message, unless it was accepted or
// skipped (a skip is the mapping's decision, not a problem).
func addProblem(problems map[string]*reportProblem, e pipeline.Entry) {
	switch e.State {
	case pipeline.StateAccepted, pipeline.StateSkipped, pipeline.StatePending, pipeline.StateTracked:
		return
	}
	reason := "(no message)"
	if r := e.Reconciled; e.State == pipeline.StateNotTracked && r != nil {
		reason = r.ErrorReason + ": " + r.Meaning
	} else if len(e.Messages) > 0 {
		m := e.Messages[0]
		reason = m.Text
		if m.Field != "" {
			reason = m.Field + ": " + m.Text
		}
	}
	k := string(e.State) + "\x00" + reason
	p := problems[k]
	if p == nil {
		p = &reportProblem{State: e.State, Reason: reason}
		problems[k] = p
	}
	p.Count++
	if len(p.Orders) < reportProblemOrders {
		o := e.Key.OrderID
		if len(e.Refs) > 0 {
			o += " (" + e.Refs[0].String() + ")"
		}
		p.Orders = append(p.Orders, o)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// barSeries is one stacked series of a bar chart.
type barSeries struct {
	Name   string
	Color  string
	Values []float64
}

// svgBars renders a stacked bar chart as inline SVG: one bar per label,
// an optional horizontal limit line (0: none). Each bar segment is a
// rect.bar with its value in data-value; the chart is an svg.chart.
func svgBars(title string, labels []string, series []barSeries, limit float64) template.HTML {
	const w, h, left, bottom, top = 900.0, 260.0, 50.0, 40.0, 20.0
	maxV := limit
	for i := range labels {
		sum := 0.0
		for _, s := range series {
			sum += s.Values[i]
		}
		maxV = math.Max(maxV, sum)
	}
	if maxV == 0 {
		maxV = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" role="img" aria-label="%s" viewBox="0 0 %.0f %.0f" width="100%%" data-bars="%d">`,
		template.HTMLEscapeString(title), w, h, len(labels))
	plotH := h - bottom - top
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#555"/>`, left, h-bottom, w, h-bottom)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11" text-anchor="end">%s</text>`, left-4, top+4, formatCount(maxV))
	slot := (w - left) / math.Max(1, float64(len(labels)))
	barW := math.Min(slot*0.8, 48)
	for i, l := range labels {
		y := h - bottom
		x := left + float64(i)*slot + (slot-barW)/2
		for _, s := range series {
			v := s.Values[i]
			if v == 0 {
				continue
			}
			bh := v / maxV * plotH
			y -= bh
			fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" data-value="%g"><title>%s %s: %s</title></rect>`,
				x, y, barW, bh, s.Color, v, template.HTMLEscapeString(l), template.HTMLEscapeString(s.Name), formatCount(v))
		}
		if len(labels) <= 31 || i%(len(labels)/15+1) == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" font-size="10" text-anchor="middle">%s</text>`, x+barW/2, h-bottom+14, template.HTMLEscapeString(shortLabel(l)))
		}
	}
	if limit > 0 {
		ly := h - bottom - limit/maxV*plotH
		fmt.Fprintf(&b, `<line class="limit" x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#c62828" stroke-dasharray="6 4"/><text x="%.0f" y="%.1f" font-size="11" fill="#c62828" text-anchor="end">quota %s/h</text>`,
			left, ly, w, ly, w-4, ly-4, formatCount(limit))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// shortLabel drops the year of a day or hour label.
func shortLabel(l string) string {
	if len(l) >= 10 && l[4] == '-' {
		return l[5:]
	}
	return l
}

func formatCount(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// charts renders the report's charts.
func (d reportData) charts() map[string]template.HTML {
	var perDay []barSeries
	for _, st := range reportStates {
		s := barSeries{Name: string(st.state), Color: st.color}
		for _, day := range d.Days {
			s.Values = append(s.Values, float64(d.PerDay[day][st.state]))
		}
		perDay = append(perDay, s)
	}
	hours := d.Hours
	if len(hours) > 72 {
		hours = hours[len(hours)-72:]
	}
	perHour := barSeries{Name: "answered", Color: "#1565c0"}
	for _, h := range hours {
		perHour.Values = append(perHour.Values, float64(d.PerHour[h]))
	}
	runs := barSeries{Name: "requests", Color: "#455a64"}
	var runLabels []string
	for _, r := range d.Runs {
		v := 0.0
		if r.Summary != nil {
			v = float64(r.Summary.Total.Requests)
		}
		runs.Values = append(runs.Values, v)
		runLabels = append(runLabels, r.Started.UTC().Format("2006-01-02 15:04"))
	}
	return map[string]template.HTML{
		"perDay":  svgBars("Orders per day by outcome", d.Days, perDay, 0),
		"perHour": svgBars("Conversions answered per hour against the quota", hours, []barSeries{perHour}, d.QuotaPerHour),
		"runs":    svgBars("Requests per run", runLabels, []barSeries{runs}, 0),
	}
}

// writeHTMLReport writes d as one self-contained HTML page: inline CSS
// and SVG, a script that only checks the charts, and a Content Security
// Policy that forbids every load from elsewhere.
func writeHTMLReport(w io.Writer, d reportData) error {
	return reportTemplate.Execute(w, struct {
		reportData
		Charts map[string]template.HTML
		States []pipeline.State
		Colors map[pipeline.State]string
	}{d, d.charts(), reportStateNames(), reportColors()})
}

func reportStateNames() []pipeline.State {
	var s []pipeline.State
	for _, st := range reportStates {
		s = append(s, st.state)
	}
	return s
}

func reportColors() map[pipeline.State]string {
	m := map[pipeline.State]string{}
	for _, st := range reportStates {
		m[st.state] = st.color
	}
	return m
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"day":   func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
	"stamp": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"hours": func(h float64) string { return humanDuration(time.Duration(h * float64(time.Hour))) },
	"css":   func(s string) template.CSS { return template.CSS(s) },
}).Parse(reportHTML))

// reportHTML is the page's template.
//
//go:embed report.html.tmpl
var reportHTML string
