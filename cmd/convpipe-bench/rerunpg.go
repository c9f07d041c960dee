package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"convpipe/ledger"
	"convpipe/ledger/pgtest"
	"convpipe/pipeline"
	"convpipe/sim"
)

// pgRerun is what rerunPG measured.
type pgRerun struct {
	All      tpRun             // the median run with --all
	Sum      *pipeline.Summary // the last run's summary
	Fill     time.Duration     // filling the database
	Vacuum   time.Duration     // VACUUM (ANALYZE) and CHECKPOINT after the fill
	Entries  int64             // the entries it holds
	Accepted int64             // of which accepted
	Size     int64             // its pg_database_size
	Version  string            // the server's
	Index    time.Duration     // loading Settled's index, in this process
	Server   time.Duration     // the server's CPU time per run with --all
}

// rerunPGDatabase is the database of the PostgreSQL rerun ledger.
const rerunPGDatabase = "rerun"

// rerunPG is figure 5 on a PostgreSQL ledger: a server started on
// loopback for it (ledger/pgtest, as the tests and part 6 start one), a
// database filled as the SQLite ledger is (fill -ledger-url), and
// `convpipe run --all` over it with ledger.url, b.repeat times, each of
// which must find at least orders orders, all sent before. The server is
// temporary, so the ledger is filled again every time.
func (b *bench) rerunPG(dataPath, apiURL string, orders int64) (pgRerun, error) {
	var r pgRerun
	dir := filepath.Join(b.work, "rerun-pg")
	if err := os.RemoveAll(dir); err != nil {
		return r, err
	}
	srv, err := pgtest.Start()
	if err != nil {
		return r, err
	}
	defer srv.Close()
	ctx := context.Background()
	if err := srv.CreateDatabase(ctx, rerunPGDatabase); err != nil {
		return r, err
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := writeRerunConfig(cfg, dir, dataPath, apiURL, srv.URL(rerunPGDatabase)); err != nil {
		return r, err
	}
	env := []string{"PGPASSWORD=" + pgtest.Password}
	if r.Fill, err = b.fillPG(cfg, srv.URL(rerunPGDatabase), env); err != nil {
		return r, err
	}
	if r.Vacuum, err = b.settlePG(ctx, srv); err != nil {
		return r, err
	}
	before := serverCPU(srv)
	if r.All, r.Sum, err = b.rerunOnce(cfg, dir, env, "--all"); err != nil {
		return r, err
	}
	r.Server = (serverCPU(srv) - before) / time.Duration(b.repeat)
	if err := rerunAllOK(r.Sum, orders); err != nil {
		return r, fmt.Errorf("rerun --all, PostgreSQL ledger: %w", err)
	}
	os.RemoveAll(filepath.Join(dir, "results"))
	if err := r.facts(ctx, srv); err != nil {
		return r, err
	}
	b.logf("rerun, PostgreSQL ledger: --all %.2fs (%d orders; CPU %.2fs, the server's %.2fs), index load %.2fs", r.All.U.Wall.Seconds(), r.Sum.Total.Orders, r.All.U.CPU().Seconds(), r.Server.Seconds(), r.Index.Seconds())
	return r, nil
}

// fillPG fills the PostgreSQL ledger at ledgerURL (the password in env)
// from the rerun configuration cfg, in a child as the SQLite one is.
func (b *bench) fillPG(cfg, ledgerURL string, env []string) (time.Duration, error) {
	start := time.Now()
	c := child{Args: []string{b.self, "fill", "-config", cfg, "-ledger-url", ledgerURL}, Env: env}
	res, err := c.run()
	if err != nil {
		return 0, err
	}
	took := time.Since(start)
	b.logf("%s in %s", strings.TrimSpace(res.Stdout), took.Round(100*time.Millisecond))
	return took, nil
}

// settlePG vacuums, analyzes and checkpoints the filled database before
// the runs are timed: a million rows inserted in two minutes start
// autovacuum (twice, over the whole table) and have every row's hint
// bits set, and its pages written again, by the first scan, which would
// then fall on the measured runs; a ledger filled night by night has long
// been vacuumed.
func (b *bench) settlePG(ctx context.Context, srv *pgtest.Server) (time.Duration, error) {
	start := time.Now()
	for _, q := range []string{"VACUUM (ANALYZE) convpipe.conversions", "CHECKPOINT"} {
		if err := srv.Exec(ctx, rerunPGDatabase, q); err != nil {
			return 0, fmt.Errorf("rerun ledger: %s: %w", q, err)
		}
	}
	took := time.Since(start)
	b.logf("rerun, PostgreSQL ledger: VACUUM (ANALYZE) and CHECKPOINT in %s", took.Round(100*time.Millisecond))
	return took, nil
}

// serverCPU returns the CPU time (user and system) that the server's
// postmaster and its children that have exited (the runs' backends)
// have used, from /proc; 0 when it cannot be read.
func serverCPU(srv *pgtest.Server) time.Duration {
	pid, err := os.ReadFile(filepath.Join(srv.Dir, "data", "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(pid), "\n")
	stat, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(first), "stat"))
	if err != nil {
		return 0
	}
	// The fields after the command's closing parenthesis: utime, stime,
	// cutime and cstime are the 12th to 15th, in clock ticks (100/s).
	_, rest, _ := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	var ticks int64
	for i := 11; i <= 14 && i < len(f); i++ {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// facts reads the filled database's size and entries, and times the load
// of the index that answers Settled (ledger.OpenPostgresReadOnly's is
// the same query and sort as a run's).
func (r *pgRerun) facts(ctx context.Context, srv *pgtest.Server) error {
	u, err := url.Parse(srv.URL(rerunPGDatabase))
	if err != nil {
		return err
	}
	u.User = url.UserPassword(pgtest.User, pgtest.Password)
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(ctx, `SELECT pg_database_size(current_database()), current_setting('server_version'),
		count(*), count(*) FILTER (WHERE state = 'accepted') FROM convpipe.conversions`).Scan(&r.Size, &r.Version, &r.Entries, &r.Accepted)
	if err != nil {
		return fmt.Errorf("rerun ledger facts: %w", err)
	}
	if f := strings.Fields(r.Version); len(f) > 0 {
		r.Version = f[0]
	}
	led, err := ledger.OpenPostgresReadOnly(ctx, u.String(), "")
	if err != nil {
		return err
	}
	defer led.Close()
	if err := led.SetAccount(sim.DefaultAccountSID); err != nil {
		return err
	}
	start := time.Now()
	_, _, err = led.Settled(ctx, pipeline.Key{EventType: "0", OrderID: "0"}, pipeline.PayloadHash(""))
	r.Index = time.Since(start)
	return err
}

// text describes the PostgreSQL ledger and how it was filled.
func (r pgRerun) text() string {
	return fmt.Sprintf(
		"The PostgreSQL ledger: a database on a PostgreSQL %s started on loopback for this part (`ledger/pgtest`, as the tests start one: initdb in a temporary folder, `fsync=on`, `shared_buffers=32MB`), "+
			"filled by the same fill from the same export and configuration, with `ledger.OpenPostgres` instead of `ledger.Open` behind the same batching wrapper (`convpipe-bench fill -ledger-url`, the password in PGPASSWORD): "+
			"%s entries (%s of them accepted), %s (`pg_database_size`). The server is temporary, so this ledger is filled again in every run of the suite: in %s this time, then `VACUUM (ANALYZE)` and `CHECKPOINT` (%s) before the timed runs, as autovacuum would long since have done to a ledger filled night by night (right after the fill, autovacuum's passes over the table and the first scan's setting of every row's hint bits would fall on the timed runs). "+
			"The runs name it by `ledger.url` in their configuration, without the password (PGPASSWORD is in their environment). "+
			"Loading the in-memory index a run answers `Settled` from (one binary-format `SELECT event_type, order_id, state, payload_hash, source, event_date` of the account's rows, then a sort) took %s, timed on its own in the suite's process after the runs. "+
			"The CPU column is convpipe's; the server used %s more per run (its postmaster's and exited backends' CPU time, from /proc).",
		r.Version, fmtInt(r.Entries), fmtInt(r.Accepted), fmtBytes(r.Size), r.Fill.Round(100*time.Millisecond), r.Vacuum.Round(100*time.Millisecond), fmtSec(r.Index), fmtSec(r.Server))
}

// verdict is the verdict of the PostgreSQL rerun with --all.
func (r pgRerun) verdict() verdict {
	return verdict{
		Figure:   "Rerun over 1M accepted orders with `--all`, PostgreSQL ledger",
		Measured: fmt.Sprintf("%s (%s rows, %s orders looked up)", fmtSec(r.All.U.Wall), fmtInt(r.Sum.Total.Rows), fmtInt(r.Sum.Total.Orders)),
		Target:   "< 10 s",
		Met:      met(r.All.U.Wall < 10*time.Second),
		Why: fmt.Sprintf("as on SQLite, every order is read, grouped and fingerprinted, then answered from the ledger's in-memory index without a query per order and without mapping it again: "+
			"the index is loaded once, by one binary-format SELECT of the account's (event type, order id, state, payload hash, source, event date) on the writer's connection (%s on its own).", fmtSec(r.Index)),
	}
}
