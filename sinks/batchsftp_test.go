package sinks

import (
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"convpipe/pipeline"
	"convpipe/sim"
)

// startDrop starts the simulator's SFTP drop folder on loopback and
// returns it, its folder and an uploader for it.
func startDrop(t *testing.T) (*sim.Drop, string, *Uploader) {
	t.Helper()
	dir := t.TempDir()
	d, err := sim.NewDrop(dir)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := d.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d, dir, newTestUploader(t, addr, string(ssh.MarshalAuthorizedKey(d.HostKey())), d)
}

func newTestUploader(t *testing.T, addr, hostKey string, d *sim.Drop) *Uploader {
	t.Helper()
	// The drop's own user key, as PEM in the environment variable.
	block, err := ssh.MarshalPrivateKey(dropKey(d), "")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{EnvSFTPKey: string(pem.EncodeToMemory(block))}
	u, err := NewUploader(SFTPConfig{Address: addr, User: "convpipe", HostKey: hostKey}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func dropKey(d *sim.Drop) ed25519.PrivateKey { return d.UserPrivateKey() }

func testFiles(t *testing.T, orders, perFile int) []*BatchFile {
	t.Helper()
	var convs []*pipeline.Conversion
	for i := range orders {
		convs = append(convs, batchConv(fmt.Sprintf("O-%05d", i),
			[]pipeline.Field{{Name: "ItemSku", Value: "S"}, {Name: "ItemCategory", Value: "c"}, {Name: "ItemQuantity", Value: "1"}, {Name: "ItemSubTotal", Value: "9.99"}}))
	}
	files, problems := SplitBatches(convs, perFile)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	return files
}

// TestUploadAndRerun: files arrive whole under their names, delivered
// once; a rerun finds them there and uploads nothing.
func TestUploadAndRerun(t *testing.T) {
	d, dir, u := startDrop(t)
	files := testFiles(t, 30, 10)
	got, err := u.Upload(t.Context(), files)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil || string(b) != string(f.Data) || got[i].Already {
			t.Fatalf("%s: %v, same %v, %+v", f.Name, err, string(b) == string(f.Data), got[i])
		}
	}
	opened := d.Opened()
	again, err := u.Upload(t.Context(), files)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range again {
		if !a.Already {
			t.Errorf("%s uploaded twice", a.Name)
		}
	}
	if d.Opened() != opened || len(d.Delivered()) != 3 {
		t.Errorf("rerun opened %d more files, delivered %v", d.Opened()-opened, d.Delivered())
	}
}

// TestUploadWrongHostKey: a server whose key is not the configured one
// is refused before anything is sent.
func TestUploadWrongHostKey(t *testing.T) {
	d, dir, _ := startDrop(t)
	other, err := sim.NewDrop(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addr := d.Addr()
	u := newTestUploader(t, addr, string(ssh.MarshalAuthorizedKey(other.HostKey())), d)
	_, err = u.Upload(t.Context(), testFiles(t, 3, 10))
	if !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), "nothing sent") {
		t.Fatalf("err = %v", err)
	}
	es, _ := os.ReadDir(dir)
	if d.Opened() != 0 || len(es) != 0 {
		t.Errorf("opened %d, folder has %d entries", d.Opened(), len(es))
	}
}

// TestUploadCutOff: a connection closed mid-write leaves only the
// temporary file, never delivered; the next upload delivers it whole.
func TestUploadCutOff(t *testing.T) {
	d, dir, u := startDrop(t)
	files := testFiles(t, 3000, 3000)
	d.CutNextUpload(int64(len(files[0].Data) / 2))
	_, err := u.Upload(t.Context(), files)
	var ue *UploadError
	if !errors.Is(err, ErrCutOff) || !errors.As(err, &ue) || ue.Sent >= ue.Size {
		t.Fatalf("err = %v", err)
	}
	if len(d.Delivered()) != 0 {
		t.Fatalf("a partial file was delivered: %v", d.Delivered())
	}
	if _, err := os.Stat(filepath.Join(dir, files[0].Name)); !os.IsNotExist(err) {
		t.Fatalf("final name exists after a cut: %v", err)
	}
	if _, err := u.Upload(t.Context(), files); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, files[0].Name))
	if string(b) != string(files[0].Data) || len(d.Delivered()) != 1 {
		t.Errorf("after the retry: whole %v, delivered %v", string(b) == string(files[0].Data), d.Delivered())
	}
}

// TestUploadRemoteFull: a server that refuses writes for want of space
// is reported as such, and nothing is delivered.
func TestUploadRemoteFull(t *testing.T) {
	d, _, u := startDrop(t)
	files := testFiles(t, 2000, 2000)
	d.SetMaxBytes(int64(len(files[0].Data) / 3))
	_, err := u.Upload(t.Context(), files)
	if !errors.Is(err, ErrRemoteFull) || !strings.Contains(err.Error(), "remote disk is full") {
		t.Fatalf("err = %v", err)
	}
	if len(d.Delivered()) != 0 {
		t.Errorf("delivered %v", d.Delivered())
	}
}
