package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// baseConfig is a complete, valid configuration; the cases of
// TestConfigErrors change one line of it.
const baseConfig = `source:
  location: in/
  csv: {delimiter: auto}
mapping:
  order_key: [order_id]
  fields:
    EventTypeId: {const: "12345"}
    CampaignId: {const: "1000"}
    OrderId: order_id
    EventDate: {column: created_at, transforms: [{time: {layout: rfc3339}}]}
    ClickId: click_id
  items:
    ItemSku: sku
    ItemCategory: {const: General}
    ItemQuantity: {column: qty, transforms: [integer]}
    ItemPrice: {column: price, transforms: [number]}
sink:
  rate: 1000/h
  workers: 2
ledger:
  path: out/ledger.db
run:
  grace: 30s
`

// TestConfigErrors checks that every configuration error names the file,
// the line and the dotted key, and suggests the closest valid key.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name      string
		old, new  string // replace old by new in baseConfig
		want      string // the whole error, with the file as "F"
		wantInErr string // or a part of it
	}{
		{name: "valid", old: "", new: ""},
		{name: "top-level key", old: "mapping:\n", new: "mappings:\n",
			want: `F:4: mappings: unknown key; did you mean mapping?`},
		{name: "sink key", old: "  rate: 1000/h", new: "  rat: 1000/h",
			want: `F:18: sink.rat: unknown key; did you mean rate?`},
		{name: "source csv key", old: "{delimiter: auto}", new: "{delimter: auto}",
			want: `F:3: source.csv.delimter: unknown key; did you mean delimiter?`},
		{name: "key with no near match", old: "  grace: 30s", new: "  colour: red",
			wantInErr: `F:23: run.colour: unknown key (known: queue, grace, `},
		{name: "transform key", old: "{time: {layout: rfc3339}}", new: "{time: {layot: rfc3339}}",
			want: `F:10: mapping.fields.EventDate.transforms[0].time.layot: unknown key; did you mean layout?`},
		{name: "field spec key", old: "ClickId: click_id", new: "ClickId: {colum: click_id}",
			want: `F:11: mapping.fields.ClickId.colum: unknown key; did you mean column?`},
		{name: "item field abbreviated", old: "    ItemQuantity:", new: "    ItemQty:",
			want: `F:15: mapping.items.ItemQty: unknown item-level field; did you mean ItemQuantity?`},
		{name: "rate", old: "rate: 1000/h", new: "rate: 1k/h",
			want: `F:18: sink.rate: "1k/h": the count must be a number > 0`},
		{name: "literal token", old: "  workers: 2", new: "  workers: 2\n  auth_token: s3cr3t",
			want: `F:20: sink.auth_token: a token must not be written in the configuration: leave it empty to read IMPACT_AUTH_TOKEN, or write ${VAR}`},
		{name: "two sink errors", old: "  workers: 2", new: "  workers: -1\n  burst: -2",
			want: "F:20: sink.burst: must be > 0\nF:19: sink.workers: must be > 0"},
		{name: "wrong type", old: "  workers: 2", new: "  workers: two",
			want: `F:19: sink.workers: "two" is not a whole number`},
		{name: "wrong type of a duration", old: "  grace: 30s", new: "  grace: soon",
			want: `F:23: run.grace: "soon" is not a duration (such as 30s or 5m)`},
		{name: "transform short form", old: "ClickId: click_id", new: "ClickId: {column: click_id, transforms: [trm]}",
			want: `F:11: mapping.fields.ClickId.transforms[0]: unknown transform "trm"; did you mean trim?`},
		{name: "wrong type in a flow mapping", old: "csv: {delimiter: auto}", new: "csv: {delimiter: auto, lazy_quotes: sometimes}",
			want: `F:3: source.csv.lazy_quotes: "sometimes" is not true or false`},
		{name: "mapping value", old: "ClickId: click_id", new: "ClickId: {column: click_id, transforms: [{hash: md5}]}",
			wantInErr: `F:11: mapping.fields.ClickId.transforms[0].hash: `},
		{name: "mapping under a list", old: "ledger:\n", new: "group: {mode: sortd}\nledger:\n",
			wantInErr: `F:20: group.mode: `},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "convpipe.yaml")
			text := strings.Replace(baseConfig, tc.old, tc.new, 1)
			if tc.old != "" && text == baseConfig {
				t.Fatalf("%q is not in the base configuration", tc.old)
			}
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(p)
			if err == nil {
				err = cfg.validate()
			}
			got := ""
			if err != nil {
				got = strings.ReplaceAll(err.Error(), p, "F")
				if _, ok := err.(configError); !ok {
					t.Errorf("error %T is not a configError (exit 2)", err)
				}
			}
			switch {
			case tc.wantInErr != "":
				if !strings.Contains(got, tc.wantInErr) {
					t.Errorf("got error\n%s\nwant it to contain\n%s", got, tc.wantInErr)
				}
			case got != tc.want:
				t.Errorf("got error\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestValidateChecksTheSink runs `convpipe validate` on configurations
// whose only fault is in the sink section: it must exit 2, as run does,
// before reading anything.
func TestValidateChecksTheSink(t *testing.T) {
	for _, tc := range []struct{ old, new string }{
		{"rate: 1000/h", "rate: 1k/h"},
		{"  workers: 2", "  workers: 2\n  auth_token: s3cr3t"},
	} {
		dir := t.TempDir()
		p := filepath.Join(dir, "convpipe.yaml")
		text := strings.Replace(baseConfig, "location: in/", "location: "+filepath.Join(dir, "in.csv"), 1)
		if err := os.WriteFile(p, []byte(strings.Replace(text, tc.old, tc.new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		// Dated yesterday: inside max_event_age whenever the test runs.
		csv := "order_id,created_at,click_id,sku,qty,price\nA1," + time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly) + "T10:00:00Z,c1,S1,1,9.99\n"
		if err := os.WriteFile(filepath.Join(dir, "in.csv"), []byte(csv), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []string{"validate", "run"} {
			args := []string{cmd, "--config", p}
			if cmd == "run" {
				args = append(args, "--dry-run", "--dry-run-out", filepath.Join(dir, "out.jsonl"), "--ledger", filepath.Join(dir, "l.db"))
			}
			if code := run(args); code != exitUsage {
				t.Errorf("%s with %q: exit %d, want %d", cmd, tc.new, code, exitUsage)
			}
		}
		// The same file with a good sink section is valid.
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if code := run([]string{"validate", "--config", p}); code != exitOK {
			t.Errorf("validate of the good configuration: exit %d, want 0", code)
		}
	}
}
