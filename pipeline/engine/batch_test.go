package engine_test

import (
	"context"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"convpipe/ledger"
	"convpipe/pipeline"
	"convpipe/pipeline/engine"
	"convpipe/sim"
	"convpipe/sinks"
	"convpipe/sources"
)

// recentOrders returns n orders of two lines each dated two days ago, ids
// from first on.
func recentOrders(first, n int) string {
	day := time.Now().AddDate(0, 0, -2).UTC().Format(time.RFC3339)
	return strings.ReplaceAll(orders(first, n), testDate, day)
}

// batchHarness is a harness whose simulator takes batch files from an
// SFTP drop folder on loopback.
type batchHarness struct {
	*harness
	drop     *sim.Drop
	dropDir  string
	addr     string
	perFile  int
	noStatus bool
}

func newBatchHarness(t *testing.T, cfg sim.Config, perFile int) *batchHarness {
	t.Helper()
	h := newHarness(t)
	h.sim = sim.NewTestServer(t, cfg)
	b := &batchHarness{harness: h, dropDir: t.TempDir(), perFile: perFile}
	var err error
	if b.drop, err = sim.NewDrop(b.dropDir); err != nil {
		t.Fatal(err)
	}
	if b.addr, err = b.drop.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.drop.Close() })
	h.sim.ServeDrop(b.drop)
	return b
}

func (b *batchHarness) run() (pipeline.Summary, error) { return b.runCtx(b.t.Context(), 5*time.Second) }

