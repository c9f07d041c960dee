package sinks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// The environment variables that hold the SFTP credentials by default.
const (
	EnvSFTPKey      = "IMPACT_SFTP_KEY"
	EnvSFTPPassword = "IMPACT_SFTP_PASSWORD"
)

// SFTPConfig configures the upload of batch files to impact's SFTP drop
// folder. The credentials come from the environment only.
type SFTPConfig struct {
	// Address is host:port.
	Address string `yaml:"address"`
	// User is the SFTP user.
	User string `yaml:"user"`
	// Dir is the remote folder ("" is the login folder).
	Dir string `yaml:"dir"`
	// KnownHosts is a known_hosts file that holds the server's host key;
	// HostKey is the key itself ("ssh-ed25519 AAAA…"). One is required:
	// a server whose key is not the one configured is refused.
	KnownHosts string `yaml:"known_hosts"`
	HostKey    string `yaml:"host_key"`
	// KeyEnv names the variable holding the private key (PEM), default
	// IMPACT_SFTP_KEY; PasswordEnv the password's, default
	// IMPACT_SFTP_PASSWORD.
	KeyEnv      string `yaml:"key_env"`
	PasswordEnv string `yaml:"password_env"`
	// ConnectTimeout bounds connecting and the SSH handshake (default 30s).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// The kinds of upload failure, for errors.Is.
var (
	// ErrHostKey: the server's host key is not the one configured; no
	// byte of any file was sent.
	ErrHostKey = errors.New("host key mismatch")
	// ErrCutOff: the connection ended during an upload. The file was
	// written under a temporary name, which impact does not take.
	ErrCutOff = errors.New("upload cut off")
	// ErrRemoteFull: the server has no space for the file.
	ErrRemoteFull = errors.New("remote disk full")
)

// UploadError is a failed upload of one batch file.
type UploadError struct {
	Name       string
	Addr       string
	Sent, Size int64
	Kind       error
	Err        error
}

func (e *UploadError) Error() string {
	what := ""
	switch e.Kind {
	case ErrCutOff:
		what = fmt.Sprintf("cut off after %d of %d bytes; the part written stays under the temporary name .%s.part, which impact does not take: upload again", e.Sent, e.Size, e.Name)
	case ErrRemoteFull:
		what = fmt.Sprintf("the remote disk is full after %d of %d bytes; the temporary file is left, impact does not take it: free space on the server or ask impact", e.Sent, e.Size)
	default:
		what = "failed"
	}
	return fmt.Sprintf("batch: upload %s to %s: %s: %v", e.Name, e.Addr, what, e.Err)
}

// Unwrap returns the kind and the cause.
func (e *UploadError) Unwrap() []error { return []error{e.Kind, e.Err} }

// Uploaded is what Upload did with one file.
type Uploaded struct {
	Name string
	// Already is set when the file (or impact's result_ or receipt_ of
	// it) was on the server before: it was not uploaded again.
	Already bool
}

// Uploader puts batch files into an SFTP folder.
type Uploader struct {
	cfg  SFTPConfig
	auth []ssh.AuthMethod
	hkcb ssh.HostKeyCallback
	algs []string
}

// NewUploader checks cfg and reads the credentials from the environment
// (getenv is os.Getenv when nil). Errors name the field or the variable,
// never a secret.
func NewUploader(cfg SFTPConfig, getenv func(string) string) (*Uploader, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if cfg.KeyEnv == "" {
		cfg.KeyEnv = EnvSFTPKey
	}
	if cfg.PasswordEnv == "" {
		cfg.PasswordEnv = EnvSFTPPassword
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		return nil, fmt.Errorf("sink.sftp.address: want host:port: %w", err)
	}
	if cfg.User == "" {
		return nil, errors.New("sink.sftp.user: required")
	}
	u := &Uploader{cfg: cfg}
	switch {
	case cfg.HostKey != "" && cfg.KnownHosts != "":
		return nil, errors.New("sink.sftp: set known_hosts or host_key, not both")
	case cfg.HostKey != "":
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(cfg.HostKey))
		if err != nil {
			return nil, fmt.Errorf("sink.sftp.host_key: not a public key (ssh-ed25519 AAAA…): %w", err)
		}
		u.hkcb, u.algs = ssh.FixedHostKey(k), []string{k.Type()}
	case cfg.KnownHosts != "":
		cb, err := knownhosts.New(cfg.KnownHosts)
		if err != nil {
			return nil, fmt.Errorf("sink.sftp.known_hosts: %w", err)
		}
		u.hkcb = cb
	default:
		return nil, errors.New("sink.sftp: known_hosts or host_key is required: the server's host key is always checked")
	}
	if pem := getenv(cfg.KeyEnv); pem != "" {
		s, err := ssh.ParsePrivateKey([]byte(pem))
		if err != nil {
			return nil, fmt.Errorf("sink.sftp: %s does not hold a private key without passphrase (PEM or OpenSSH)", cfg.KeyEnv)
		}
		u.auth = append(u.auth, ssh.PublicKeys(s))
	}
	if pw := getenv(cfg.PasswordEnv); pw != "" {
		u.auth = append(u.auth, ssh.Password(pw))
	}
	if len(u.auth) == 0 {
		return nil, fmt.Errorf("sink.sftp: no credentials: set %s (a private key) or %s", cfg.KeyEnv, cfg.PasswordEnv)
	}
	return u, nil
}

