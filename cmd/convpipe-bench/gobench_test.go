package main

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestGoBenchesExist lists each suite entry's benchmarks with `go test
// -list`: every name the pattern spells out must exist in its package, so
// that a benchmark renamed or moved to another package is not silently
// left out of `make bench`.
func TestGoBenchesExist(t *testing.T) {
	for _, gb := range goBenches {
		cmd := exec.Command(goTool(), "test", "-list", gb.pattern, gb.pkg)
		cmd.Dir = "../.." // the module root, where make bench runs the suite
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go test -list %s %s: %v\n%s", gb.pattern, gb.pkg, err, out)
		}
		listed := map[string]bool{}
		for _, l := range strings.Fields(string(out)) {
			listed[l] = true
		}
		for _, name := range spelled(t, gb.pattern) {
			if !listed[name] {
				t.Errorf("%s: %s is not a benchmark of the package (go test -list printed %q)", gb.pkg, name, out)
			}
		}
	}
}

// spelled expands a pattern of the form ^Prefix(A|B|C)$ or ^Name$ into the
// names it matches.
func spelled(t *testing.T, pattern string) []string {
	m := regexp.MustCompile(`^\^(\w+)(?:\(([\w|]+)\))?\$$`).FindStringSubmatch(pattern)
	if m == nil {
		t.Fatalf("pattern %q is not ^Prefix(A|B)$ or ^Name$", pattern)
	}
	if m[2] == "" {
		return []string{m[1]}
	}
	var names []string
	for _, alt := range strings.Split(m[2], "|") {
		names = append(names, m[1]+alt)
	}
	return names
}
