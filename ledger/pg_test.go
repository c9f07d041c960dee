package ledger

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"convpipe/ledger/pgtest"
	"convpipe/pipeline"
)

// withPassword returns the URL place with the password pw in it.
func withPassword(place, pw string) string {
	u, _ := url.Parse(place)
	u.User = url.UserPassword(u.User.Username(), pw)
	return u.String()
}

// TestPostgresOpenErrors: a wrong URL, a wrong password, a database
// without the ledger and a damaged one are each a clear error from Open
// and OpenReadOnly, naming the ledger by its URL without the password,
// before anything is read or written; no message holds the password.
func TestPostgresOpenErrors(t *testing.T) {
	srv := pgtest.Shared(t)
	const wrongPW = "Wr0ng-s3cret-pw"
	ledgerDB := pgtest.NewDatabase(t)
	l, err := OpenPostgres(t.Context(), ledgerDB, "", Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := free.Addr().(*net.TCPAddr).Port
	free.Close()
	noSchema := pgtest.NewDatabase(t)
	damaged := pgtest.NewDatabase(t)
	if err := pgExec(t, damaged, `CREATE SCHEMA convpipe; CREATE TABLE convpipe.conversions (x int)`); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		url      string
		pgpass   string // PGPASSWORD
		want     []string
		noSchema bool
	}{
		{"wrong password", ledgerDB, wrongPW, []string{"cannot connect", "password authentication failed", "check PGPASSWORD"}, false},
		{"wrong password in the URL", withPassword(ledgerDB, wrongPW), pgtest.Password, []string{"password authentication failed"}, false},
		{"no password", ledgerDB, "", []string{"cannot connect"}, false},
		{"nothing listening", fmt.Sprintf("postgres://%s@127.0.0.1:%d/x?sslmode=disable&connect_timeout=5", pgtest.User, closedPort), pgtest.Password,
			[]string{"cannot connect", "connect"}, false},
		{"no such database", srv.URL("nosuchdb"), pgtest.Password, []string{"cannot connect", `database "nosuchdb" does not exist`}, false},
		{"not a URL", "mysql://u@h/db", pgtest.Password, []string{"not a postgres:// URL"}, false},
		{"unparsable", "postgres://u@h:notaport/db", pgtest.Password, []string{"cannot parse the URL"}, false},
		{"unparsable, with a password", "postgres://u:" + wrongPW + "@h:notaport/db", pgtest.Password, []string{"cannot parse the URL"}, false},
		{"no ledger in the database", noSchema, pgtest.Password, []string{"holds no convpipe ledger", "ledger init", "right database"}, true},
		{"damaged ledger", damaged, pgtest.Password, []string{`schema "convpipe" exists but has no table meta`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PGPASSWORD", tt.pgpass)
			for name, open := range map[string]func() (Store, error){
				"Open":         func() (Store, error) { return OpenPostgres(t.Context(), tt.url, "", Options{}) },
				"OpenReadOnly": func() (Store, error) { return OpenPostgresReadOnly(t.Context(), tt.url, "") },
			} {
				l, err := open()
				if err == nil {
					l.Close()
					t.Fatalf("%s succeeded", name)
				}
				t.Logf("%s: %v", name, err)
				msg := err.Error()
				if !strings.Contains(msg, "ledger "+RedactURL(tt.url)) {
					t.Errorf("%s: %q does not name the ledger %s", name, msg, RedactURL(tt.url))
				}
				for _, w := range tt.want {
					if !strings.Contains(msg, w) {
						t.Errorf("%s: %q lacks %q", name, msg, w)
					}
				}
				for _, secret := range []string{wrongPW, pgtest.Password} {
					if strings.Contains(msg, secret) {
						t.Errorf("%s: the message holds the password: %q", name, msg)
					}
				}
				if IsNoSchema(err) != tt.noSchema {
					t.Errorf("%s: IsNoSchema = %v, want %v", name, !tt.noSchema, tt.noSchema)
				}
			}
		})
	}
	// Refusing the database made nothing in it.
	t.Setenv("PGPASSWORD", pgtest.Password)
	if err := pgExec(t, noSchema, `DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'convpipe') THEN RAISE 'made'; END IF; END $$`); err != nil {
		t.Errorf("a refused database was changed: %v", err)
	}
}

