//go:build tools

// Package tools pins the test servers that `make` builds into .tools/bin
// (see the Makefile). It is a module of its own, so that their
// dependencies stay out of convpipe's go.mod. The Go module proxy here
// serves github.com/prometheus/pushgateway v1.11.0 but not the module's
// version list, which `go install pkg@version` reads (for deprecations)
// and fails on; building from this module needs only the pinned version.
package tools

import _ "github.com/prometheus/pushgateway"
