// Command convpipe-image builds convpipe's container image without a
// Docker daemon or a registry, with go-containerregistry: an empty base
// (scratch) and one layer holding the static binary, the build machine's
// CA bundle and a passwd/group naming the non-root user. It writes the
// image as an OCI archive (a tar of an OCI image layout), which podman,
// skopeo, crane and Docker 25+ load:
//
//	convpipe-image -binary bin/convpipe -version v1.2.3 -out out/convpipe-image.tar
//	skopeo copy oci-archive:out/convpipe-image.tar docker://registry.example/convpipe:v1.2.3
//
// The Dockerfile at the repository's root builds the same image with
// Docker. `make image` runs this command.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

func main() {
	var o Options
	flag.StringVar(&o.Binary, "binary", "bin/convpipe", "the static convpipe binary (CGO_ENABLED=0)")
	flag.StringVar(&o.CABundle, "ca", DefaultCABundle, "the CA bundle to put into the image")
	flag.StringVar(&o.Version, "version", "dev", "the version: the image's org.opencontainers.image.version label")
	flag.StringVar(&o.Revision, "revision", "", "the source revision (git commit): the org.opencontainers.image.revision label")
	flag.StringVar(&o.Arch, "arch", runtime.GOARCH, "the binary's architecture (GOARCH)")
	flag.StringVar(&o.Out, "out", "out/convpipe-image.tar", "the OCI archive to write")
	flag.StringVar(&o.Tag, "tag", "convpipe", "the image's name in the archive (org.opencontainers.image.ref.name is it:version)")
	created := flag.Int64("created", 0, "the image's creation time in Unix seconds (make image passes the commit's time); 0: $SOURCE_DATE_EPOCH, else the epoch")
	flag.Int64Var(&o.MaxBytes, "max-bytes", 40<<20, "fail if the archive is larger")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "convpipe-image: no arguments expected; see -help")
		os.Exit(2)
	}
	switch {
	case *created != 0:
		o.Created = time.Unix(*created, 0)
	case os.Getenv("SOURCE_DATE_EPOCH") != "":
		sec, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "convpipe-image: SOURCE_DATE_EPOCH:", err)
			os.Exit(2)
		}
		o.Created = time.Unix(sec, 0)
	}
	size, digest, err := Build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "convpipe-image:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %s:%s (%s), %.1f MiB\n", o.Out, o.Tag, o.Version, digest, float64(size)/(1<<20))
}
