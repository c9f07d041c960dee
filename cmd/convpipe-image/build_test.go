package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// buildBinary builds convpipe, static, with version stamped in.
func buildBinary(t *testing.T, version string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "convpipe")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", bin, "convpipe/cmd/convpipe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// ociArchive is an OCI archive read with the standard library alone, as
// an independent check of what go-containerregistry wrote.
type ociArchive struct {
	files map[string][]byte
}

func readArchive(t *testing.T, path string) ociArchive {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := ociArchive{files: map[string][]byte{}}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			a.files[h.Name] = data
		}
	}
	return a
}

// blob decodes the JSON blob with digest into v.
func (a ociArchive) blob(t *testing.T, digest string, v any) []byte {
	t.Helper()
	data, ok := a.files["blobs/"+strings.Replace(digest, ":", "/", 1)]
	if !ok {
		t.Fatalf("blob %s missing", digest)
	}
	if v != nil {
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("blob %s: %v", digest, err)
		}
	}
	return data
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
}

// TestImage builds the image from a freshly built binary and inspects the
// archive without go-containerregistry: an OCI layout, a scratch image of
// one layer (the binary, the CA bundle, passwd and group), the entrypoint,
// the non-root user, the labels, under 40 MB; the binary extracted from
// the layer runs --version; the same inputs give the same digest.
func TestImage(t *testing.T) {
	const version = "v9.8.7-test"
	bin := buildBinary(t, version)
	out := filepath.Join(t.TempDir(), "out", "convpipe-image.tar")
	o := Options{Binary: bin, CABundle: DefaultCABundle, Version: version, Revision: "abc123", Arch: runtime.GOARCH,
		Out: out, Tag: "convpipe", Created: time.Unix(1795000000, 0), MaxBytes: 40 << 20}
	size, digest, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() != size || size >= 40<<20 {
		t.Fatalf("archive: %v, %d bytes (Build said %d); want under 40 MiB", err, fi.Size(), size)
	}
	t.Logf("image %s: %.1f MiB", digest, float64(size)/(1<<20))

	a := readArchive(t, out)
	var ociLayout struct{ ImageLayoutVersion string }
	if err := json.Unmarshal(a.files["oci-layout"], &ociLayout); err != nil || ociLayout.ImageLayoutVersion != "1.0.0" {
		t.Errorf("oci-layout: %v, %q", err, a.files["oci-layout"])
	}
	var index struct{ Manifests []descriptor }
	if err := json.Unmarshal(a.files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v, %d manifests", err, len(index.Manifests))
	}
	m := index.Manifests[0]
	if m.Digest != digest.String() || m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.Annotations["org.opencontainers.image.ref.name"] != version {
		t.Errorf("index.json's manifest: %+v, want digest %s, an OCI manifest named %s", m, digest, version)
	}
	var manifest struct {
		Config descriptor
		Layers []descriptor
	}
	a.blob(t, m.Digest, &manifest)
	if len(manifest.Layers) != 1 || manifest.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Fatalf("layers: %+v, want one gzipped OCI layer (scratch: no base layers)", manifest.Layers)
	}
	checkConfig(t, a, manifest.Config.Digest, o)
	files := layerFiles(t, a.blob(t, manifest.Layers[0].Digest, nil))
	checkLayer(t, files)
	runExtracted(t, files["convpipe"].data, version)
	validateLayout(t, a)

	// Reproducible: the same inputs, the same image.
	o.Out = filepath.Join(t.TempDir(), "again.tar")
	if _, again, err := Build(o); err != nil || again != digest {
		t.Errorf("a second build: %s, %v; want the digest %s", again, err, digest)
	}
	o.MaxBytes = 1 << 20
	if _, _, err := Build(o); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("an archive over -max-bytes: %v, want an error", err)
	}
}

