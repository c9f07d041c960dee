package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed parts; the Dockerfile states the same.
const (
	// DefaultCABundle is Debian's CA bundle, where Go's crypto/x509 looks
	// first on Linux; the image holds it at the same path.
	DefaultCABundle = "/etc/ssl/certs/ca-certificates.crt"
	// Entrypoint is the binary's path in the image.
	Entrypoint = "/convpipe"
	// User is the non-root user and group the image runs as (distroless'
	// "nonroot").
	User = "65532:65532"
	// WorkDir is the image's working directory, owned by User.
	WorkDir = "/var/lib/convpipe"
)

// Options are what Build builds from.
type Options struct {
	Binary, CABundle, Version, Revision, Arch, Out, Tag string
	// Created is the image's creation time, also the files' modification
	// time; zero: the Unix epoch. The same options build the same image,
	// byte for byte.
	Created time.Time
	// MaxBytes fails the build when the archive is larger; 0: no limit.
	MaxBytes int64
}

// Labels are the image's OCI labels.
func (o Options) Labels() map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       "convpipe",
		"org.opencontainers.image.description": "Turns order exports (CSV, Parquet; local or S3) into impact.com conversions",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.licenses":    "proprietary",
	}
	if o.Revision != "" {
		l["org.opencontainers.image.revision"] = o.Revision
	}
	return l
}

// Build writes the image as an OCI archive at o.Out; it returns the
// archive's size and the image's digest.
func Build(o Options) (int64, v1.Hash, error) {
	if o.Version == "" || o.Binary == "" || o.Out == "" {
		return 0, v1.Hash{}, errors.New("the binary, the version and the output are required")
	}
	if o.Created.IsZero() {
		o.Created = time.Unix(0, 0)
	}
	layerTar, err := rootfs(o)
	if err != nil {
		return 0, v1.Hash{}, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return 0, v1.Hash{}, fmt.Errorf("layer: %w", err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, MediaType: types.OCILayer, History: v1.History{
		Created: v1.Time{Time: o.Created.UTC()}, CreatedBy: "convpipe-image " + o.Version, Comment: "convpipe, the CA bundle, passwd",
	}})
	if err != nil {
		return 0, v1.Hash{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return 0, v1.Hash{}, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", o.Arch, v1.Time{Time: o.Created.UTC()}
	cf.Config = v1.Config{
		Entrypoint: []string{Entrypoint},
		Cmd:        []string{"--help"},
		User:       User,
		WorkingDir: WorkDir,
		Env:        []string{"PATH=/", "SSL_CERT_FILE=" + DefaultCABundle},
		Labels:     o.Labels(),
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return 0, v1.Hash{}, err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	digest, err := img.Digest()
	if err != nil {
		return 0, v1.Hash{}, err
	}
	size, err := writeArchive(o, img)
	if err != nil {
		return 0, v1.Hash{}, err
	}
	if o.MaxBytes > 0 && size > o.MaxBytes {
		return size, digest, fmt.Errorf("%s: %d bytes, over the limit of %d", o.Out, size, o.MaxBytes)
	}
	return size, digest, nil
}

// rootfs is the image's one layer, as an uncompressed tar.
func rootfs(o Options) ([]byte, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	if len(bin) < 4 || string(bin[1:4]) != "ELF" {
		return nil, fmt.Errorf("binary %s: not an ELF executable", o.Binary)
	}
	ca, err := os.ReadFile(o.CABundle)
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := o.Created.UTC()
	dir := func(name string, mode int64, uid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: uid, ModTime: mtime, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	steps := []func() error{
		func() error { return dir("etc/", 0o755, 0) },
		func() error { return dir("etc/ssl/", 0o755, 0) },
		func() error { return dir("etc/ssl/certs/", 0o755, 0) },
		func() error { return file(DefaultCABundle[1:], 0o644, ca) },
		func() error {
			return file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/var/lib/convpipe:/sbin/nologin\n"))
		},
		func() error { return file("etc/group", 0o644, []byte("root:x:0:\nnonroot:x:65532:\n")) },
		// Spills (group.temp_dir) and the default ledger's folder.
		func() error { return dir("tmp/", 0o1777, 0) },
		func() error { return dir("var/", 0o755, 0) },
		func() error { return dir("var/lib/", 0o755, 0) },
		func() error { return dir(WorkDir[1:]+"/", 0o700, 65532) },
		func() error { return file(Entrypoint[1:], 0o755, bin) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeArchive writes img as an OCI image layout in a temporary folder,
// then tars that folder to o.Out (through a temporary file renamed over
// it). It returns the archive's size.
func writeArchive(o Options, img v1.Image) (int64, error) {
	tmp, err := os.MkdirTemp("", "convpipe-image-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return 0, err
	}
	ref := map[string]string{
		"org.opencontainers.image.ref.name": o.Version,
		"io.containerd.image.name":          o.Tag + ":" + o.Version,
	}
	if err := p.AppendImage(img, layout.WithAnnotations(ref)); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(o.Out), 0o755); err != nil {
		return 0, err
	}
	out, err := os.CreateTemp(filepath.Dir(o.Out), filepath.Base(o.Out)+".tmp-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(out.Name())
	if err := tarDir(out, tmp, o.Created.UTC()); err != nil {
		out.Close()
		return 0, err
	}
	fi, err := out.Stat()
	if err != nil {
		out.Close()
		return 0, err
	}
	if err := out.Close(); err != nil {
		return 0, err
	}
	if err := os.Chmod(out.Name(), 0o644); err != nil {
		return 0, err
	}
	return fi.Size(), os.Rename(out.Name(), o.Out)
}

// tarDir writes the files under root to w as a tar, in lexical order,
// with mtime and no owner.
func tarDir(w io.Writer, root string, mtime time.Time) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: 0o755, ModTime: mtime})
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o644, Size: int64(len(data)), ModTime: mtime}); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