// TestPostgresPassfile: the password can come from a passfile instead of
// PGPASSWORD.
func TestPostgresPassfile(t *testing.T) {
	srv := pgtest.Shared(t)
	place := pgtest.NewDatabase(t)
	pf := filepath.Join(t.TempDir(), "pgpass")
	line := fmt.Sprintf("%s:%d:*:%s:%s\n", srv.Host, srv.Port, pgtest.User, pgtest.Password)
	if err := os.WriteFile(pf, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSWORD", "")
	l, err := OpenPostgres(t.Context(), place, pf, Options{Create: true})
	if err != nil {
		t.Fatalf("open with a passfile: %v", err)
	}
	mustPut(t, l, sample("O-1", pipeline.StateAccepted))
	l.Close()
	ro, err := OpenPostgresReadOnly(t.Context(), place, pf)
	if err != nil {
		t.Fatalf("open read-only with a passfile: %v", err)
	}
	mustGet(t, ro, sample("O-1", "").Key)
	ro.Close()
	if _, err := OpenPostgres(t.Context(), place, filepath.Join(t.TempDir(), "none"), Options{}); err == nil || !strings.Contains(err.Error(), "passfile") {
		t.Errorf("open with a missing passfile = %v", err)
	}
}

// TestPostgresConcurrentMigrations: runners that make or migrate one
// ledger at the same moment apply each step once: every Open either
// opens the ledger or finds it locked by another, none fails migrating.
func TestPostgresConcurrentMigrations(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			place := pgtest.NewDatabase(t)
			var wg sync.WaitGroup
			var mu sync.Mutex
			opened, locked := 0, 0
			for range 6 {
				wg.Go(func() {
					l, err := OpenPostgres(t.Context(), place, "", Options{Create: true})
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						opened++
						mustPut(t, l, sample("O-1", pipeline.StateAccepted))
						l.Close()
					case errors.Is(err, pipeline.ErrLocked):
						locked++
					default:
						t.Errorf("open: %v", err)
					}
				})
			}
			wg.Wait()
			if opened == 0 || opened+locked != 6 {
				t.Errorf("%d opened, %d found it locked; want at least one open and no other outcome", opened, locked)
			}
			l := postgresBackend.openT(t, place)
			mustGet(t, l, sample("O-1", "").Key)
		})
	}
}

// TestPostgresDurableSession: the writer's session commits durably,
// whatever the server's default.
func TestPostgresDurableSession(t *testing.T) {
	place := pgtest.NewDatabase(t)
	if err := pgExec(t, place, `ALTER DATABASE `+place[strings.LastIndex(place, "/")+1:strings.Index(place, "?")]+` SET synchronous_commit = off`); err != nil {
		t.Fatal(err)
	}
	l := postgresBackend.openT(t, place).(*Postgres)
	var v string
	if err := l.wconn.QueryRow(t.Context(), `SHOW synchronous_commit`).Scan(&v); err != nil || v != "on" {
		t.Errorf("synchronous_commit = %q, %v; want on", v, err)
	}
}

