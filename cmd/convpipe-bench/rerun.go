package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"convpipe/ledger"
	"convpipe/mapping"
	"convpipe/pipeline"
	"convpipe/pipeline/engine"
	"convpipe/sim"
	"convpipe/sinks"
	"convpipe/sources"
)

// batchLedger is the real ledger (SQLite or PostgreSQL) with Put
// batched: it keeps the last entry
// written for each key and writes them with PutAll, many to a
// transaction. Run writes through it exactly the entries it would write
// to the ledger itself (the pending entry of a key is replaced by its
// outcome before it is flushed); only each Put's own fsync is saved, which
// makes filling a ledger of a million orders take seconds instead of the
// hours a paced run would.
type batchLedger struct {
	ledger.Store
	mu  sync.Mutex
	buf map[pipeline.Key]pipeline.Entry
}

const batchLedgerFlush = 20000

func (l *batchLedger) Put(ctx context.Context, e pipeline.Entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf[e.Key] = e
	if len(l.buf) >= batchLedgerFlush {
		return l.flushLocked(ctx)
	}
	return nil
}

func (l *batchLedger) Get(ctx context.Context, key pipeline.Key) (pipeline.Entry, bool, error) {
	l.mu.Lock()
	e, ok := l.buf[key]
	l.mu.Unlock()
	if ok {
		return e, true, nil
	}
	return l.Store.Get(ctx, key)
}

func (l *batchLedger) MarkObjectDone(ctx context.Context, obj pipeline.Object, runID string) error {
	if err := l.flush(ctx); err != nil {
		return err
	}
	return l.Store.MarkObjectDone(ctx, obj, runID)
}

func (l *batchLedger) flush(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flushLocked(ctx)
}

func (l *batchLedger) flushLocked(ctx context.Context) error {
	es := make([]pipeline.Entry, 0, len(l.buf))
	for _, e := range l.buf {
		es = append(es, e)
	}
	clear(l.buf)
	for len(es) > 0 {
		n := min(len(es), 1000)
		if err := l.Store.PutAll(ctx, es[:n]); err != nil {
			return err
		}
		es = es[n:]
	}
	return nil
}

// rerunLedger returns the ledger of a run that sent every order of the
// rerun export and had each accepted: built once, and again when the
// export or its configuration changes.
func (b *bench) rerunLedger(cfgPath, dataPath string) (string, time.Duration, bool, error) {
	dir := filepath.Dir(cfgPath)
	path := filepath.Join(dir, "ledger.db")
	stampPath := path + ".made-from"
	cfgBytes, err := os.ReadFile(cfgPath)
	if err != nil {
		return "", 0, false, err
	}
	fi, err := os.Stat(dataPath)
	if err != nil {
		return "", 0, false, err
	}
	// The ledger holds payload hashes: build it again when the export,
	// the configuration or the code that maps and encodes may differ.
	code, err := fileSHA256(b.self)
	if err != nil {
		return "", 0, false, err
	}
	sum := sha256.Sum256(cfgBytes)
	stamp := fmt.Sprintf("%s %d %d config %s code %s", dataPath, fi.Size(), fi.ModTime().UnixNano(), hex.EncodeToString(sum[:8]), code[:16])
	if b, err := os.ReadFile(stampPath); err == nil && string(b) == stamp {
		if _, err := os.Stat(path); err == nil {
			return path, 0, false, nil
		}
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + ".marker", stampPath} {
		os.Remove(p)
	}
	start := time.Now()
	c := child{Args: []string{b.self, "fill", "-config", cfgPath, "-ledger", path}}
	res, err := c.run()
	if err != nil {
		return "", 0, false, err
	}
	b.logf("%s in %s", strings.TrimSpace(res.Stdout), time.Since(start).Round(100*time.Millisecond))
	return path, time.Since(start), true, os.WriteFile(stampPath, []byte(stamp), 0o644)
}

