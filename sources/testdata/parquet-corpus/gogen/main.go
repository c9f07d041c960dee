// Command gogen writes the Go writers' files of the Parquet corpus
// (../README.md): the rows gen.mjs hands it, written with
// github.com/xitongsys/parquet-go and github.com/parquet-go/parquet-go.
// gen.mjs runs it and checks what it writes:
//
//	go run . -rows rows.json -out ..
//
// rows.json is {"columns": [...], "rows": [[...], ...]}, every value as
// sources renders it (null for a null). For each file it writes
// <name>.parquet into -out and <name>.json (the rows the file must read
// as) beside rows.json, and lists them in rows.json.manifest.
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"

	"log"
	"math/big"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// input is what gen.mjs hands over.
type input struct {
	Columns []string    `json:"columns"`
	Rows    [][]*string `json:"rows"`
}

// fileEntry is one written file, for gen.mjs.
type fileEntry struct {
	File     string   `json:"file"`
	Writer   string   `json:"writer"`
	How      string   `json:"how"`
	Columns  []string `json:"columns"`
	RowsJSON string   `json:"rows_json"`
}

// order is one row, typed.
type order struct {
	OrderID, ClickID, Customer             *string
	Qty                                    *int32
	Big                                    *int64
	Price                                  *float64
	Weight                                 *float32
	Paid                                   *bool
	Amount                                 *int32     // DECIMAL(9,2) unscaled
	Total                                  *int64     // DECIMAL(18,4) unscaled
	BigDec                                 *big.Int   // DECIMAL(38,6) unscaled
	OrderDate                              *int32     // days since 1970
	EventUTC, EventLocal, EventMs, EventNs *time.Time // wall times in UTC
	raw                                    map[string]*string
}

const wallLayout = "2006-01-02T15:04:05.999999999"

func main() {
	rowsPath := flag.String("rows", "", "rows.json from gen.mjs")
	out := flag.String("out", "..", "folder of the corpus")
	flag.Parse()
	b, err := os.ReadFile(*rowsPath)
	if err != nil {
		log.Fatal(err)
	}
	var in input
	if err := json.Unmarshal(b, &in); err != nil {
		log.Fatal(err)
	}
	orders := make([]order, 0, 2000)
	for _, r := range in.Rows[:min(len(in.Rows), 2000)] {
		o, err := parse(in.Columns, r)
		if err != nil {
			log.Fatal(err)
		}
		orders = append(orders, o)
	}
	var files []fileEntry
	for _, w := range writers() {
		var buf bytes.Buffer
		cols, err := w.write(&buf, orders)
		if err != nil {
			log.Fatalf("%s: %v", w.name, err)
		}
		if err := os.WriteFile(filepath.Join(*out, w.name+".parquet"), buf.Bytes(), 0o644); err != nil {
			log.Fatal(err)
		}
		rowsJSON := filepath.Join(filepath.Dir(*rowsPath), w.name+".json")
		if err := writeRows(rowsJSON, cols, orders); err != nil {
			log.Fatal(err)
		}
		files = append(files, fileEntry{File: w.name + ".parquet", Writer: w.writer, How: w.how, Columns: cols, RowsJSON: rowsJSON})
	}
	m, _ := json.Marshal(map[string]any{"files": files})
	if err := os.WriteFile(*rowsPath+".manifest", m, 0o644); err != nil {
		log.Fatal(err)
	}
}

