package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	"github.com/prometheus/common/expfmt"

	"convpipe/pipeline"
)

// The metrics of a run. A run is a batch job: each figure describes the
// last run, so they are gauges named convpipe_last_run_* (the pattern of
// client_golang's own push example), not counters, and carry no _total
// (promlint rejects _total on a gauge). Times are in seconds.
const (
	metricFinished    = "convpipe_last_run_timestamp_seconds"
	metricDuration    = "convpipe_last_run_duration_seconds"
	metricExitCode    = "convpipe_last_run_exit_code"
	metricStopped     = "convpipe_last_run_stopped_early"
	metricFileErrors  = "convpipe_last_run_file_errors"
	metricOrders      = "convpipe_last_run_orders"
	metricRows        = "convpipe_last_run_rows"
	metricRowErrors   = "convpipe_last_run_row_errors"
	metricRequests    = "convpipe_last_run_requests"
	metricBuildInfo   = "convpipe_build_info"
	pushJob           = "convpipe"
	pushAccountLabel  = "account"
	pushTimeout       = 30 * time.Second
	metricOutcomeName = "outcome"
)

// orderOutcomes are the values of convpipe_last_run_orders' outcome
// label, each with its count in c.
func orderOutcomes(c pipeline.Counts) map[string]int64 {
	return map[string]int64{
		"grouped": c.Orders, "to_send": c.ToSend, "already_sent": c.AlreadySent, "invalid": c.Invalid, "skipped": c.Skipped,
		"accepted": c.Accepted, "rejected": c.Rejected, "failed": c.Failed, "changed": c.Changed, "unsent": c.Unsent,
	}
}

// runMetrics is a registry holding the figures of the run summarised by
// s, which finished at finished with exit code code.
func runMetrics(s pipeline.Summary, finished time.Time, code int) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	gauge := func(name, help string, v float64) {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		g.Set(v)
		reg.MustRegister(g)
	}
	t := s.Total
	stopped := 0.0
	if s.Stopped != "" {
		stopped = 1
	}
	gauge(metricFinished, "When the last run finished (Unix time).", float64(finished.UnixMilli())/1000)
	gauge(metricDuration, "How long the last run took.", s.Seconds)
	gauge(metricExitCode, "Exit code of the last run.", float64(code))
	gauge(metricStopped, "1 when the last run stopped before the end (deadline, signal, fatal error).", stopped)
	gauge(metricFileErrors, "Objects the last run could not read.", float64(s.FileErrors))
	gauge(metricRows, "Rows read by the last run.", float64(t.Rows))
	gauge(metricRowErrors, "Malformed rows in the last run.", float64(t.RowErrors))
	gauge(metricRequests, "HTTP requests made by the last run.", float64(t.Requests))
	orders := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricOrders, Help: "Orders of the last run by outcome."}, []string{metricOutcomeName})
	for k, n := range orderOutcomes(t) {
		orders.WithLabelValues(k).Set(float64(n))
	}
	reg.MustRegister(orders)
	addReconcileMetrics(reg, s)
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricBuildInfo, Help: "Always 1; the version of the convpipe that ran last."}, []string{"version"})
	info.WithLabelValues(version).Set(1)
	reg.MustRegister(info)
	return reg
}

// writeMetrics writes what g gathers in the Prometheus text format, with
// the client library's encoder.
func writeMetrics(w io.Writer, g prometheus.Gatherer) error {
	mfs, err := g.Gather()
	if err != nil {
		return err
	}
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
			return err
		}
	}
	return nil
}

// writeMetricsFile writes the node_exporter textfile at path. It does
// what prometheus.WriteToTextfile does (the same encoder, a temporary
// file renamed over path) through writeFileAtomic, which also syncs the
// file and keeps its mode within the umask and the mode of the file it
// replaces: WriteToTextfile makes every textfile 0644.
func writeMetricsFile(path string, g prometheus.Gatherer) error {
	return writeFileAtomic(path, func(w io.Writer) error { return writeMetrics(w, g) })
}

// pushMetrics replaces the metrics of the group {job="convpipe",
// account=account} at the Pushgateway at url with what g gathers (an
// HTTP PUT: figures of an earlier run that this one lacks do not stay).
// A user and password in url are sent as basic authentication, and never
// appear in an error.
func pushMetrics(ctx context.Context, rawURL, account string, g prometheus.Gatherer) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("push: %w", err) // checkPushURL passed it
	}
	user := u.User
	u.User = nil
	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	p := push.New(u.String(), pushJob).
		Grouping(pushAccountLabel, account).
		Gatherer(g).
		Client(&http.Client{})
	if user != nil {
		pass, _ := user.Password()
		p = p.BasicAuth(user.Username(), pass)
	}
	if err := p.PushContext(ctx); err != nil {
		return fmt.Errorf("push to %s: %w", u, err)
	}
	return nil
}

// accountLabel is the account grouping label's value when
// --metrics-account is not given: "sid-" and the first 12 hex digits of
// the SHA-256 of the account SID, which tells accounts apart without
// storing the SID (a credential) in Prometheus.
func accountLabel(sid string) string {
	if sid == "" {
		return "unknown"
	}
	h := sha256.Sum256([]byte(sid))
	return "sid-" + hex.EncodeToString(h[:6])
}

// checkPushURL checks the --metrics-push URL: empty (no push) or an
// http(s) URL with a host.
func checkPushURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("--metrics-push: must be the Pushgateway's http:// or https:// URL")
	}
	return nil
}

// writeSummaryFiles writes --summary-json and --metrics-file (where set)
// for the summary s of a run or reconcile that ends with code; a file
// that cannot be written is logged, the command's outcome stands.
func writeSummaryFiles(log *slog.Logger, summaryJSON, metricsFile string, s pipeline.Summary, code int) {
	if summaryJSON != "" {
		if err := writeJSONFile(summaryJSON, s); err != nil {
			log.Error("cannot write --summary-json", "err", err)
		}
	}
	if metricsFile != "" {
		if err := writeMetricsFile(metricsFile, runMetrics(s, time.Now(), code)); err != nil {
			log.Error("cannot write --metrics-file", "err", err)
		}
	}
}