// fillMain is the "fill" subcommand: it fills a ledger, a SQLite file
// (-ledger) or a PostgreSQL database (-ledger-url, the password from
// PGPASSWORD), with every order of the configured export as a run that
// sent them all and had each accepted would leave it (see batchLedger).
func fillMain(args []string) error {
	fs := flag.NewFlagSet("fill", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "convpipe configuration file")
	path := fs.String("ledger", "", "the SQLite ledger to fill")
	url := fs.String("ledger-url", "", "the PostgreSQL ledger to fill instead: postgres://user@host:port/db, without the password (PGPASSWORD)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*path == "") == (*url == "") {
		return errors.New("fill: give either -ledger FILE or -ledger-url postgres://…")
	}
	ctx := context.Background()
	cfg, err := loadReadConfig(*cfgPath)
	if err != nil {
		return err
	}
	m, err := mapping.New(cfg.Mapping)
	if err != nil {
		return err
	}
	src, err := sources.New(ctx, cfg.Source)
	if err != nil {
		return err
	}
	lc := ledger.Config{Path: *path}
	if *url != "" {
		lc = ledger.Config{URL: *url}
	}
	// The entries are the account's the runs send as (IMPACT_ACCOUNT_SID
	// of rerunOnce), as that account's run writes them; Create makes the
	// schema in an empty PostgreSQL database.
	led, err := lc.Open(ctx, ledger.Options{Command: "convpipe-bench fill", Account: sim.DefaultAccountSID, Create: true})
	if err != nil {
		return fmt.Errorf("fill %s: %w", lc.Name(), err)
	}
	s, err := fill(ctx, led, cfg, src, m)
	if cerr := led.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fill %s: %w", lc.Name(), err)
	}
	if s.Total.Orders == 0 || s.Total.Accepted != s.Total.Orders || s.FileErrors > 0 {
		return fmt.Errorf("fill %s: %d orders, %d accepted, %d file errors", lc.Name(), s.Total.Orders, s.Total.Accepted, s.FileErrors)
	}
	fmt.Printf("filled %s with %d accepted orders\n", lc.Name(), s.Total.Accepted)
	return nil
}

// fill runs the engine over src into led through a batchLedger, as the
// run "bench-fill", and returns its summary.
func fill(ctx context.Context, led ledger.Store, cfg readConfig, src pipeline.Source, m *mapping.Mapping) (pipeline.Summary, error) {
	bl := &batchLedger{Store: led, buf: map[pipeline.Key]pipeline.Entry{}}
	info := pipeline.RunInfo{ID: "bench-fill", Started: time.Now().UTC(), Args: "convpipe-bench fill"}
	if err := led.BeginRun(ctx, info); err != nil {
		return pipeline.Summary{}, err
	}
	s, err := engine.Run(ctx, engine.Options{Mode: engine.Send, Source: src, Mapper: m, Sink: &sinks.Discard{}, Ledger: bl, Group: cfg.Group, Workers: 4, RunID: info.ID})
	if err == nil {
		err = bl.flush(ctx)
	}
	if err == nil {
		info.Finished, info.Summary = time.Now().UTC(), &s
		err = led.FinishRun(ctx, info)
	}
	return s, err
}

// rerun is figure 5: a nightly run over an export of a million orders
// that were all sent and accepted before, with the SQLite ledger and
// with a PostgreSQL one (see rerunPG).
func (b *bench) rerun() error {
	sec := &section{Title: "5. Rerun cost: a million orders accepted before"}
	dataPath, err := b.data.path(dataRerun)
	if err != nil {
		return err
	}
	dir := filepath.Join(b.work, "rerun")
	cfg := filepath.Join(dir, "config.yaml")
	// An API to send to, in the suite's process, as a real run has one
	// (`--simulate` would seed its simulator from the million entries
	// first); it receives nothing.
	s := sim.New(sim.Config{})
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer s.Close()
	if err := writeRerunConfig(cfg, dir, dataPath, url, ""); err != nil {
		return err
	}
	// The ledger is filled from the same configuration without the
	// simulator's address, which changes every time: so it is reused
	// while the export, the mapping and the code stay the same.
	fillCfg := filepath.Join(dir, "fill.yaml")
	if err := writeRerunConfig(fillCfg, dir, dataPath, "", ""); err != nil {
		return err
	}
	led, took, made, err := b.rerunLedger(fillCfg, dataPath)
	if err != nil {
		return err
	}
	nightly, s1, err := b.rerunOnce(cfg, dir, nil)
	if err != nil {
		return err
	}
	if len(s1.Objects) != 1 || !s1.Objects[0].Unchanged || s1.Total.ToSend != 0 {
		return fmt.Errorf("rerun: the unchanged object was read again: %+v", s1.Total)
	}
	all, s2, err := b.rerunOnce(cfg, dir, nil, "--all")
	if err != nil {
		return err
	}
	if err := rerunAllOK(s2, rerunOrders); err != nil {
		return fmt.Errorf("rerun --all: %w", err)
	}
	os.RemoveAll(filepath.Join(dir, "results"))
	b.logf("rerun: unchanged %.2fs, --all %.2fs (%d orders)", nightly.U.Wall.Seconds(), all.U.Wall.Seconds(), s2.Total.Orders)
	sec.Text = append(sec.Text, rerunDataText(s2, dataPath, fileSize(led), rerunFillText(took, made)))
	sec.Commands = append(sec.Commands, nightly.Cmd, all.Cmd)
	sec.Table = [][]string{{"Run", "Ledger", "Wall", "CPU", "Peak RSS", "Orders read", "Already sent", "To send"},
		{"nightly, object unchanged", "SQLite", fmtSec(nightly.U.Wall), fmtSec(nightly.U.CPU()), nightly.U.RSS(), "0 (not read)", "—", fmtInt(s1.Total.ToSend)},
		rerunRow("SQLite", all, s2),
	}
	b.rerunVerdicts(nightly, all, s2)
	pg, err := b.rerunPG(dataPath, url, rerunOrders)
	if err != nil {
		// The SQLite figures stand; the report names the failure.
		b.logf("rerun, PostgreSQL ledger: %v", err)
		b.report.failed("rerun, PostgreSQL ledger", err)
	} else {
		sec.Text = append(sec.Text, pg.text())
		sec.Commands = append(sec.Commands, pg.All.Cmd)
		sec.Table = append(sec.Table, rerunRow("PostgreSQL", pg.All, pg.Sum))
		b.report.add(pg.verdict())
	}
	sec.Text = append(sec.Text, rerunRunsText(b.repeat))
	b.report.section(sec)
	return nil
}

