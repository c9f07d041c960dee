package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// markerSuffix names a ledger's marker file: the ledger's path and this.
const markerSuffix = ".marker"

// marker is the content of a marker file: that a ledger was made at its
// path, and its latest use, for the message of a LostError. Only the
// file's existence decides; what it says may be missing or unreadable.
type marker struct {
	// Ledger is the ledger's absolute path, for people.
	Ledger string `json:"ledger"`
	// Created is when Open made the ledger; zero for a ledger made before
	// markers existed.
	Created time.Time `json:"created,omitzero"`
	// LastRun and LastRunStarted name the latest run begun on the ledger.
	LastRun        string    `json:"last_run,omitempty"`
	LastRunStarted time.Time `json:"last_run_started,omitzero"`
	// OpenedBy is the latest Open.
	OpenedBy Holder `json:"opened_by,omitzero"`
}

// markerNote is the first field of a marker file, for whoever finds it.
const markerNote = "written by convpipe: a ledger was made at this path; while this file exists, convpipe refuses to take a missing or empty ledger here for a new one"

// readMarker reads the marker file of the ledger at abs. found is whether
// the file exists: a file that cannot be read or parsed is found, with an
// empty marker. The error is for a marker whose existence cannot be told.
func readMarker(abs string) (m marker, found bool, err error) {
	name := abs + markerSuffix
	b, err := os.ReadFile(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return marker{}, false, nil
	case err != nil:
		if _, serr := os.Lstat(name); serr != nil {
			return marker{}, false, fmt.Errorf("read marker %s: %w", name, err)
		}
		return marker{}, true, nil
	}
	if json.Unmarshal(b, &m) != nil {
		return marker{}, true, nil
	}
	return m, true, nil
}

// writeMarker replaces the marker file of the ledger at abs with m,
// atomically: a temporary file in the same directory (0600), synced, then
// renamed over it.
func writeMarker(abs string, m marker) (err error) {
	name := abs + markerSuffix
	b, err := json.MarshalIndent(struct {
		Note string `json:"note"`
		marker
	}{markerNote, m}, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(name), filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
	}
	// Make the rename durable where the file system lets a directory be
	// synced; where it does not, the rename is as durable as it gets.
	if d, err := os.Open(filepath.Dir(name)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// LostError is returned by Open and OpenReadOnly when the ledger at a
// path where a ledger was made (its marker file says so) is missing or
// empty: taking it for a new ledger would send again every conversion it
// recorded as sent.
type LostError struct {
	// Path is the ledger's path, and Marker its marker file's.
	Path, Marker string
	// Missing is true when there is no ledger file, false when the file
	// is empty (0 bytes, or a database without the ledger's tables).
	Missing bool
	// last is what the marker file says of the ledger's last use.
	last marker
}

// Error says what is gone, what the marker knows of it and what to do.
func (e *LostError) Error() string {
	state := "empty"
	if e.Missing {
		state = "missing"
	}
	return fmt.Sprintf("the ledger at %s is %s but %s: restore it from a backup, or remove it and its marker %s to start afresh",
		e.Path, state, e.last.history(), e.Marker)
}

// history tells what m knows of its ledger's use, after "the ledger is
// empty but ".
func (m marker) history() string {
	var b strings.Builder
	switch {
	case m.LastRun != "":
		fmt.Fprintf(&b, "was used by runs up to run %s", m.LastRun)
		if !m.LastRunStarted.IsZero() {
			fmt.Fprintf(&b, ", started %s", m.LastRunStarted.UTC().Format(time.RFC3339))
		}
	case !m.Created.IsZero():
		fmt.Fprintf(&b, "was made at %s (no run recorded)", m.Created.UTC().Format(time.RFC3339))
	default:
		b.WriteString("was used before")
	}
	if !m.OpenedBy.Since.IsZero() {
		fmt.Fprintf(&b, "; last opened by %s", m.OpenedBy)
	}
	return b.String()
}

// lostFile decides, from what is at a ledger's path (whether a file
// exists, and its size) and whether its marker exists, whether the ledger
// is lost: a missing or empty file where a ledger was made. An empty or
// missing file without a marker is a new ledger; a file with content is
// opened, and its content decides.
func lostFile(exists bool, size int64, marked bool) (lost, missing bool) {
	if !marked || (exists && size > 0) {
		return false, false
	}
	return true, !exists
}

// checkFile returns a *LostError when the ledger at abs is lost (see
// lostFile), and its marker otherwise.
func (l *Ledger) checkFile(abs string) error {
	m, marked, err := readMarker(abs)
	if err != nil {
		return fmt.Errorf("ledger %s: %w", l.name, err)
	}
	l.marker, l.marked = m, marked
	fi, err := os.Stat(abs)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ledger %s: %w", l.name, err)
	}
	var size int64
	if err == nil {
		size = fi.Size()
	}
	if lost, missing := lostFile(err == nil, size, marked); lost {
		return l.lostError(missing)
	}
	return nil
}

// checkVersion returns a *LostError when a ledger that has a marker holds
// no schema (version 0): a database made anew in its place.
func (l *Ledger) checkVersion(version int) error {
	if version == 0 && l.marked {
		return l.lostError(false)
	}
	return nil
}

func (l *Ledger) lostError(missing bool) *LostError {
	return &LostError{Path: l.name, Marker: l.name + markerSuffix, Missing: missing, last: l.marker}
}

// markOpen records in the marker file that this Open opened the ledger
// at abs, creating it for a new ledger. A marker that does not name a run
// (a ledger made before markers existed) learns the latest from the
// database.
func (l *Ledger) markOpen(ctx context.Context, abs string, created bool) error {
	l.markMu.Lock()
	defer l.markMu.Unlock()
	m := l.marker
	m.Ledger = abs
	if created && m.Created.IsZero() {
		m.Created = time.Now().UTC()
	}
	if m.LastRun == "" {
		var id string
		var started int64
		err := l.wconn.QueryRowContext(ctx, `SELECT id, started FROM runs ORDER BY started DESC, id DESC LIMIT 1`).Scan(&id, &started)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("ledger %s: read the last run: %w", l.name, sqlError(err))
		}
		m.LastRun, m.LastRunStarted = id, fromNanos(started)
	}
	m.OpenedBy = l.lock.current()
	if err := writeMarker(abs, m); err != nil {
		return fmt.Errorf("ledger %s: write marker %s: %w", l.name, l.name+markerSuffix, err)
	}
	l.marker = m
	return nil
}

// markRun records in the marker file that run began at started.
func (l *Ledger) markRun(runID string, started time.Time) error {
	l.markMu.Lock()
	defer l.markMu.Unlock()
	m := l.marker
	m.LastRun, m.LastRunStarted = runID, started.UTC()
	m.OpenedBy = l.lock.current()
	if err := writeMarker(l.abs, m); err != nil {
		return fmt.Errorf("write marker %s: %w", l.name+markerSuffix, err)
	}
	l.marker = m
	return nil
}

// Made reports whether a ledger was made at path: its file or its marker
// exists. A reader that finds neither may take the ledger as empty; one
// that finds only the marker must open it to learn that it was lost.
func Made(path string) bool {
	for _, p := range []string{path, path + markerSuffix} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}
