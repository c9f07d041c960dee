package sim

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const batchHeader = "CampaignId,ActionTrackerId,EventDate,OrderId,ClickId,CustomerId,CurrencyCode,Amount,Category,Sku,Quantity"

// dropFile takes a batch file of lines (the header first) as if it had
// been delivered to a drop folder, and returns its BatchId.
func dropFile(t *testing.T, s *Server, name string, lines ...string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.takeFile(name, p)
	r := get(t, s, "/Advertisers/"+DefaultAccountSID+"/FTPFileSubmissions?FileName="+name)
	list, _ := r.body["FTPFileSubmissions"].([]any)
	if len(list) != 1 {
		t.Fatalf("list of %s: %s", name, r.raw)
	}
	if _, err := os.Stat(filepath.Join(dir, "result_"+name)); err != nil {
		t.Errorf("no result_ file: %v", err)
	}
	return list[0].(map[string]any)["BatchId"].(string)
}

func TestBatchFile(t *testing.T) {
	day := func(ago int) string { return time.Now().AddDate(0, 0, -ago).UTC().Format("2006-01-02T15:04:05Z") }
	tests := []struct {
		name  string
		lines []string
		// records and errors are the totals; lines the lines in error
		// with a fragment of their reason; failed the file's error.
		records, errors int
		lines2          map[int]string
		failed          string
		accepted        int
	}{
		{name: "good", lines: []string{batchHeader,
			"1000,12345," + day(3) + ",O-1,clk,,USD,20.00,C,S1,2",
			"1000,12345," + day(3) + ",O-1,clk,,USD,5.50,C,S2,1",
			"1000,12345," + day(80) + ",O-2,clk,,USD,12.00,,,",
		}, records: 3, accepted: 2},
		{name: "per-line errors", lines: []string{batchHeader,
			"1000,12345," + day(3) + ",O-3,clk,,USD,20.00,C,S1,fifty",
			"1000,12345," + day(89) + ",O-4,clk,,USD,12.00,,,",
			"1000,12345," + day(3) + ",O-5,clk,,USD,1.00,C,S1,1",
			"1000,12345," + day(3) + ",O-6,clk,,USD,1.00,C,S1,1",
			"1000,12345," + day(3) + ",O-5,clk,,USD,1.00,C,S2,1",
			"1000,12345," + day(3) + ",O-7,clk,,USD,1.00,C,S1,1",
			"1000,12345," + day(4) + ",O-7,clk,,USD,1.00,C,S2,1",
			"1000,12345," + day(3) + ",O-1,clk,,USD,1.00,C,S1,1",
		}, records: 8, errors: 7, accepted: 1, lines2: map[int]string{
			2: "ItemQuantity1", 3: "EVENT_DATE_TOO_OLD", 4: "not consecutive", 6: "not consecutive",
			7: "", 8: "EventDate differs", 9: "CONV_DUPLICATE",
		}},
		{name: "column missing", lines: []string{"CampaignId,EventDate,OrderId", "1000,2026-01-01,O-9"}, records: 1, failed: "lacks column ActionTrackerId"},
		{name: "unknown column", lines: []string{batchHeader + ",Colour", "1000,12345," + day(3) + ",O-9,clk,,USD,1.00,C,S1,1,red"}, records: 1, failed: "Colour is no field"},
		{name: "no lines", lines: []string{batchHeader}, failed: "no data lines"},
		{name: "not csv", lines: []string{batchHeader, `1000,"12345`}, failed: "not a CSV file"},
	}
	s := NewTestServer(t, Config{CompleteAfter: time.Hour})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(s.Accepted())
			id := dropFile(t, s, "convpipe_"+string(rune('a'+i))+".csv", tt.lines...)
			path := "/Advertisers/" + DefaultAccountSID + "/FTPFileSubmissions/" + id
			if r := get(t, s, path); r.body["Status"] != BatchQueued || r.body["TotalErrors"] != "" {
				t.Fatalf("before processing: %s", r.raw)
			}
			if r := get(t, s, path+"/ErrorDetails"); len(r.body["ErrorDetails"].([]any)) != 0 {
				t.Fatalf("error details before processing: %s", r.raw)
			}
			s.Advance(time.Hour)
			defer s.Advance(-time.Hour)
			r := get(t, s, path)
			want := BatchComplete
			if tt.failed != "" {
				want = BatchFailed
			}
			if r.body["Status"] != want || !strings.Contains(r.body["ErrorMessage"].(string), tt.failed) ||
				r.body["TotalRecords"] != strconv.Itoa(tt.records) {
				t.Fatalf("record: %s", r.raw)
			}
			if tt.failed != "" {
				return
			}
			if r.body["TotalErrors"] != strconv.Itoa(tt.errors) {
				t.Errorf("TotalErrors %v, want %d", r.body["TotalErrors"], tt.errors)
			}
			details := get(t, s, path+"/ErrorDetails").body["ErrorDetails"].([]any)
			got := map[int]string{}
			for _, d := range details {
				m := d.(map[string]any)
				got[int(m["Line"].(float64))] = m["Reason"].(string)
			}
			for line, frag := range tt.lines2 {
				if !strings.Contains(got[line], frag) || got[line] == "" {
					t.Errorf("line %d: reason %q, want one with %q", line, got[line], frag)
				}
			}
			if len(got) != len(tt.lines2) {
				t.Errorf("lines in error %v, want those of %v", got, tt.lines2)
			}
			if n := len(s.Accepted()) - before; n != tt.accepted {
				t.Errorf("%d orders accepted, want %d", n, tt.accepted)
			}
		})
	}
}
