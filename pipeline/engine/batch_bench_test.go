package engine_test

import (
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"convpipe/ledger"
	"convpipe/mapping"
	"convpipe/pipeline"
	"convpipe/pipeline/engine"
	"convpipe/sim"
	"convpipe/sinks"
	"convpipe/sources"
)

// backfillOrders returns n orders of two lines each, ids from first on,
// dated over the last 60 days.
func backfillOrders(first, n int) string {
	var b strings.Builder
	b.WriteString(header)
	now := time.Now().UTC()
	for i := first; i < first+n; i++ {
		day := now.Add(-time.Duration(i%(60*24)) * time.Hour).Format(time.RFC3339)
		for l := 1; l <= 2; l++ {
			fmt.Fprintf(&b, "A-%d,%s,clk%d,SKU-%d,%d,%d.50,paid\n", i, day, i, l, l, 10+l)
		}
	}
	return b.String()
}

// BenchmarkBatchBackfill: 100,000 orders dated within the last 60 days go
// through the batch way (files of 10,000 orders, uploaded over SFTP on
// loopback to the simulator, which processes them at once; the run then
// learns every order's outcome), beside its floor, the same export only
// read, mapped and decided (engine.Check), and beside the API's pace,
// measured on 5,000 orders without a quota and bounded by the default
// quota of 1,000 requests an hour.
//
//	go test ./pipeline/engine/ -run '^$' -bench BatchBackfill -benchtime 1x
func BenchmarkBatchBackfill(b *testing.B) {
	const orders, apiOrders = 100000, 5000
	for b.Loop() {
		dir := b.TempDir()
		export := filepath.Join(dir, "export")
		apiExport := filepath.Join(dir, "api")
		for _, d := range []string{export, apiExport} {
			if err := os.Mkdir(d, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(export, "backfill.csv"), []byte(backfillOrders(1, orders)), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(apiExport, "api.csv"), []byte(backfillOrders(1, apiOrders)), 0o644); err != nil {
			b.Fatal(err)
		}
		floor := benchFloor(b, export)
		batch, states := benchBatch(b, dir, export)
		if states[pipeline.StateAccepted] != orders {
			b.Fatalf("after the batch way: %v, want %d accepted", states, orders)
		}
		pace := benchAPIPace(b, dir, apiExport, apiOrders)
		quota := 1000.0 / 3600
		api := time.Duration(float64(orders) / min(pace, quota) * float64(time.Second))
		b.ReportMetric(floor.Seconds(), "floor-s")
		b.ReportMetric(batch.Seconds(), "batch-s")
		b.ReportMetric(pace, "api-unthrottled-req/s")
		b.ReportMetric(api.Hours(), "api-at-1000/h-hours")
		b.Logf("100,000 orders: floor (read, map, decide) %s; batch way, every order with its outcome %s (statuses read at 1,000 requests an hour); API unthrottled %.0f req/s, at 1,000/h: %s",
			floor.Round(10*time.Millisecond), batch.Round(10*time.Millisecond), pace, api)
	}
}

func benchFloor(b *testing.B, export string) time.Duration {
	src, err := sources.New(b.Context(), sources.Config{Location: export})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := engine.Run(b.Context(), engine.Options{Mode: engine.Check, Source: src, Mapper: benchMapper(b)}); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func benchMapper(b *testing.B) *mapping.Mapping {
	cfg, err := mapping.ParseConfig([]byte(testMapping))
	if err != nil {
		b.Fatal(err)
	}
	m, err := mapping.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// benchBatch sends the export by batch files and returns the time it took
// and the ledger's states after it.
func benchBatch(b *testing.B, dir, export string) (time.Duration, map[pipeline.State]int) {
	s := sim.New(sim.Config{CompleteAfter: -1})
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	drop, err := sim.NewDrop(filepath.Join(dir, "drop"))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "drop"), 0o755); err != nil {
		b.Fatal(err)
	}
	addr, err := drop.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer drop.Close()
	s.ServeDrop(drop)
	block, err := ssh.MarshalPrivateKey(drop.UserPrivateKey(), "")
	if err != nil {
		b.Fatal(err)
	}
	env := map[string]string{sinks.EnvSFTPKey: string(pem.EncodeToMemory(block))}
	batch, err := sinks.NewBatch(sinks.BatchConfig{PerFile: 10000, SFTP: sinks.SFTPConfig{
		Address: addr, User: "convpipe", HostKey: string(ssh.MarshalAuthorizedKey(drop.HostKey())),
	}}, func(k string) string { return env[k] })
	if err != nil {
		b.Fatal(err)
	}
	api, err := sinks.NewWithCredentials(sinks.Config{BaseURL: s.URL()}.WithDefaults(),
		sinks.Credentials{AccountSID: s.AccountSID(), AuthToken: sim.DefaultAuthToken}, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer api.Close()
	path := filepath.Join(dir, "batch.db")
	led, err := ledger.Open(b.Context(), path, ledger.Options{})
	if err != nil {
		b.Fatal(err)
	}
	src, err := sources.New(b.Context(), sources.Config{Location: export})
	if err != nil {
		b.Fatal(err)
	}
	// The first run uploads; the next learns the outcomes, as a run on
	// the next day would.
	start := time.Now()
	sum, err := engine.Run(b.Context(), engine.Options{
		Mode: engine.Send, Source: src, Mapper: benchMapper(b), Batch: batch, Ledger: led, RunID: "bench-upload",
	})
	up := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	if s.Batches() != 10 || sum.Total.Accepted != 100000 {
		b.Fatalf("%d files taken, %+v", s.Batches(), sum.Total)
	}
	if _, err := engine.Run(b.Context(), engine.Options{
		Mode: engine.Send, Source: src, Mapper: benchMapper(b), Batch: batch, BatchStatus: api, Ledger: led, RunID: "bench-outcomes",
	}); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	b.ReportMetric(up.Seconds(), "upload-s")
	processed := 0
	if err := led.BatchFiles(b.Context(), func(pipeline.BatchRecord) error { processed++; return nil }, pipeline.BatchProcessed); err != nil || processed != 10 {
		b.Fatalf("%d files processed, %v", processed, err)
	}
	states := map[pipeline.State]int{}
	n, err := led.Counts(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	for st, c := range n {
		states[st] = int(c)
	}
	led.Close()
	return took, states
}

// benchAPIPace sends n orders through the API sink to the simulator
// without a quota and returns the requests per second.
func benchAPIPace(b *testing.B, dir, export string, n int) float64 {
	s := sim.New(sim.Config{})
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	sink, err := sinks.NewWithCredentials(sinks.Config{BaseURL: s.URL(), Rate: "100000/s", Burst: 100, Workers: 4}.WithDefaults(),
		sinks.Credentials{AccountSID: s.AccountSID(), AuthToken: sim.DefaultAuthToken}, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	led, err := ledger.Open(b.Context(), filepath.Join(dir, "api.db"), ledger.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer led.Close()
	src, err := sources.New(b.Context(), sources.Config{Location: export})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	sum, err := engine.Run(b.Context(), engine.Options{Mode: engine.Send, Source: src, Mapper: benchMapper(b), Sink: sink, Ledger: led, Workers: 4, RunID: "api"})
	if err != nil || sum.Total.Accepted != int64(n) {
		b.Fatalf("API: %v, %+v", err, sum.Total)
	}
	return float64(n) / time.Since(start).Seconds()
}
