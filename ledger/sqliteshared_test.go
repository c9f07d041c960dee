package ledger

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"convpipe/pipeline"
)

// sharedKeys is how many orders each "shared-put" child claims (the same
// ones in every child) and how many entries of its own it writes.
const sharedKeys = 600

// sharedKey is the order that every "shared-put" child claims for i.
func sharedKey(i int) pipeline.Key {
	return pipeline.Key{EventType: "12345", OrderID: fmt.Sprintf("S-%04d", i)}
}

// ownEntry is the entry that "shared-put" child c writes for i.
func ownEntry(c, i int) pipeline.Entry {
	e := sample(fmt.Sprintf("P-%d-%04d", c, i), pipeline.StateAccepted)
	e.RunID, e.Attempts = fmt.Sprintf("child-%d", c), i
	return e
}

// sharedPutChild is the "shared-put" child c: it opens the SQLite ledger
// at path shared, says "opened", waits for a line on stdin, then from 4
// goroutines claims each order sharedKey(i) (never releasing it), writes
// the entry of each one it got with its run, and writes sharedKeys
// entries of its own, taking the quota before each write; it says "got
// i" for each claim granted once its entry is written, and "finished" at
// the end. Then it waits for another line, closes the ledger (dropping
// its claims) and says "done". Any error is said and ends it.
func sharedPutChild(ctx context.Context, path string, c int, say func(string, ...any)) int {
	l, err := Open(ctx, path, Options{Shared: true, Command: fmt.Sprintf("child %d", c)})
	if err != nil {
		say("error: %v", err)
		return 1
	}
	say("opened")
	stdin := bufio.NewReader(os.Stdin)
	if _, err := stdin.ReadString('\n'); err != nil {
		say("error: stdin: %v", err)
		return 1
	}
	run := fmt.Sprintf("child-%d", c)
	var failed sync.Once
	code := 0
	eachIndex(4, sharedKeys, func(i int) bool {
		if err := sharedStep(ctx, l, run, c, i, say); err != nil {
			failed.Do(func() { code = 1 })
			say("error: %v", err)
			return false
		}
		return true
	})
	if code != 0 {
		return code
	}
	say("finished")
	if _, err := stdin.ReadString('\n'); err != nil {
		say("error: stdin: %v", err)
		return 1
	}
	if err := l.Close(); err != nil {
		say("error: close: %v", err)
		return 1
	}
	say("done")
	return 0
}

// sharedStep is one step of a "shared-put" child: claim sharedKey(i),
// write it if granted, take one request of the quota and write the
// child's own entry i.
func sharedStep(ctx context.Context, l *Ledger, run string, c, i int, say func(string, ...any)) error {
	key := sharedKey(i)
	_, found, granted, err := l.ClaimOrder(ctx, key)
	if err != nil {
		return err
	}
	if granted {
		if found {
			return fmt.Errorf("claim of %s granted, but another child wrote it", key)
		}
		e := sample(key.OrderID, pipeline.StateAccepted)
		e.RunID = run
		if err := l.Put(ctx, e); err != nil {
			return err
		}
		say("got %d", i)
	}
	if _, _, err := l.TakeQuota(ctx, 1, time.Minute, 1<<30); err != nil {
		return err
	}
	return l.Put(ctx, ownEntry(c, i))
}

// TestSharedSQLiteProcesses: four processes open one SQLite ledger
// shared and write to it at once: claims, entries and quota takes, with
// no error (no "database is busy"); every order that all of them claim
// is granted to exactly one, whose entry it holds after, and every entry
// that each wrote is there. Meanwhile a run that does not share cannot
// open the ledger, and names a holder.
func TestSharedSQLiteProcesses(t *testing.T) {
	path := sqliteBackend.place(t)
	const children = 4
	type kid struct {
		lines *bufio.Scanner
		stdin io.WriteCloser
		wait  func() error
	}
	var kids []kid
	for c := range children {
		cmd, lines, stdin := child(t, "shared-put", path, c)
		if !lines.Scan() || lines.Text() != "opened" {
			t.Fatalf("child %d: %q, %v", c, lines.Text(), lines.Err())
		}
		kids = append(kids, kid{lines, stdin, cmd.Wait})
	}
	_, err := Open(t.Context(), path, Options{})
	var le *LockedError
	if !errors.As(err, &le) || !le.Holder.Shared || !strings.HasPrefix(le.Holder.Command, "child ") {
		t.Fatalf("Open without Shared beside shared children = %v, want a *LockedError naming one of them", err)
	}
	t.Logf("message: %v", err)
	// Without the lock file, the lock on the ledger file keeps it out.
	if err := os.Remove(path + ".lock"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), path, Options{}); !errors.Is(err, pipeline.ErrLocked) {
		t.Fatalf("Open without Shared beside shared children, the lock file deleted = %v, want ErrLocked", err)
	}
	for _, k := range kids {
		fmt.Fprintln(k.stdin, "go")
	}
	owner := map[int]int{}
	for c, k := range kids {
		for k.lines.Scan() && k.lines.Text() != "finished" {
			line := k.lines.Text()
			switch {
			case strings.HasPrefix(line, "got "):
				i, _ := strconv.Atoi(strings.TrimPrefix(line, "got "))
				if o, ok := owner[i]; ok {
					t.Errorf("%s granted to children %d and %d", sharedKey(i), o, c)
				}
				owner[i] = c
			default:
				t.Errorf("child %d: %s", c, line)
			}
		}
	}
	for c, k := range kids {
		fmt.Fprintln(k.stdin, "close")
		if !k.lines.Scan() || k.lines.Text() != "done" {
			t.Errorf("child %d: %q, %v; want done", c, k.lines.Text(), k.lines.Err())
		}
		if err := k.wait(); err != nil {
			t.Fatalf("child %d: %v", c, err)
		}
	}
	l := openT(t, path)
	for i := range sharedKeys {
		o, ok := owner[i]
		if !ok {
			t.Errorf("%s granted to no child", sharedKey(i))
			continue
		}
		if e := mustGet(t, l, sharedKey(i)); e.RunID != fmt.Sprintf("child-%d", o) {
			t.Errorf("%s written by %s, granted to child %d", sharedKey(i), e.RunID, o)
		}
		for c := range children {
			want := ownEntry(c, i)
			if e := mustGet(t, l, want.Key); e.RunID != want.RunID || e.Attempts != want.Attempts {
				t.Errorf("entry %s = %+v, want %+v", want.Key, e, want)
			}
		}
	}
	counts, err := l.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := counts[pipeline.StateAccepted], int64(sharedKeys*(children+1)); got != want {
		t.Errorf("%d entries, want %d", got, want)
	}
	byChild := make([]int, children)
	for _, o := range owner {
		byChild[o]++
	}
	t.Logf("%d children wrote %d entries at once; the %d orders they all claimed went %v", children, counts[pipeline.StateAccepted], sharedKeys, byChild)
}