// runCtx runs with ctx and the grace period.
func (b *batchHarness) runCtx(ctx context.Context, grace time.Duration) (pipeline.Summary, error) {
	t := b.t
	t.Helper()
	t.Setenv(sinks.EnvAccountSID, b.sim.AccountSID())
	t.Setenv(sinks.EnvAuthToken, b.token)
	src, err := sources.New(t.Context(), sources.Config{Location: filepath.Join(b.dir, "export")})
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(b.drop.UserPrivateKey(), "")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{sinks.EnvSFTPKey: string(pem.EncodeToMemory(block))}
	batch, err := sinks.NewBatch(sinks.BatchConfig{PerFile: b.perFile, SFTP: sinks.SFTPConfig{
		Address: b.addr, User: "convpipe", HostKey: string(ssh.MarshalAuthorizedKey(b.drop.HostKey())),
	}}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	api, err := sinks.New(sinks.Config{BaseURL: b.sim.URL(), Rate: "2000/s", Burst: 20, MaxAttempts: 3,
		BackoffInitial: time.Millisecond, BackoffMax: 10 * time.Millisecond}.WithDefaults(), "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	led, err := ledger.Open(t.Context(), b.ledger, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	opt := engine.Options{
		Mode: engine.Send, Source: src, Mapper: b.mapper, Batch: batch, BatchStatus: api, Ledger: led,
		RunID: fmt.Sprintf("run-%d", time.Now().UnixNano()), Grace: grace,
	}
	if b.noStatus {
		opt.BatchStatus = nil
	}
	return engine.Run(ctx, opt)
}

// files reads the ledger's batch files as name: state, and how many files
// hold each order.
func (b *batchHarness) files() (map[string]pipeline.BatchState, map[string]int) {
	b.t.Helper()
	l, err := ledger.OpenReadOnly(b.t.Context(), b.ledger)
	if err != nil {
		b.t.Fatal(err)
	}
	defer l.Close()
	files, held := map[string]pipeline.BatchState{}, map[string]int{}
	err = l.BatchFiles(b.t.Context(), func(r pipeline.BatchRecord) error {
		files[r.Name] = r.State
		lines, err := l.BatchLines(b.t.Context(), r.Name)
		for _, ln := range lines {
			held[ln.Key.OrderID]++
		}
		return err
	})
	if err != nil {
		b.t.Fatal(err)
	}
	return files, held
}

func (b *batchHarness) oneFileEach(ids []string) {
	b.t.Helper()
	_, held := b.files()
	for _, id := range ids {
		if held[id] != 1 {
			b.t.Errorf("order %s is in %d files, want 1", id, held[id])
		}
	}
	if len(held) != len(ids) {
		b.t.Errorf("%d orders in files, want %d", len(held), len(ids))
	}
}

// TestBatchRun: 25 orders go in three files; impact processes them later,
// and a later run learns each order's outcome, the line in error
// rejected with its reason; nothing is uploaded twice.
func TestBatchRun(t *testing.T) {
	b := newBatchHarness(t, sim.Config{CompleteAfter: time.Hour}, 10)
	b.write("a.csv", recentOrders(1, 25))
	// A-7 was taken before: its batch line is a duplicate.
	v, _ := url.ParseQuery("EventTypeId=12345&CampaignId=1000&OrderId=A-7&ClickId=x&CurrencyCode=EUR&OrderSubTotalPostDiscount=3&EventDate=" +
		url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)))
	if _, err := b.sim.Submit(v); err != nil {
		t.Fatal(err)
	}
	sum, err := b.run()
	if err != nil || sum.Total.Accepted != 25 {
		t.Fatalf("first run: %v, %+v", err, sum.Total)
	}
	files, _ := b.files()
	if len(files) != 3 || b.drop.Opened() != 3 || b.sim.Batches() != 3 {
		t.Fatalf("files %v; %d uploaded, %d taken", files, b.drop.Opened(), b.sim.Batches())
	}
	for n, st := range files {
		if st != pipeline.BatchUploaded {
			t.Errorf("%s is %s before impact processed it", n, st)
		}
	}
	b.oneFileEach(ids(1, 25))
	if got := b.states(); got[pipeline.StateAccepted] != 25 {
		t.Errorf("states %v", got)
	}
	b.sim.Advance(time.Hour)
	if _, err := b.run(); err != nil {
		t.Fatal(err)
	}
	files, _ = b.files()
	for n, st := range files {
		if st != pipeline.BatchProcessed {
			t.Errorf("%s is %s after impact processed it", n, st)
		}
	}
	e := b.entries()["A-7"]
	if e.State != pipeline.StateRejected || len(e.Messages) != 2 || !strings.Contains(e.Messages[0].Text, "CONV_DUPLICATE") ||
		!strings.HasPrefix(e.Messages[0].Field, "line ") {
		t.Errorf("A-7: %+v", e)
	}
	if got := b.states(); got[pipeline.StateAccepted] != 24 || got[pipeline.StateRejected] != 1 {
		t.Errorf("states %v", got)
	}
	if b.drop.Opened() != 3 {
		t.Errorf("%d uploads after the reruns, want 3", b.drop.Opened())
	}
}

// TestBatchCutOffThenResume: an upload cut off half-way stops the run;
// its file is recorded with its orders pending, and the next run uploads
// that same file before any other: every order ends in exactly one file,
// taken once by impact.
func TestBatchCutOffThenResume(t *testing.T) {
	b := newBatchHarness(t, sim.Config{CompleteAfter: -1}, 10)
	b.write("a.csv", recentOrders(1, 25))
	b.drop.CutNextUpload(200)
	if _, err := b.run(); !errors.Is(err, sinks.ErrCutOff) || !strings.Contains(err.Error(), "the next run uploads it") {
		t.Fatalf("cut-off run: %v", err)
	}
	files, _ := b.files()
	if len(files) != 1 || b.states()[pipeline.StatePending] != 10 {
		t.Fatalf("after the cut: files %v, states %v", files, b.states())
	}
	if _, err := b.run(); err != nil {
		t.Fatal(err)
	}
	b.oneFileEach(ids(1, 25))
	b.acceptedOnce(ids(1, 25)...)
	if got := b.states(); got[pipeline.StateAccepted] != 25 {
		t.Errorf("states %v", got)
	}
}

