// Package pgtest runs a real PostgreSQL server on loopback for tests: the
// Debian package's binaries (/usr/lib/postgresql/VERSION/bin, installed by
// `make test` when missing), a cluster made by initdb in a temporary
// folder, and the server on a free 127.0.0.1 port, with password
// (scram-sha-256) authentication. PostgreSQL refuses to run as root: as
// root, initdb and the server run as the unprivileged user "postgres",
// which the Debian package creates.
//
// Tests never skip when PostgreSQL is missing: they fail, saying how to
// install it.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// User and Password are the superuser of the clusters this package makes.
const (
	User     = "convpipe"
	Password = "convpipe-test-pw"
)

// Server is a running PostgreSQL cluster.
type Server struct {
	// Host and Port are where it listens (127.0.0.1 and a free port).
	Host string
	Port int
	// Dir holds the cluster (Dir/data) and its socket and log.
	Dir string

	bin  string
	cred *syscall.Credential // nil when not root
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *bytes.Buffer
}

// BinDir returns the folder of the newest installed PostgreSQL's
// binaries, or an error that says how to install them.
func BinDir() (string, error) {
	if d := os.Getenv("CONVPIPE_PG_BINDIR"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("CONVPIPE_PG_BINDIR: %w", err)
		}
		return d, nil
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(m) == 0 {
		return "", errors.New("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run `make test`, which installs the Debian package postgresql, or `apt-get install -y postgresql`")
	}
	sort.Slice(m, func(i, j int) bool { return version(m[i]) < version(m[j]) })
	return filepath.Dir(m[len(m)-1]), nil
}

func version(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// Start makes a cluster in a new temporary folder and starts its server.
func Start() (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", Dir: dir, bin: bin}
	if err := s.initdb(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.Restart(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// initdb makes the cluster, owned by the unprivileged user when root.
func (s *Server) initdb() error {
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("pgtest: running as root needs the user postgres (made by the Debian package postgresql): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(s.Dir, uid, gid); err != nil {
			return err
		}
	}
	pw := filepath.Join(s.Dir, "pwfile")
	if err := os.WriteFile(pw, []byte(Password+"\n"), 0o600); err != nil {
		return err
	}
	if s.cred != nil {
		if err := os.Chown(pw, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return err
		}
	}
	cmd := exec.Command(filepath.Join(s.bin, "initdb"), "-D", filepath.Join(s.Dir, "data"), "-U", User,
		"--pwfile", pw, "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-instructions")
	cmd.Dir = s.Dir
	s.setCred(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	return os.Remove(pw)
}

func (s *Server) setCred(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGKILL}
}

// Restart starts the server again after Stop or Kill (on a new free port
// if its old one is taken), and waits until it accepts connections.
func (s *Server) Restart() error {
	var last error
	for range 3 { // a free port may be taken before the server binds it
		if last = s.start(); last == nil {
			return nil
		}
	}
	return last
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("pgtest: server already running")
	}
	if s.Port == 0 || !portFree(s.Port) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		s.Port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	s.log = new(bytes.Buffer)
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.Dir, "data"),
		"-h", s.Host, "-p", strconv.Itoa(s.Port), "-k", s.Dir,
		"-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "max_connections=200",
		"-c", "shared_buffers=32MB", "-c", "log_min_messages=warning")
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = s.log, s.log
	s.setCred(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := pgx.Connect(ctx, s.adminURL("postgres"))
		cancel()
		if err == nil {
			c.Close(context.Background())
			return nil
		}
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("pgtest: postgres exited: %s", s.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stopLocked(syscall.SIGKILL)
			return fmt.Errorf("pgtest: postgres did not accept connections on %s:%d within 30s: %v\n%s", s.Host, s.Port, err, s.log.String())
		}
	}
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Stop shuts the server down fast (open transactions are rolled back,
// connections cut), as a database that goes away mid-run.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked(syscall.SIGINT)
}

// Kill kills the server with SIGKILL, as a crash of the database host;
// the next Restart recovers from its WAL.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked(syscall.SIGKILL)
}

func (s *Server) stopLocked(sig syscall.Signal) {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(sig)
	<-s.done
	s.cmd = nil
	if sig == syscall.SIGKILL {
		// The postmaster's children notice its death and exit; wait
		// until the port is free of them.
		for range 100 {
			if portFree(s.Port) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Close stops the server and removes its folder.
func (s *Server) Close() {
	if s == nil {
		return
	}
	s.Stop()
	os.RemoveAll(s.Dir)
}

// URL returns the URL of database db, with the user but without the
// password (give it in PGPASSWORD, or use URLWithPassword).
func (s *Server) URL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User(User), Host: net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), Path: "/" + db,
		RawQuery: "sslmode=disable"}
	return u.String()
}

// adminURL is URL with the password, for this package's own connections.
func (s *Server) adminURL(db string) string {
	u, _ := url.Parse(s.URL(db))
	u.User = url.UserPassword(User, Password)
	return u.String()
}

// CreateDatabase makes a new, empty database.
func (s *Server) CreateDatabase(ctx context.Context, db string) error {
	c, err := pgx.Connect(ctx, s.adminURL("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: connect: %w", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		return fmt.Errorf("pgtest: create database %s: %w", db, err)
	}
	return nil
}

// Exec runs sql in database db as the superuser.
func (s *Server) Exec(ctx context.Context, db, sql string) error {
	c, err := pgx.Connect(ctx, s.adminURL(db))
	if err != nil {
		return fmt.Errorf("pgtest: connect: %w", err)
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, sql)
	return err
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
	dbSeq      struct {
		sync.Mutex
		n int
	}
)

// Shared returns the package-wide server, starting it on first use, and
// sets PGPASSWORD to its password. It fails the test when PostgreSQL is
// missing or does not start; it never skips. Call StopShared from
// TestMain.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	sharedOnce.Do(func() {
		shared, sharedErr = Start()
		if sharedErr == nil {
			sharedErr = os.Setenv("PGPASSWORD", Password)
		}
	})
	if sharedErr != nil {
		tb.Fatalf("PostgreSQL for the tests: %v", sharedErr)
	}
	return shared
}

// NewDatabase makes a new, empty database on the shared server and
// returns its URL (without the password, which is in PGPASSWORD).
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	s := Shared(tb)
	dbSeq.Lock()
	dbSeq.n++
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.n)
	dbSeq.Unlock()
	if err := s.CreateDatabase(context.Background(), name); err != nil {
		tb.Fatal(err)
	}
	return s.URL(name)
}

// StopShared stops the shared server, if it was started, and removes its
// folder.
func StopShared() {
	if shared != nil {
		shared.Close()
	}
}