// Upload connects once and puts each file into the folder, unless it, or
// impact's result_ or receipt_ of it, is there already: each file is
// written under a temporary name (.NAME.part) and renamed when whole, so
// that impact never takes half a file. It returns what it did, file by
// file, up to the first error (an *UploadError for a file).
func (u *Uploader) Upload(ctx context.Context, files []*BatchFile) ([]Uploaded, error) {
	c, closeAll, err := u.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	stop := context.AfterFunc(ctx, closeAll)
	defer stop()
	there, err := u.remoteNames(c)
	if err != nil {
		return nil, fmt.Errorf("batch: list %s on %s: %w", u.dir(), u.cfg.Address, err)
	}
	var done []Uploaded
	for _, f := range files {
		if size, ok := there[f.Name]; (ok && size == int64(len(f.Data))) || hasAnswer(there, f.Name) {
			done = append(done, Uploaded{Name: f.Name, Already: true})
			continue
		}
		if err := u.put(c, f); err != nil {
			return done, err
		}
		done = append(done, Uploaded{Name: f.Name})
	}
	return done, nil
}

func hasAnswer(there map[string]int64, name string) bool {
	_, r := there["result_"+name]
	_, p := there["receipt_"+name]
	return r || p
}

func (u *Uploader) dir() string {
	if u.cfg.Dir == "" {
		return "."
	}
	return u.cfg.Dir
}

// connect dials, checks the host key and opens the SFTP session.
func (u *Uploader) connect(ctx context.Context) (*sftp.Client, func(), error) {
	dctx, cancel := context.WithTimeout(ctx, u.cfg.ConnectTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", u.cfg.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("batch: sftp %s: connect: %w", u.cfg.Address, err)
	}
	_ = conn.SetDeadline(time.Now().Add(u.cfg.ConnectTimeout))
	var offered ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User: u.cfg.User, Auth: u.auth, HostKeyAlgorithms: u.algs,
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			offered = key
			return u.hkcb(host, remote, key)
		},
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, u.cfg.Address, cfg)
	if err != nil {
		_ = conn.Close()
		if offered != nil && u.hkcb(u.cfg.Address, conn.RemoteAddr(), offered) != nil {
			return nil, nil, fmt.Errorf("batch: sftp %s: %w: the server offered %s %s, which the configured known_hosts/host_key does not hold: refused, nothing sent",
				u.cfg.Address, ErrHostKey, offered.Type(), ssh.FingerprintSHA256(offered))
		}
		return nil, nil, fmt.Errorf("batch: sftp %s: ssh: %w", u.cfg.Address, err)
	}
	_ = conn.SetDeadline(time.Time{})
	client := ssh.NewClient(sc, chans, reqs)
	c, err := sftp.NewClient(client)
	if err != nil {
		_ = client.Close()
		return nil, nil, fmt.Errorf("batch: sftp %s: start sftp: %w", u.cfg.Address, err)
	}
	// The connection first: closing the SFTP session waits for the
	// server, which may be the one that hangs.
	return c, func() { _ = client.Close(); _ = c.Close() }, nil
}

func (u *Uploader) remoteNames(c *sftp.Client) (map[string]int64, error) {
	es, err := c.ReadDir(u.dir())
	if err != nil {
		return nil, err
	}
	m := make(map[string]int64, len(es))
	for _, e := range es {
		m[e.Name()] = e.Size()
	}
	return m, nil
}

// put writes f under its temporary name and renames it.
func (u *Uploader) put(c *sftp.Client, f *BatchFile) error {
	tmp, final := path.Join(u.dir(), "."+f.Name+".part"), path.Join(u.dir(), f.Name)
	fail := func(sent int64, err error) error {
		kind := error(nil)
		switch {
		case isFull(err):
			kind = ErrRemoteFull
		case isCut(err):
			kind = ErrCutOff
		}
		return &UploadError{Name: f.Name, Addr: u.cfg.Address, Sent: sent, Size: int64(len(f.Data)), Kind: kind, Err: err}
	}
	w, err := c.Create(tmp)
	if err != nil {
		return fail(0, err)
	}
	var sent int64
	r := bytes.NewReader(f.Data)
	buf := make([]byte, 256<<10)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			m, err := w.Write(buf[:n])
			sent += int64(m)
			if err != nil {
				_ = w.Close()
				return fail(sent, err)
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	if err := w.Close(); err != nil {
		return fail(sent, err)
	}
	if err := c.Rename(tmp, final); err != nil {
		if st, serr := c.Stat(final); serr == nil && st.Size() == int64(len(f.Data)) {
			_ = c.Remove(tmp)
			return nil
		}
		return fail(sent, fmt.Errorf("rename %s to %s: %w", tmp, f.Name, err))
	}
	return nil
}

func isFull(err error) bool {
	var se *sftp.StatusError
	return errors.As(err, &se) && strings.Contains(strings.ToLower(se.Error()), "no space")
}

func isCut(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, sftp.ErrSSHFxConnectionLost) || strings.Contains(err.Error(), "connection lost")
}