// TestBatchCrashAfterUpload: a run killed between the upload and its
// record leaves the file written and its orders pending; the next run
// finds the file on the server and does not upload it again.
func TestBatchCrashAfterUpload(t *testing.T) {
	b := newBatchHarness(t, sim.Config{CompleteAfter: time.Hour}, 10)
	b.noStatus = true
	b.write("a.csv", recentOrders(1, 5))
	if _, err := b.run(); err != nil {
		t.Fatal(err)
	}
	// What a kill just after the upload leaves.
	db, err := sql.Open("sqlite", b.ledger)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE batch_files SET state = 'written'; UPDATE conversions SET state = 'pending'; DELETE FROM objects`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := b.run(); err != nil {
		t.Fatal(err)
	}
	if b.drop.Opened() != 1 || b.sim.Batches() != 1 {
		t.Errorf("%d uploads, %d files taken: want the one", b.drop.Opened(), b.sim.Batches())
	}
	b.oneFileEach(ids(1, 5))
	if got := b.states(); got[pipeline.StateAccepted] != 5 {
		t.Errorf("states %v", got)
	}
}

// TestBatchRefusedFile: a file impact refuses as a whole fails its
// orders, with impact's reason, and the next run sends them again in a
// new file, which impact takes.
func TestBatchRefusedFile(t *testing.T) {
	b := newBatchHarness(t, sim.Config{CompleteAfter: -1}, 10)
	b.write("a.csv", recentOrders(1, 3))
	b.sim.RefuseNextFile("the file's encoding is not UTF-8")
	if _, err := b.run(); err != nil {
		t.Fatal(err)
	}
	e := b.entries()["A-2"]
	if e.State != pipeline.StateFailed || len(e.Messages) != 1 || !strings.Contains(e.Messages[0].Text, "not UTF-8") ||
		!strings.Contains(e.Messages[0].Text, "the next run sends this order again") {
		t.Fatalf("A-2 after the refusal: %+v", e)
	}
	files, _ := b.files()
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	for _, st := range files {
		if st != pipeline.BatchRefused {
			t.Errorf("file %s", st)
		}
	}
	// The object is not done: its orders have no final outcome.
	if _, err := b.run(); err != nil {
		t.Fatal(err)
	}
	if got := b.states(); got[pipeline.StateAccepted] != 3 {
		t.Errorf("states after the rerun %v", got)
	}
	b.acceptedOnce(ids(1, 3)...)
}

// TestBatchStoppedDuringUpload: a run stopped (a signal, a deadline) while
// a file goes up, its grace period over, stops without an error; the file
// stays recorded with its orders pending, and the next run uploads it.
func TestBatchStoppedDuringUpload(t *testing.T) {
	b := newBatchHarness(t, sim.Config{CompleteAfter: -1}, 10)
	b.write("a.csv", recentOrders(1, 15))
	ctx, cancel := context.WithCancelCause(t.Context())
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	b.drop.OnEvent(func(what, _ string) {
		if what == "open" {
			once.Do(func() {
				cancel(errors.New("stopped by the test"))
				close(held)
				<-release // the server holds the upload until the run ended
			})
		}
	})
	sum, err := b.runCtx(ctx, time.Millisecond)
	close(release)
	select {
	case <-held:
	default:
		// The run ended without opening a file on the server: it must
		// not wait for an upload that never began.
		t.Fatalf("the run ended without an upload: %v, %+v", err, sum)
	}
	if err != nil || !strings.Contains(sum.Stopped, "recorded and not uploaded") {
		t.Fatalf("stopped run: %v, stopped %q", err, sum.Stopped)
	}
	files, _ := b.files()
	if len(files) != 1 || b.states()[pipeline.StatePending] != 10 || b.sim.Batches() != 0 {
		t.Fatalf("after the stop: files %v, states %v, %d taken", files, b.states(), b.sim.Batches())
	}
	if _, err := b.run(); err != nil {
		t.Fatal(err)
	}
	b.oneFileEach(ids(1, 15))
	b.acceptedOnce(ids(1, 15)...)
}
