package sources_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"convpipe/mapping"
	"convpipe/pipeline/engine"
	"convpipe/pipeline/group"
	"convpipe/sinks"
	"convpipe/sources"
)

// genDir holds the corpus generator, whose npm packages (DuckDB) the
// twins test installs when they are missing.
var genDir = filepath.Join("testdata", "parquet-corpus", "gen")

var npmOnce sync.Once

// ensureGenerator installs the generator's pinned npm packages (npm ci)
// once, when they are not there yet.
func ensureGenerator(t *testing.T) {
	t.Helper()
	var err error
	var out []byte
	npmOnce.Do(func() {
		if _, e := os.Stat(filepath.Join(genDir, "node_modules", "@duckdb", "node-api")); e == nil {
			return
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = genDir
		out, err = cmd.CombinedOutput()
	})
	if err != nil {
		t.Fatalf("npm ci in %s (the twins test writes its files with DuckDB, from npm; it needs Node 20 and npm): %v\n%s", genDir, err, out)
	}
}

// twinRows is how many order lines TestParquetCSVTwins writes: 50,000 in
// the tests, 1,000,000 with CONVPIPE_RELIABILITY=full (make reliability).
func twinRows() int {
	if os.Getenv("CONVPIPE_RELIABILITY") == "full" {
		return 1_000_000
	}
	return 50_000
}

const twinMapping = `
order_key: [order_id]
max_event_age: 3650d
fields:
  EventTypeId: {const: "12345"}
  CampaignId: {const: "1000"}
  OrderId: order_id
  EventDate: {column: ordered_at, transforms: [{time: {layout: "LAYOUT", zone: Europe/Berlin}}]}
  ClickId: click_id
  OrderPromoCode: promo_code
  CurrencyCode: {const: EUR}
items:
  ItemSku: sku
  ItemName: name
  ItemCategory: category
  ItemQuantity: {column: qty, transforms: [integer]}
  ItemPrice: {column: price, transforms: [number]}
`

// TestParquetCSVTwins writes the same order lines with DuckDB as CSV and
// as Parquet (10 row groups, TIMESTAMP, DECIMAL, NULLs), runs both
// through the engine in dry-run mode into the dry-run sink, as convpipe
// run --dry-run does, and compares the two outputs line by line: every
// order must be sent identically. The mappings differ only in the wall
// time's layout (DuckDB writes "2026-11-01 00:00:07" in CSV; Parquet's
// TIMESTAMP reads as "2026-11-01T00:00:07").
func TestParquetCSVTwins(t *testing.T) {
	ensureGenerator(t)
	rows := twinRows()
	dir := t.TempDir()
	cmd := exec.Command("node", "twins.mjs", strconv.Itoa(rows), dir)
	cmd.Dir = genDir
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node twins.mjs: %v", err)
	}
	var made struct {
		Rows      int    `json:"rows"`
		RowGroups int    `json:"row_groups"`
		Writer    string `json:"writer"`
	}
	if err := json.Unmarshal(out, &made); err != nil || made.Rows != rows || made.RowGroups < 8 {
		t.Fatalf("twins.mjs said %s (%v): want %d rows in about 10 row groups", out, err, rows)
	}
	t.Logf("%s: %d rows, %d row groups", made.Writer, made.Rows, made.RowGroups)
	csvOut, csvOrders := dryRunTwin(t, filepath.Join(dir, "orders.csv"), "2006-01-02 15:04:05")
	pqOut, pqOrders := dryRunTwin(t, filepath.Join(dir, "orders.parquet"), "2006-01-02T15:04:05")
	if want := int64((rows*2 + 4) / 5); csvOrders != want || pqOrders != want {
		t.Fatalf("orders: CSV %d, Parquet %d; want %d", csvOrders, pqOrders, want)
	}
	if len(csvOut) != len(pqOut) {
		t.Fatalf("CSV gives %d lines, Parquet %d", len(csvOut), len(pqOut))
	}
	for i := range csvOut {
		if csvOut[i] != pqOut[i] {
			t.Fatalf("line %d differs:\nCSV     %s\nParquet %s", i+1, csvOut[i], pqOut[i])
		}
	}
}

// dryRunTwin runs the export at p through the engine in dry-run mode and
// returns the dry-run sink's lines, sorted (the sink's workers write them
// in any order), and the orders sent.
func dryRunTwin(t *testing.T, p, layout string) ([]string, int64) {
	t.Helper()
	src, err := sources.New(t.Context(), sources.Config{Location: p})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := mapping.ParseConfig([]byte(strings.Replace(twinMapping, "LAYOUT", layout, 1)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := mapping.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	dry := sinks.NewDryRun(&buf)
	s, err := engine.Run(t.Context(), engine.Options{
		Source: src, Mapper: m, Mode: engine.DryRun, Sink: dry, Workers: 2,
		Group: group.Config{}.WithDefaults(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := dry.Flush(); err != nil {
		t.Fatal(err)
	}
	if s.FileErrors > 0 || s.Total.Invalid > 0 || s.Total.RowErrors > 0 {
		t.Fatalf("%s: %d file errors, %d invalid orders, %d row errors", p, s.FileErrors, s.Total.Invalid, s.Total.RowErrors)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	slices.Sort(lines)
	return lines, dry.Count()
}