// TestNetworkFS: the file systems on which a SQLite ledger is not shared
// are told by their statfs magic numbers; local ones are not among them.
func TestNetworkFS(t *testing.T) {
	for magic, want := range map[int64]string{
		0x6969: "nfs", 0xFF534D42: "cifs", 0xFE534D42: "smb2", 0x00C36400: "ceph",
		0xEF53: "", 0x58465342: "", 0x9123683E: "", 0x01021994: "", 0x794C7630: "",
	} {
		if got := networkFS(magic); got != want {
			t.Errorf("networkFS(%#x) = %q, want %q", magic, got, want)
		}
	}
}

// TestSQLiteMigrateToClaims: a SQLite ledger of schema version 5 (before
// claims) opens shared, migrated, with every entry it held, and its runs
// share it.
func TestSQLiteMigrateToClaims(t *testing.T) {
	path := sqliteBackend.place(t)
	l := openT(t, path)
	mustPut(t, l, sample("O-1", pipeline.StateAccepted))
	mustPut(t, l, sample("O-2", pipeline.StatePending))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rawSQL(t, path, "DROP TABLE claims; DROP TABLE quota; ALTER TABLE conversions DROP COLUMN source; PRAGMA user_version = 5;")
	a := sqliteBackend.openShared(t, path, "", 0)
	b := sqliteBackend.openShared(t, path, "", 0)
	for _, id := range []string{"O-1", "O-2"} {
		if e := mustGet(t, b, sample(id, "").Key); e.PayloadHash != sample(id, "").PayloadHash {
			t.Errorf("entry %s after the migration = %+v", id, e)
		}
	}
	if err := claimBoth(t.Context(), claimer(a)); err != nil {
		t.Error(err)
	}
	if ok, err := claimer(b).ClaimObject(t.Context(), claimObj); err != nil || ok {
		t.Errorf("B claims A's object after the migration: %v, %v; want refused", ok, err)
	}
	var v int
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != schemaVersion {
		t.Errorf("user_version = %d, %v; want %d", v, err, schemaVersion)
	}
}

// TestSharedBesideLoneProcess: while a process holds a SQLite ledger
// alone, an Open with Shared fails with a *LockedError naming it, also
// once the lock file is deleted; once it is killed, shared Opens go in.
func TestSharedBesideLoneProcess(t *testing.T) {
	path := sqliteBackend.place(t)
	cmd, lines, _ := child(t, "hold", path, 0)
	if !lines.Scan() || lines.Text() != "locked" {
		t.Fatalf("child: %q, %v", lines.Text(), lines.Err())
	}
	_, err := Open(t.Context(), path, Options{Shared: true})
	var le *LockedError
	if !errors.As(err, &le) || le.Holder.PID != cmd.Process.Pid || le.Holder.Shared {
		t.Fatalf("a shared Open beside a lone process = %v, want a *LockedError naming pid %d", err, cmd.Process.Pid)
	}
	if err := os.Remove(path + ".lock"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), path, Options{Shared: true}); !errors.Is(err, pipeline.ErrLocked) {
		t.Fatalf("a shared Open beside a lone process, the lock file deleted = %v, want ErrLocked", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	a := sqliteBackend.openShared(t, path, "", 0)
	b := sqliteBackend.openShared(t, path, "", 0)
	mustPut(t, a, sample("O-1", pipeline.StateAccepted))
	if e := mustGet(t, b, sample("O-1", "").Key); e.State != pipeline.StateAccepted {
		t.Errorf("B reads what A wrote: %+v", e)
	}
}

// TestIsBusy: the error a shared Open tries again on is what SQLite
// returns for a database another connection holds, as sqlError words it.
func TestIsBusy(t *testing.T) {
	p := filepath.Join(t.TempDir(), "b.db")
	a, err := sql.Open("sqlite", dsn(p, url.Values{"_pragma": {"journal_mode(WAL)"}}))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ca, err := a.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	if _, err := ca.ExecContext(t.Context(), "CREATE TABLE t (x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	b, err := sql.Open("sqlite", dsn(p, url.Values{"_pragma": {"busy_timeout(0)"}}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = b.ExecContext(t.Context(), "BEGIN IMMEDIATE")
	if err == nil || !isBusy(fmt.Errorf("ledger x: open: %w", sqlError(err))) {
		t.Fatalf("a write beside another's: %v; isBusy false", err)
	}
	if isBusy(errors.New("database is busy")) || isBusy(sqlError(fmt.Errorf("x: %w", os.ErrPermission))) {
		t.Error("isBusy of errors that are not SQLite's busy")
	}
}
