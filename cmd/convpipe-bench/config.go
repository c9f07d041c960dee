package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// baseConfig is the configuration every benchmark config starts from: the
// bundled sample's, whose mapping is the one the sample exports (and the
// generator's) are made for.
const baseConfig = "configs/sample.yaml"

// writeConfig writes a copy of the base configuration to path with the
// given settings changed: keys are dotted ("group.mode"); a nil value
// deletes the key.
func writeConfig(path string, set map[string]any) error {
	b, err := os.ReadFile(baseConfig)
	if err != nil {
		return err
	}
	var c map[string]any
	if err := yaml.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("%s: %w", baseConfig, err)
	}
	for k, v := range set {
		parts := strings.Split(k, ".")
		m := c
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		if v == nil {
			delete(m, parts[len(parts)-1])
		} else {
			m[parts[len(parts)-1]] = v
		}
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	head := "# Written by convpipe-bench from " + baseConfig + "; rewritten by every `make bench`.\n"
	return os.WriteFile(path, append([]byte(head), out...), 0o644)
}
