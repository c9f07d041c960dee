package sinks

import (
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"convpipe/pipeline"
	"convpipe/sim"
)

// newTestBatch returns a Batch uploading to the drop d at addr.
func newTestBatch(t *testing.T, d *sim.Drop, addr string, perFile int) *Batch {
	t.Helper()
	block, err := ssh.MarshalPrivateKey(d.UserPrivateKey(), "")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{EnvSFTPKey: string(pem.EncodeToMemory(block))}
	b, err := NewBatch(BatchConfig{PerFile: perFile, SFTP: SFTPConfig{Address: addr, User: "convpipe", HostKey: string(ssh.MarshalAuthorizedKey(d.HostKey()))}},
		func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recentConv is an order of one item dated days ago.
func recentConv(id string, days int, qty string) *pipeline.Conversion {
	c := batchConv(id, []pipeline.Field{{Name: "ItemSku", Value: "S"}, {Name: "ItemCategory", Value: "c"}, {Name: "ItemQuantity", Value: qty}, {Name: "ItemPrice", Value: "9.99"}})
	for i, f := range c.Fields {
		if f.Name == "EventDate" {
			c.Fields[i].Value = time.Now().AddDate(0, 0, -days).UTC().Format(time.RFC3339)
		}
	}
	return c
}

// TestBatchStatus: a file goes up, impact (the simulator) takes it, and
// its status and line errors come back through the API, paced and
// counted as requests; an order too old for a batch file and one with a
// bad quantity are the lines in error.
func TestBatchStatus(t *testing.T) {
	h := newHarness(t, sim.Config{Quota: 1000, CompleteAfter: time.Hour}, nil)
	dir := t.TempDir()
	d, err := sim.NewDrop(dir)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := d.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	h.sim.ServeDrop(d)
	b := newTestBatch(t, d, addr, 10)

	convs := []*pipeline.Conversion{recentConv("B-1", 2, "1"), recentConv("B-2", 100, "1"), recentConv("B-3", 2, "1.5"), recentConv("B-4", 2, "3")}
	// The batch way keeps back what impact would not take from a file:
	// an order 100 days old, and 1.5 × 9.99, which has three decimals.
	if _, outs := b.Encode(convs); len(outs) != 2 || outs[0].Key.OrderID != "B-2" || outs[1].Key.OrderID != "B-3" ||
		outs[0].State != pipeline.StateFailed || !strings.Contains(outs[0].Messages[0].Text, "older than 88 days") {
		t.Fatalf("outcomes of Encode: %+v", outs)
	}
	// A file that holds the old order anyway: impact refuses its line.
	f, problems := EncodeBatch(convs)
	if len(problems) != 1 {
		t.Fatalf("problems %+v", problems)
	}
	st, err := h.sink.BatchStatus(t.Context(), f.Name)
	if err != nil || st.Found {
		t.Fatalf("before the upload: %+v, %v", st, err)
	}
	if already, err := b.Upload(t.Context(), f); err != nil || already {
		t.Fatalf("upload: %v, already %v", err, already)
	}
	if already, err := b.Upload(t.Context(), f); err != nil || !already {
		t.Fatalf("second upload: %v, already %v (want it found there)", err, already)
	}
	st, err = h.sink.BatchStatus(t.Context(), f.Name)
	if err != nil || !st.Found || st.Status != sim.BatchQueued || st.BatchID == "" {
		t.Fatalf("after the upload: %+v, %v", st, err)
	}
	h.sim.Advance(time.Hour)
	st, err = h.sink.BatchStatus(t.Context(), f.Name)
	if err != nil || st.Status != sim.BatchComplete || st.TotalRecords != 3 || st.TotalErrors != 1 {
		t.Fatalf("processed: %+v, %v", st, err)
	}
	errs, err := h.sink.BatchErrors(t.Context(), st.BatchID)
	if err != nil || len(errs) != 1 || errs[0].Line != 3 || errs[0].OrderID != "B-2" || !strings.Contains(errs[0].Reason, "EVENT_DATE_TOO_OLD") {
		t.Fatalf("errors: %+v, %v", errs, err)
	}
	for _, r := range h.sim.Requests() {
		if r.Method != http.MethodGet || r.Status != 200 || !strings.Contains(r.Path, "/FTPFileSubmissions") {
			t.Errorf("request %+v", r)
		}
	}
	if n := len(h.sim.Requests()); n != 4 {
		t.Errorf("%d requests, want 4 (a list before, two after, then the details)", n)
	}
	// Several files: one listing for all.
	sts, err := h.sink.BatchStatuses(t.Context(), []string{f.Name, "convpipe_none.csv"})
	if err != nil || !sts[f.Name].Found || sts[f.Name].TotalErrors != 1 || sts["convpipe_none.csv"].Found || len(h.sim.Requests()) != 5 {
		t.Errorf("statuses %+v, %v, %d requests", sts, err, len(h.sim.Requests()))
	}
}

// TestBatchRefusedAsAWhole: a file impact cannot read is reported with
// impact's reason, all its records in error.
func TestBatchRefusedAsAWhole(t *testing.T) {
	h := newHarness(t, sim.Config{CompleteAfter: -1}, nil)
	dir := t.TempDir()
	d, _ := sim.NewDrop(dir)
	addr, err := d.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	h.sim.ServeDrop(d)
	b := newTestBatch(t, d, addr, 10)
	f := &pipeline.BatchFile{Name: "convpipe_bad.csv", Data: []byte("OrderId,Amount\nO-1,3\n")}
	if _, err := b.Upload(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	st, err := h.sink.BatchStatus(t.Context(), f.Name)
	if err != nil || st.Status != sim.BatchFailed || st.TotalErrors != 1 || !strings.Contains(st.Message, "lacks column CampaignId") {
		t.Fatalf("status: %+v, %v", st, err)
	}
	if _, err := h.sink.BatchErrors(t.Context(), "../x"); err == nil {
		t.Error("a batch id with a slash was asked for")
	}
}