// TestPostgresServerGoesAway stops the database server while writers
// run: every Put either committed or failed with an error naming the
// ledger; once the connection is lost no write succeeds (the run lock
// went with it), not even after the server is back; and a new Open then
// finds every Put that returned.
func TestPostgresServerGoesAway(t *testing.T) {
	srv, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	t.Setenv("PGPASSWORD", pgtest.Password)
	if err := srv.CreateDatabase(t.Context(), "ledger"); err != nil {
		t.Fatal(err)
	}
	place := srv.URL("ledger")
	l, err := OpenPostgres(t.Context(), place, "", Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	var committed []pipeline.Key
	var failures []error
	var wg sync.WaitGroup
	started := make(chan struct{}, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				e := pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: fmt.Sprintf("%d-%d", w, i)}, State: pipeline.StateAccepted}
				err := l.Put(context.Background(), e)
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
					mu.Unlock()
					return
				}
				committed = append(committed, e.Key)
				mu.Unlock()
				if i == 10 {
					started <- struct{}{}
				}
			}
		})
	}
	for range 8 {
		<-started
	}
	srv.Stop()
	wg.Wait()
	for _, err := range failures {
		if !strings.Contains(err.Error(), "ledger "+RedactURL(place)) || !strings.Contains(err.Error(), "put 1/") {
			t.Errorf("failure %q does not name the ledger and the write", err)
		}
	}
	t.Logf("%d Puts committed, then: %v", len(committed), failures[0])
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	err = l.Put(t.Context(), sample("after", pipeline.StateAccepted))
	if err == nil || !strings.Contains(err.Error(), "connection to the database was lost") {
		t.Errorf("Put after the connection was lost = %v, want the lost connection", err)
	}
	l.Close()
	place = srv.URL("ledger") // the port may have changed
	l2 := postgresBackend.openT(t, place)
	for _, k := range committed {
		mustGet(t, l2, k)
	}
	if _, ok, _ := l2.Get(t.Context(), sample("after", "").Key); ok {
		t.Error("a Put made after the connection was lost was stored")
	}
}

// freezer is a TCP proxy on loopback that can stop forwarding without
// closing anything: a server that stops answering.
type freezer struct {
	ln     net.Listener
	frozen atomic.Bool
}

func newFreezer(t *testing.T, upstream string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			go f.pipe(c, u)
			go f.pipe(u, c)
		}
	}()
	return f
}

func (f *freezer) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for f.frozen.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestPostgresServerStopsAnswering: a server that stops answering
// without closing the connection fails the write in flight after
// pgWriteTimeout, with an error naming the ledger; every later write
// fails too, and what was committed before is there.
func TestPostgresServerStopsAnswering(t *testing.T) {
	srv := pgtest.Shared(t)
	place := pgtest.NewDatabase(t)
	old := pgWriteTimeout
	pgWriteTimeout = 500 * time.Millisecond
	t.Cleanup(func() { pgWriteTimeout = old })
	fz := newFreezer(t, net.JoinHostPort(srv.Host, fmt.Sprint(srv.Port)))
	proxied := strings.Replace(place, fmt.Sprintf("%s:%d", srv.Host, srv.Port), fz.ln.Addr().String(), 1)
	l, err := OpenPostgres(t.Context(), proxied, "", Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mustPut(t, l, sample("before", pipeline.StateAccepted))
	fz.frozen.Store(true)
	err = l.Put(t.Context(), sample("frozen", pipeline.StateAccepted))
	fz.frozen.Store(false)
	if err == nil || !strings.Contains(err.Error(), "ledger "+RedactURL(proxied)) || !strings.Contains(err.Error(), "put 12345/frozen") {
		t.Fatalf("Put to a server that stopped answering = %v, want an error naming the ledger and the write", err)
	}
	t.Logf("%v", err)
	if err := l.Put(t.Context(), sample("after", pipeline.StateAccepted)); err == nil || !strings.Contains(err.Error(), "connection to the database was lost") {
		t.Errorf("Put after = %v, want the lost connection", err)
	}
	l.Close()
	postgresBackend.waitUnlocked(t, place)
	l2 := postgresBackend.openT(t, place)
	mustGet(t, l2, sample("before", "").Key)
	if _, ok, _ := l2.Get(t.Context(), sample("after", "").Key); ok {
		t.Error("a Put made after the connection was lost was stored")
	}
}