// rerunAllOK checks the summary of a run with --all over a filled ledger:
// at least orders orders, every one already sent, none to send.
func rerunAllOK(s *pipeline.Summary, orders int64) error {
	if s.Total.AlreadySent != s.Total.Orders || s.Total.ToSend != 0 || s.Total.Orders < orders {
		return fmt.Errorf("%d orders, %d already sent, %d to send", s.Total.Orders, s.Total.AlreadySent, s.Total.ToSend)
	}
	return nil
}

// rerunOrders is the orders of the rerun export (dataRerun).
const rerunOrders = 1000000

// rerunRow is the table row of a run with --all over the ledger named.
func rerunRow(ledgerName string, r tpRun, s *pipeline.Summary) []string {
	return []string{"`--all`", ledgerName, fmtSec(r.U.Wall), fmtSec(r.U.CPU()), r.U.RSS(), fmtInt(s.Total.Orders), fmtInt(s.Total.AlreadySent), fmtInt(s.Total.ToSend)}
}

// writeRerunConfig writes the configuration of the rerun runs over the
// export at dataPath, sending to url, their results (and SQLite ledger)
// in dir; with ledgerURL, their ledger is that PostgreSQL database.
func writeRerunConfig(cfg, dir, dataPath, url, ledgerURL string) error {
	// Every order of this export is valid and accepted: the sample's
	// filter (cancelled orders are skipped) is left out.
	set := map[string]any{
		"source.location": dataPath,
		"mapping.filters": nil,
		"group.mode":      "sorted",
		"ledger.path":     filepath.Join(dir, "ledger.db"),
		"run.progress":    "off",
		"run.results_dir": filepath.Join(dir, "results"),
		"sink.base_url":   cmp.Or(url, "http://127.0.0.1:1"),
	}
	if ledgerURL != "" {
		set["ledger.url"] = ledgerURL
	}
	return writeConfig(cfg, set)
}

// rerunOnce runs `convpipe run` with the rerun configuration (and args)
// b.repeat times, and returns the median run and the summary of the
// last. env is added to the child's environment (PGPASSWORD for a
// PostgreSQL ledger; the command the report shows gives no password).
func (b *bench) rerunOnce(cfg, dir string, env []string, args ...string) (tpRun, *pipeline.Summary, error) {
	var sum *pipeline.Summary
	c := child{
		// --max-duration only guards against a ledger that does not
		// match: the runs take seconds.
		// --no-reconcile: the ledger's million entries were never
		// reconciled, as a nightly run's would have been night by night;
		// what reconciling costs is figure 9's.
		Args:    append([]string{b.convpipe, "run", "--config", cfg, "--no-reconcile", "--max-duration", "2m", "--summary-json", filepath.Join(dir, "summary.json")}, args...),
		Env:     append([]string{"IMPACT_ACCOUNT_SID=" + sim.DefaultAccountSID, "IMPACT_AUTH_TOKEN=" + sim.DefaultAuthToken}, env...),
		Summary: filepath.Join(dir, "summary.json"),
	}
	r, _, err := median(b.repeat, func(r tpRun) time.Duration { return r.U.Wall }, func() (tpRun, error) {
		res, err := c.run()
		if err != nil {
			return tpRun{}, err
		}
		sum = res.Summary
		return tpRun{Rows: res.Summary.Total.Rows, U: res.usage, Cmd: c.command()}, nil
	})
	return r, sum, err
}

