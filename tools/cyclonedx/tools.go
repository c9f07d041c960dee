//go:build tools

// Package cyclonedx pins cyclonedx-gomod, which `make dist` builds into
// .tools/bin to write the release's SBOM. A module of its own, apart from
// the Pushgateway's (../go.mod), so that neither changes the other's
// dependencies.
package cyclonedx

import _ "github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod"
