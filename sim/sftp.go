package sim

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Drop is impact's SFTP drop folder for batch files: pkg/sftp's request
// server over x/crypto/ssh on a real TCP listener, with a generated host
// key and user key, serving one flat folder on disk. Files are written
// under any name; a file counts as delivered once it has a final name
// (not starting with "." nor ending ".part") by a rename or a clean
// close. It is safe for concurrent use.
type Drop struct {
	dir     string
	hostKey ssh.Signer
	user    ssh.Signer
	userKey ed25519.PrivateKey
	ln      net.Listener

	mu sync.Mutex
	// maxBytes is the folder's disk size; 0 is unlimited.
	maxBytes, used int64
	// cutAfter, when > 0, closes the connection of the next upload once
	// that many bytes of it arrived.
	cutAfter  int64
	opened    int
	delivered []string
	wg        sync.WaitGroup
	// taken, when set, is called with each file delivered (its name and
	// its path on disk), outside the lock.
	taken func(name, path string)
	// event, when set, is told of each file opened for writing ("open")
	// and delivered ("delivered"), outside the lock.
	event func(what, name string)
}

// NewDrop returns a drop folder serving dir.
func NewDrop(dir string) (*Drop, error) {
	_, hk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	_, uk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	d := &Drop{dir: dir, userKey: uk}
	if d.hostKey, err = ssh.NewSignerFromKey(hk); err != nil {
		return nil, err
	}
	if d.user, err = ssh.NewSignerFromKey(uk); err != nil {
		return nil, err
	}
	return d, nil
}

// HostKey returns the server's public host key.
func (d *Drop) HostKey() ssh.PublicKey { return d.hostKey.PublicKey() }

// UserPrivateKey returns the private key the user "convpipe" logs in
// with.
func (d *Drop) UserPrivateKey() ed25519.PrivateKey { return d.userKey }

// Addr returns the address the drop listens on, once started.
func (d *Drop) Addr() string { return d.ln.Addr().String() }

// SetMaxBytes makes the folder's disk hold at most n bytes: a write
// beyond fails with "no space left on device".
func (d *Drop) SetMaxBytes(n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.maxBytes = n
}

// CutNextUpload closes the connection of the next file written once n
// bytes of it arrived.
func (d *Drop) CutNextUpload(n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cutAfter = n
}

// Opened returns how many files were opened for writing.
func (d *Drop) Opened() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.opened
}

// Delivered returns the names of the files delivered, in order.
func (d *Drop) Delivered() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.delivered...)
}

// Start listens on addr ("127.0.0.1:0") and serves in the background; it
// returns the address.
func (d *Drop) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("sim: drop: listen %s: %w", addr, err)
	}
	d.ln = ln
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(m ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if m.User() == "convpipe" && string(k.Marshal()) == string(d.user.PublicKey().Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(d.hostKey)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d.wg.Add(1)
			go func() { defer d.wg.Done(); d.serve(c, cfg) }()
		}
	}()
	return ln.Addr().String(), nil
}

// Close stops the listener and waits for the connections to end.
func (d *Drop) Close() error {
	if d.ln == nil {
		return nil
	}
	err := d.ln.Close()
	d.wg.Wait()
	return err
}

func (d *Drop) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, in, err := nc.Accept()
		if err != nil {
			return
		}
		go func() {
			for r := range in {
				_ = r.Reply(r.Type == "subsystem" && len(r.Payload) > 4 && string(r.Payload[4:]) == "sftp", nil)
			}
		}()
		fs := &dropFS{d: d, conn: c}
		h := sftp.Handlers{FileGet: fs, FilePut: fs, FileCmd: fs, FileList: fs}
		_ = sftp.NewRequestServer(ch, h).Serve()
		_ = ch.Close()
	}
}

// dropFS serves the folder to one connection.
type dropFS struct {
	d    *Drop
	conn net.Conn
}

// local returns the file on disk of a top-level name.
func (fs *dropFS) local(p string) (string, error) {
	p = path.Clean("/" + p)
	if path.Dir(p) != "/" || p == "/" {
		return "", os.ErrPermission
	}
	return filepath.Join(fs.d.dir, path.Base(p)), nil
}