// rerunFillText says how the rerun ledger came to be: built in this run
// in took (made), or reused from an earlier one.
func rerunFillText(took time.Duration, made bool) string {
	if made {
		return fmt.Sprintf("was built in this run in %s", took.Round(100*time.Millisecond))
	}
	return "was reused from an earlier run of the suite (it is rebuilt whenever the export or the configuration changes)"
}

// rerunDataText describes the rerun export (s: the summary of the run
// that read it all) and its ledger of ledgerSize bytes.
func rerunDataText(s *pipeline.Summary, dataPath string, ledgerSize int64, fill string) string {
	return fmt.Sprintf(
		"The export: %s orders (`samples/gen -orders 1000000`, %s rows, %s). "+
			"The SQLite ledger (%s) holds every one of them as accepted, as a run that sent them all would have left it. "+
			"Sending a million orders through the simulator at any realistic quota takes far too long, so the suite fills it another way, through the same code: "+
			"`engine.Run` over the same export with the same configuration, a sink that answers every conversion as accepted (`sinks.Discard`) and the real ledger (`ledger.Open`) behind a wrapper that batches Puts into PutAll transactions. "+
			"The entries are exactly those a run writes (same keys, payload hashes from the mapping and `Conversion.Encode`, the fingerprints of the lines each payload was built from, refs, states), and Run itself marks the object processed (`MarkObjectDone`) with its key, ETag and size. "+
			"The ledger %s.",
		fmtInt(s.Total.Orders), fmtInt(s.Total.Rows), fmtBytes(fileSize(dataPath)), fmtBytes(ledgerSize), fill)
}

// rerunRunsText describes the measured runs, each the median of repeat.
func rerunRunsText(repeat int) string {
	return fmt.Sprintf("Then the nightly run, `convpipe run` for real (not a dry run; the API simulator in the suite's process gives it an API to send to, which receives nothing), median of %d runs each, with `--no-reconcile` (the fill leaves a million entries that were never reconciled, which a nightly run would have reconciled night by night; reconciling is part 9): "+
		"once as cron runs it (the object is unchanged, so it is not read again) and once with `--all` (every row read and grouped, every order's lines fingerprinted and looked up in the ledger's in-memory index, which vouches for the payload of unchanged lines: none of them is mapped, encoded or hashed again); "+
		"on the PostgreSQL ledger with `--all` only (the unchanged object's run is one lookup of the processed-object record on either ledger).", repeat)
}

// rerunVerdicts adds figure 5's verdicts: the nightly run and the run with
// --all (s: its summary).
func (b *bench) rerunVerdicts(nightly, all tpRun, s *pipeline.Summary) {
	b.report.add(verdict{
		Figure:   "Rerun over 1M accepted orders, object unchanged",
		Measured: fmtSec(nightly.U.Wall),
		Target:   "< 1 s",
		Met:      met(nightly.U.Wall < time.Second),
		Why:      "the ledger's processed-object record (key, ETag, size) says the object is done: it is not opened.",
	})
	b.report.add(verdict{
		Figure:   "Rerun over 1M accepted orders with `--all`, SQLite ledger",
		Measured: fmt.Sprintf("%s (%s rows, %s orders looked up)", fmtSec(all.U.Wall), fmtInt(s.Total.Rows), fmtInt(s.Total.Orders)),
		Target:   "< 10 s",
		Met:      met(all.U.Wall < 10*time.Second),
		Why: "every order is read, grouped and fingerprinted (`mapping.Fingerprint`: SHA-256 of the cells the mapping reads, the mapping and the build), then answered from the ledger's in-memory index (`SettledSource`, loaded once) without SQL: " +
			"an order whose lines are those its accepted payload was built from is not mapped, encoded or hashed again (before the fingerprints, 10.95 s).",
	})
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// fileSHA256 returns the hex SHA-256 of a file, read in pieces (the suite
// keeps its own memory small: see usage.ParentRSS).
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
