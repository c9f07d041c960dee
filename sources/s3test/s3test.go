// Package s3test runs a real S3-compatible server (versitygw) on loopback
// for tests, and a TCP proxy that cuts connections mid-response.
//
// The versitygw binary is found from $VERSITYGW, else at
// <module root>/.tools/bin/versitygw, where `make test` installs it
// (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0).
package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Credentials and region of the servers this package starts.
const (
	AccessKey = "convpipe-test"
	SecretKey = "convpipe-test-secret"
	Region    = "us-east-1"
)

// Server is a running versitygw serving the folder Dir.
type Server struct {
	// Endpoint is the server's URL, http://127.0.0.1:PORT.
	Endpoint string
	// Dir is the folder whose subfolders are the buckets.
	Dir string

	cmd  *exec.Cmd
	done chan struct{}
	log  *bytes.Buffer
}

// Binary returns the path of the versitygw binary.
func Binary() (string, error) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("VERSITYGW: %w", err)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".tools", "bin", "versitygw")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("versitygw not found at %s and VERSITYGW is not set: %w", p, err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("versitygw: no go.mod above the working directory and VERSITYGW is not set")
		}
		dir = parent
	}
}

// Start starts versitygw on a free loopback port, serving dir, and waits
// until it accepts connections.
func Start(dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	var last error
	for range 3 { // the free port may be taken before the server binds it
		s, err := start(bin, dir)
		if err == nil {
			return s, nil
		}
		last = err
	}
	return nil, last
}

func start(bin, dir string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{Endpoint: "http://" + addr, Dir: dir, done: make(chan struct{}), log: new(bytes.Buffer)}
	s.cmd = exec.Command(bin, "--port", addr, "--quiet", "posix", dir)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey, "VGW_REGION="+Region)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	setPdeathsig(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("versitygw exited: %s", s.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Close()
			return nil, fmt.Errorf("versitygw did not listen on %s within 15s", addr)
		}
	}
}

// Close stops the server.
func (s *Server) Close() error {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	s.cmd.Process.Kill()
	<-s.done
	return nil
}

// Client returns an S3 client with the server's credentials.
func (s *Server) Client() *s3.Client {
	return s.ClientFor(s.Endpoint)
}

// ClientFor returns an S3 client with the server's credentials for
// endpoint (the server's, or a proxy's in front of it).
func (s *Server) ClientFor(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	})
}

// CreateBucket creates a bucket.
func (s *Server) CreateBucket(ctx context.Context, bucket string) error {
	_, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}

// Put uploads body as bucket/key.
func (s *Server) Put(ctx context.Context, bucket, key string, body io.ReadSeeker) error {
	_, err := s.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: body})
	if err != nil {
		return fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	return nil
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
	sharedDir  string
)

// Shared returns the package-wide server, starting it on first use. When
// the binary is missing it skips the test under -short and fails it
// otherwise. Call StopShared from TestMain after the tests ran.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	if _, err := Binary(); err != nil {
		if testing.Short() {
			tb.Skipf("S3 tests need versitygw: %v", err)
		}
		tb.Fatalf("S3 tests need versitygw (run make test, which installs it): %v", err)
	}
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "s3test-")
		if sharedErr == nil {
			shared, sharedErr = Start(sharedDir)
		}
	})
	if sharedErr != nil {
		tb.Fatalf("start versitygw: %v", sharedErr)
	}
	return shared
}

// StopShared stops the package-wide server, if it was started, and
// removes its folder.
func StopShared() {
	if shared != nil {
		shared.Close()
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
}
