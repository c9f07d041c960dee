package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"convpipe/pipeline"
)

// Holder describes the process that holds a ledger's lock. It is written
// into the lock file so that a second opener can say who is in the way.
type Holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	RunID   string    `json:"run_id,omitempty"`
	Command string    `json:"command,omitempty"`
	Since   time.Time `json:"since"`
	// Shared is true for a run that holds the lock shared with other
	// runs (Options.Shared): the holder named is the latest of them.
	Shared bool `json:"shared,omitempty"`
}

// String returns "pid 123 on host h, run R, since T" with the parts known.
func (h Holder) String() string {
	if h.PID == 0 {
		return "an unknown process"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pid %d", h.PID)
	if h.Host != "" {
		fmt.Fprintf(&b, " on host %s", h.Host)
	}
	if h.RunID != "" {
		fmt.Fprintf(&b, ", run %s", h.RunID)
	}
	if h.Command != "" {
		fmt.Fprintf(&b, " (%s)", h.Command)
	}
	if !h.Since.IsZero() {
		fmt.Fprintf(&b, ", since %s", h.Since.Format(time.RFC3339))
	}
	if h.Shared {
		b.WriteString(", sharing it with runs of ledger.shared (the latest of them to open)")
	}
	return b.String()
}

// LockedError is returned by Open when another process holds the ledger's
// lock. It wraps pipeline.ErrLocked.
type LockedError struct {
	// Path is the ledger's path.
	Path string
	// Holder is who holds the lock, as far as its lock file tells.
	Holder Holder
}

// Error returns a message naming the ledger and the holder.
func (e *LockedError) Error() string {
	return fmt.Sprintf("ledger %s: %v: held by %s; wait for that run to finish (or stop it) and try again",
		e.Path, pipeline.ErrLocked, e.Holder)
}

// Unwrap returns pipeline.ErrLocked.
func (e *LockedError) Unwrap() error { return pipeline.ErrLocked }

// flock is an advisory lock on "<ledger>.lock", held through an open
// file: the kernel releases it when the process ends, however it ends (a
// SIGKILLed run leaves no stale lock behind). flock locks belong to the
// open file description, so two Opens in one process exclude each other
// as well. It is exclusive, or shared for an Open with Options.Shared:
// shared holders coexist, and exclude (and are excluded by) an exclusive
// one.
type flock struct {
	mu     sync.Mutex
	f      *os.File
	holder Holder
	shared bool // held shared (Options.Shared)
}

// lockFile takes the lock, shared or exclusive, at once or fails with a
// *LockedError.
func lockFile(dbPath, command string, shared bool) (*flock, error) {
	name := dbPath + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: create lock file: %w", dbPath, err)
	}
	if err := flockNB(f, shared); err != nil {
		h := readHolder(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EAGAIN) {
			return nil, &LockedError{Path: dbPath, Holder: h}
		}
		return nil, fmt.Errorf("ledger %s: lock %s: %w", dbPath, name, err)
	}
	host, _ := os.Hostname()
	l := &flock{f: f, holder: Holder{PID: os.Getpid(), Host: host, Command: command, Since: time.Now().UTC(), Shared: shared}, shared: shared}
	if err := l.write(); err != nil {
		l.release()
		return nil, fmt.Errorf("ledger %s: write lock file: %w", dbPath, err)
	}
	return l, nil
}

// setRun records the run now holding the lock.
func (l *flock) setRun(runID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.holder.RunID = runID
	return l.writeLocked()
}

// current returns the holder as now recorded.
func (l *flock) current() Holder {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holder
}

func (l *flock) write() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writeLocked()
}

func (l *flock) writeLocked() error {
	if l.f == nil {
		return nil
	}
	b, err := json.Marshal(l.holder)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	_, err = l.f.WriteAt(b, 0)
	return err
}

// release drops the lock. The lock file stays: removing it would let a
// third opener lock a new file while a second still waits on the old one.
func (l *flock) release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := funlock(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// readHolder reads the holder recorded in a lock file; a file being
// rewritten at that moment reads as an unknown holder.
func readHolder(f *os.File) Holder {
	var h Holder
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return h
	}
	if json.Unmarshal(b, &h) != nil {
		return Holder{}
	}
	return h
}
