package ledger

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"convpipe/pipeline"
)

func laterEntry(i int, st pipeline.State) pipeline.Entry {
	return pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: fmt.Sprint(i)}, State: st, PayloadHash: pipeline.PayloadHash(fmt.Sprint("body ", i))}
}

// TestPutLater: queued writes are committed in order, by a later
// synchronous write, by Flush, by Close, or on their own.
func TestPutLater(t *testing.T) {
	t.Run("a later Put commits them first", func(t *testing.T) {
		l := tempLedger(t)
		for i := range 50 {
			if err := l.PutLater(laterEntry(i, pipeline.StatePending)); err != nil {
				t.Fatal(err)
			}
		}
		// The same key queued twice: the last write wins, in queue order.
		if err := l.PutLater(laterEntry(7, pipeline.StateAccepted)); err != nil {
			t.Fatal(err)
		}
		mustPut(t, l, laterEntry(1000, pipeline.StatePending))
		for i := range 50 {
			want := pipeline.StatePending
			if i == 7 {
				want = pipeline.StateAccepted
			}
			if got := mustGet(t, l, laterEntry(i, want).Key); got.State != want {
				t.Errorf("entry %d: state %s, want %s", i, got.State, want)
			}
		}
	})
	t.Run("Flush", func(t *testing.T) {
		l := tempLedger(t)
		if err := l.PutLater(laterEntry(1, pipeline.StateAccepted)); err != nil {
			t.Fatal(err)
		}
		if err := l.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		mustGet(t, l, laterEntry(1, "").Key)
		if _, _, err := l.Settled(t.Context(), laterEntry(1, "").Key, ""); err != nil {
			t.Fatal(err)
		}
		// The index, once loaded, follows later writes too.
		if err := l.PutLater(laterEntry(2, pipeline.StateAccepted)); err != nil {
			t.Fatal(err)
		}
		if err := l.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		e := laterEntry(2, pipeline.StateAccepted)
		if st, ok, err := l.Settled(t.Context(), e.Key, e.PayloadHash); err != nil || !ok || st != pipeline.StateAccepted {
			t.Errorf("Settled after a flushed PutLater = %s, %v, %v; want accepted", st, ok, err)
		}
	})
	t.Run("on their own", func(t *testing.T) {
		l := tempLedger(t)
		if err := l.PutLater(laterEntry(1, pipeline.StateAccepted)); err != nil {
			t.Fatal(err)
		}
		// Nothing else is written: the writer commits it after laterDelay.
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, ok, err := l.Get(t.Context(), laterEntry(1, "").Key)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a lone PutLater was not committed within 10 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Run("Close", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		l, err := Open(t.Context(), path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 200 {
			if err := l.PutLater(laterEntry(i, pipeline.StateAccepted)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.PutLater(laterEntry(500, pipeline.StateAccepted)); !errors.Is(err, ErrClosed) {
			t.Errorf("PutLater after Close = %v, want ErrClosed", err)
		}
		l2 := openT(t, path)
		n, err := l2.Counts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n[pipeline.StateAccepted] != 200 {
			t.Errorf("after Close and reopening: %d accepted entries, want 200", n[pipeline.StateAccepted])
		}
	})
	t.Run("an invalid entry is refused at once", func(t *testing.T) {
		l := tempLedger(t)
		if err := l.PutLater(pipeline.Entry{Key: pipeline.Key{EventType: "1"}, State: pipeline.StateAccepted}); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("PutLater without an OrderId = %v, want ErrInvalidEntry", err)
		}
		if err := l.PutLater(pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: "1"}, State: "lost"}); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("PutLater with an unknown state = %v, want ErrInvalidEntry", err)
		}
		if err := l.Flush(t.Context()); err != nil {
			t.Errorf("Flush after refused PutLaters = %v, want nil: nothing was queued", err)
		}
	})
}

// TestPutLaterFailureSticks: a queued write that fails to commit fails
// every later write, Flush and Close, since what it wrote is lost.
func TestPutLaterFailureSticks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	bad := errors.New("disk on fire")
	if err := l.enqueue(context.Background(), &writeReq{op: "put 1/9", exec: func(context.Context) error { return bad }}); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"Flush":    func() error { return l.Flush(t.Context()) },
		"Put":      func() error { return l.Put(t.Context(), laterEntry(1, pipeline.StateAccepted)) },
		"PutLater": func() error { return l.PutLater(laterEntry(2, pipeline.StateAccepted)) },
	} {
		if err := f(); !errors.Is(err, ErrLaterWrite) || !errors.Is(err, bad) {
			t.Errorf("%s after a failed PutLater = %v, want ErrLaterWrite wrapping the cause", name, err)
		}
	}
	if err := l.Close(); !errors.Is(err, ErrLaterWrite) {
		t.Errorf("Close after a failed PutLater = %v, want ErrLaterWrite", err)
	}
}