// checkConfig checks the image's configuration blob.
func checkConfig(t *testing.T, a ociArchive, digest string, o Options) {
	t.Helper()
	var cfg struct {
		Architecture, OS string
		Created          time.Time
		Config           struct {
			Entrypoint, Cmd, Env []string
			User, WorkingDir     string
			Labels               map[string]string
		}
		RootFS struct {
			Type    string
			DiffIDs []string `json:"diff_ids"`
		}
	}
	a.blob(t, digest, &cfg)
	c := cfg.Config
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH || !cfg.Created.Equal(o.Created) {
		t.Errorf("platform %s/%s created %s", cfg.OS, cfg.Architecture, cfg.Created)
	}
	if !slices.Equal(c.Entrypoint, []string{"/convpipe"}) || c.User != "65532:65532" || c.WorkingDir != WorkDir {
		t.Errorf("entrypoint %q, user %q, workdir %q; want /convpipe as 65532:65532 in %s", c.Entrypoint, c.User, c.WorkingDir, WorkDir)
	}
	if !maps.Equal(c.Labels, o.Labels()) || c.Labels["org.opencontainers.image.version"] != o.Version || c.Labels["org.opencontainers.image.revision"] != "abc123" {
		t.Errorf("labels %v, want %v", c.Labels, o.Labels())
	}
	if !slices.Contains(c.Env, "SSL_CERT_FILE="+DefaultCABundle) || len(cfg.RootFS.DiffIDs) != 1 {
		t.Errorf("env %q, diff ids %q", c.Env, cfg.RootFS.DiffIDs)
	}
}

type layerFile struct {
	hdr  *tar.Header
	data []byte
}

// layerFiles reads a gzipped layer.
func layerFiles(t *testing.T, blob []byte) map[string]layerFile {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]layerFile{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		files[strings.TrimSuffix(h.Name, "/")] = layerFile{hdr: h, data: data}
	}
	return files
}

// checkLayer: the binary, the CA bundle, the user, nothing else to run
// (no shell).
func checkLayer(t *testing.T, files map[string]layerFile) {
	t.Helper()
	bin, ok := files["convpipe"]
	if !ok || bin.hdr.Mode&0o111 == 0 || !bytes.HasPrefix(bin.data, []byte("\x7fELF")) {
		t.Fatal("the layer has no executable /convpipe")
	}
	ca, _ := os.ReadFile(DefaultCABundle)
	if got := files[DefaultCABundle[1:]]; !bytes.Equal(got.data, ca) || len(ca) == 0 {
		t.Errorf("the CA bundle in the image differs from the build machine's %s", DefaultCABundle)
	}
	if !strings.Contains(string(files["etc/passwd"].data), ":65532:65532:") {
		t.Errorf("etc/passwd has no user 65532: %q", files["etc/passwd"].data)
	}
	if w := files[WorkDir[1:]]; w.hdr == nil || w.hdr.Uid != 65532 {
		t.Errorf("%s is not owned by 65532", WorkDir)
	}
	for name, f := range files {
		if f.hdr.Typeflag == tar.TypeReg && f.hdr.Mode&0o111 != 0 && name != "convpipe" {
			t.Errorf("%s is executable: the image holds the binary alone", name)
		}
	}
}

// validateLayout unpacks the archive and has go-containerregistry's
// validate package check every digest, size and diff ID in it.
func validateLayout(t *testing.T, a ociArchive) {
	t.Helper()
	dir := t.TempDir()
	for name, data := range a.files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("validate: %v", err)
	}
}

// runExtracted runs the binary taken from the layer with --version.
func runExtracted(t *testing.T, data []byte, version string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "convpipe")
	if err := os.WriteFile(p, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p, "--version")
	cmd.Env = []string{} // as in the image: nothing from this machine
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), version) {
		t.Errorf("convpipe --version from the image: %v\n%s", err, out)
	}
}

// TestDockerfile: the Dockerfile builds the same image: a scratch final
// stage with the CA bundle at the same path, the same user, working
// directory, entrypoint and label keys.
func TestDockerfile(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var final []string // the last stage's instructions, continuation lines joined
	var line string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(s, "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(s, "\\"); ok {
			line += cont + " "
			continue
		}
		line += s
		if line == "" {
			continue
		}
		if strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			final = nil
		}
		final = append(final, line)
		line = ""
	}
	joined := strings.Join(final, "\n")
	for _, want := range []string{
		"FROM scratch",
		"COPY --from=build " + DefaultCABundle + " " + DefaultCABundle,
		`ENTRYPOINT ["` + Entrypoint + `"]`,
		`CMD ["--help"]`,
		"USER " + User,
		"WORKDIR " + WorkDir,
		"ENV SSL_CERT_FILE=" + DefaultCABundle,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("the Dockerfile's final stage lacks %q:\n%s", want, joined)
		}
	}
	for key := range (Options{Version: "v", Revision: "r"}).Labels() {
		if !strings.Contains(joined, key+"=") {
			t.Errorf("the Dockerfile's final stage lacks the label %s", key)
		}
	}
}