func final(name string) bool {
	return name != "" && name[0] != '.' && filepath.Ext(name) != ".part"
}

func (fs *dropFS) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	p, err := fs.local(r.Filepath)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

func (fs *dropFS) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	p, err := fs.local(r.Filepath)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	fs.d.mu.Lock()
	fs.d.opened++
	cut := fs.d.cutAfter
	fs.d.cutAfter = 0
	event := fs.d.event
	fs.d.mu.Unlock()
	if event != nil {
		event("open", filepath.Base(p))
	}
	return &dropWriter{fs: fs, f: f, name: filepath.Base(p), cut: cut}, nil
}

func (fs *dropFS) Filecmd(r *sftp.Request) error {
	p, err := fs.local(r.Filepath)
	if err != nil {
		return err
	}
	switch r.Method {
	case "Setstat":
		return nil
	case "Remove":
		if st, err := os.Stat(p); err == nil {
			fs.d.mu.Lock()
			fs.d.used -= st.Size()
			fs.d.mu.Unlock()
		}
		return os.Remove(p)
	case "Rename":
		t, err := fs.local(r.Target)
		if err != nil {
			return err
		}
		if _, err := os.Stat(t); err == nil {
			return os.ErrExist
		}
		if err := os.Rename(p, t); err != nil {
			return err
		}
		if final(filepath.Base(t)) {
			fs.d.deliver(filepath.Base(t))
		}
		return nil
	}
	return sftp.ErrSSHFxOpUnsupported
}

func (fs *dropFS) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	switch r.Method {
	case "List":
		es, err := os.ReadDir(fs.d.dir)
		if err != nil {
			return nil, err
		}
		var infos listing
		for _, e := range es {
			if i, err := e.Info(); err == nil {
				infos = append(infos, i)
			}
		}
		return infos, nil
	case "Stat":
		if path.Clean(r.Filepath) == "/" {
			st, err := os.Stat(fs.d.dir)
			return listing{st}, err
		}
		p, err := fs.local(r.Filepath)
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		return listing{st}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

func (d *Drop) deliver(name string) {
	d.mu.Lock()
	d.delivered = append(d.delivered, name)
	taken, event := d.taken, d.event
	d.mu.Unlock()
	if event != nil {
		event("delivered", name)
	}
	if taken != nil {
		taken(name, filepath.Join(d.dir, name))
	}
}

// OnEvent makes the drop call fn with "open" and a file's name when a
// file is opened for writing, and "delivered" when a file is delivered
// (before impact takes it): for tests that stop a client at those points.
func (d *Drop) OnEvent(fn func(what, name string)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.event = fn
}

// onDeliver sets the function called with each file delivered.
func (d *Drop) onDeliver(fn func(name, path string)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.taken = fn
}

type listing []os.FileInfo

func (l listing) ListAt(out []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	if n < len(out) {
		return n, io.EOF
	}
	return n, nil
}

// dropWriter is one file being written: it keeps the disk's size, cuts
// the connection when told, and delivers a final-named file on a clean
// close.
type dropWriter struct {
	fs      *dropFS
	f       *os.File
	name    string
	cut     int64
	written int64
	broken  bool
}

func (w *dropWriter) WriteAt(p []byte, off int64) (int, error) {
	d := w.fs.d
	d.mu.Lock()
	if d.maxBytes > 0 && d.used+int64(len(p)) > d.maxBytes {
		d.mu.Unlock()
		return 0, &os.PathError{Op: "write", Path: w.name, Err: syscall.ENOSPC}
	}
	d.used += int64(len(p))
	d.mu.Unlock()
	if w.cut > 0 && w.written+int64(len(p)) > w.cut {
		w.broken = true
		_ = w.fs.conn.Close()
		return 0, io.ErrUnexpectedEOF
	}
	w.written += int64(len(p))
	return w.f.WriteAt(p, off)
}

// TransferError marks a file whose connection ended while it was open.
func (w *dropWriter) TransferError(error) { w.broken = true }

func (w *dropWriter) Close() error {
	err := w.f.Close()
	if err == nil && !w.broken && final(w.name) {
		w.fs.d.deliver(w.name)
	}
	return err
}