// parse reads one rendered row back into typed values.
func parse(cols []string, r []*string) (order, error) {
	o := order{raw: map[string]*string{}}
	for i, c := range cols {
		o.raw[c] = r[i]
	}
	var err error
	set := func(e error) {
		if err == nil && e != nil {
			err = e
		}
	}
	o.OrderID, o.ClickID, o.Customer = o.raw["order_id"], o.raw["click_id"], o.raw["customer"]
	if v := o.raw["qty"]; v != nil {
		n, e := strconv.ParseInt(*v, 10, 32)
		set(e)
		o.Qty = ptr(int32(n))
	}
	if v := o.raw["big"]; v != nil {
		n, e := strconv.ParseInt(*v, 10, 64)
		set(e)
		o.Big = &n
	}
	if v := o.raw["price"]; v != nil {
		f, e := strconv.ParseFloat(*v, 64)
		set(e)
		o.Price = &f
	}
	if v := o.raw["weight"]; v != nil {
		f, e := strconv.ParseFloat(*v, 32)
		set(e)
		o.Weight = ptr(float32(f))
	}
	if v := o.raw["paid"]; v != nil {
		o.Paid = ptr(*v == "true")
	}
	if v := o.raw["amount"]; v != nil {
		o.Amount = ptr(int32(unscaled(*v).Int64()))
	}
	if v := o.raw["total"]; v != nil {
		o.Total = ptr(unscaled(*v).Int64())
	}
	if v := o.raw["big_dec"]; v != nil {
		o.BigDec = unscaled(*v)
	}
	if v := o.raw["order_date"]; v != nil {
		t, e := time.Parse(time.DateOnly, *v)
		set(e)
		o.OrderDate = ptr(int32(t.Unix() / 86400))
	}
	for _, f := range []struct {
		col string
		dst **time.Time
	}{{"event_utc", &o.EventUTC}, {"event_local", &o.EventLocal}, {"event_ms", &o.EventMs}, {"event_ns", &o.EventNs}} {
		if v := o.raw[f.col]; v != nil {
			t, e := time.Parse(wallLayout, strings.TrimSuffix(*v, "Z"))
			set(e)
			*f.dst = &t
		}
	}
	return o, err
}

// unscaled is a rendered decimal's unscaled value: its digits without
// the point.
func unscaled(s string) *big.Int {
	n, ok := new(big.Int).SetString(strings.Replace(s, ".", "", 1), 10)
	if !ok {
		log.Fatalf("bad decimal %q", s)
	}
	return n
}

func ptr[T any](v T) *T { return &v }

// int96 encodes t as a legacy INT96 timestamp: nanoseconds of the day,
// then the Julian day, little-endian.
func int96(t time.Time) string {
	day := t.Truncate(24 * time.Hour)
	b := make([]byte, 12)
	binary.LittleEndian.PutUint64(b, uint64(t.Sub(day)))
	binary.LittleEndian.PutUint32(b[8:], uint32(day.Unix()/86400+2440588))
	return string(b)
}

// twos is n as a big-endian two's complement of size bytes (0: as few
// as hold it).
func twos(n *big.Int, size int) []byte {
	if size == 0 {
		size = (n.BitLen() + 8) / 8
	}
	v := new(big.Int).Set(n)
	if v.Sign() < 0 {
		v.Add(v, new(big.Int).Lsh(big.NewInt(1), uint(8*size)))
	}
	return v.FillBytes(make([]byte, size))
}

// writeRows writes the rows the file must read as: the input's values of
// cols, and event_int96 as event_utc.
func writeRows(p string, cols []string, orders []order) error {
	rows := make([][]*string, len(orders))
	for i, o := range orders {
		for _, c := range cols {
			if c == "event_int96" {
				c = "event_utc"
			}
			rows[i] = append(rows[i], o.raw[c])
		}
	}
	b, err := json.Marshal(map[string]any{"header": cols, "rows": rows})
	if err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

// version is the module version of a dependency of this program.
func version(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "unknown"
}

// goWriter writes one file of the corpus.
type goWriter struct {
	name, writer, how string
	write             func(*bytes.Buffer, []order) ([]string, error)
}

func writers() []goWriter {
	xv := "github.com/xitongsys/parquet-go " + version("github.com/xitongsys/parquet-go")
	pv := "github.com/parquet-go/parquet-go " + version("github.com/parquet-go/parquet-go")
	return []goWriter{
		{"xitongsys_snappy", xv, "writer.NewParquetWriter, snappy, 700-row groups (Flush), PLAIN_DICTIONARY strings, INT96, DECIMAL as FIXED_LEN_BYTE_ARRAY and BYTE_ARRAY",
			func(b *bytes.Buffer, o []order) ([]string, error) { return writeXitongsys(b, o, 700) }},
		{"parquetgo_zstd_v2", pv, "GenericWriter, data page v2, zstd, 800-row groups, 4 KiB pages, dict/delta/split encodings",
			func(b *bytes.Buffer, o []order) ([]string, error) { return writeParquetGo(b, o, 2, "zstd") }},
		{"parquetgo_gzip_v1", pv, "GenericWriter, data page v1, gzip, 800-row groups, 4 KiB pages, dict/delta/split encodings",
			func(b *bytes.Buffer, o []order) ([]string, error) { return writeParquetGo(b, o, 1, "gzip") }},
	}
}
