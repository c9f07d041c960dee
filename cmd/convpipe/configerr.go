package main

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"convpipe/mapping"

	"go.yaml.in/yaml/v3"
)

// A configuration error names the file, the line and the dotted key
// ("convpipe.yaml:18: sink.rat: unknown key; did you mean rate?"), in the
// words of the configuration, never in those of the Go types it decodes
// into. Unknown keys are found by walking the YAML tree beside the Config
// type before anything is decoded; the errors of decoding and of each
// section's Validate, which name a dotted key or a line, are given the
// other.

// checkKeys returns an error for every key of the YAML mapping n that the
// type t (a struct, or maps and slices of them, down to the leaves) has no
// field for, each naming its line and dotted key (below path) and the
// closest valid key.
func checkKeys(n *yaml.Node, t reflect.Type, path string) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // a short form, or a type error that decoding reports
		}
		return checkStructKeys(n, t, path)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			errs = append(errs, checkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))...)
		}
		return errs
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		var errs []error
		for i, c := range n.Content {
			errs = append(errs, checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return errs
	}
	return nil
}

// checkStructKeys is checkKeys of the mapping n for the struct t.
func checkStructKeys(n *yaml.Node, t reflect.Type, path string) []error {
	fields := map[string]reflect.Type{}
	var names []string
	structKeys(t, fields, &names)
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ft, ok := fields[k.Value]
		if !ok {
			errs = append(errs, &keyError{line: k.Line, key: join(path, k.Value), text: unknownKey(k.Value, names)})
			continue
		}
		errs = append(errs, checkKeys(v, ft, join(path, k.Value))...)
	}
	return errs
}

// structKeys adds the YAML keys of the struct t, those of its inline
// structs included, to fields (with their types) and names (in order).
func structKeys(t reflect.Type, fields map[string]reflect.Type, names *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if opts == "inline" && f.Type.Kind() == reflect.Struct {
			structKeys(f.Type, fields, names)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name) // the YAML library's default
		}
		fields[name] = f.Type
		*names = append(*names, name)
	}
}

// unknownKey says that name is not a key, with the closest of known.
func unknownKey(name string, known []string) string {
	if best := mapping.ClosestName(name, known); best != "" {
		return "unknown key; did you mean " + best + "?"
	}
	return "unknown key (known: " + strings.Join(known, ", ") + ")"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// keyError is a configuration error at a line and a dotted key. The file
// is added when it is printed.
type keyError struct {
	line int // 0 when unknown
	key  string
	text string
}

func (e *keyError) Error() string { return e.key + ": " + e.text }

// configFile is a configuration file's name and YAML tree, to place the
// errors about it.
type configFile struct {
	name string
	root *yaml.Node // the document's top mapping; nil when empty
	// flags maps the dotted keys set by a command-line flag to the flag.
	flags map[string]string
}

// errorf returns the errors errs as one configError, each on its own line
// and placed in the file ("name:line: key: text").
func (f *configFile) errorf(errs []error) error {
	var lines []string
	for _, err := range errs {
		if ke, ok := err.(*keyError); ok && ke.line > 0 {
			lines = append(lines, fmt.Sprintf("%s:%d: %s", f.name, ke.line, ke))
			continue
		}
		for l := range strings.SplitSeq(err.Error(), "\n") {
			lines = append(lines, f.place(l))
		}
	}
	return configError{errors.New(strings.Join(lines, "\n"))}
}

var (
	// keyLine is a message that starts with a dotted key.
	keyLine = regexp.MustCompile(`^([a-z_]+(?:\.[A-Za-z0-9_]+|\[[0-9]+\])*): `)
	// yamlLine is a message of the YAML library: "line 9: ...", maybe
	// after "yaml: ".
	yamlLine = regexp.MustCompile(`^(?:yaml: )?line ([0-9]+): (.*)$`)
	// quotedText is the first quoted value in a message.
	quotedText = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	// typeText is its text of a value of the wrong type.
	typeText = regexp.MustCompile("^cannot unmarshal !!([a-z]+) `(.*)` into (.+)$")
)

// place prefixes the message l with the file and its line: the line of
// the key l starts with, or the line the YAML library names, then given
// the key at that line.
func (f *configFile) place(l string) string {
	if m := yamlLine.FindStringSubmatch(l); m != nil {
		line, _ := strconv.Atoi(m[1])
		text, value := m[2], ""
		if t := typeText.FindStringSubmatch(text); t != nil {
			text, value = typeMessage(t[2], t[3]), t[2]
		} else if q := quotedText.FindStringSubmatch(text); q != nil {
			value, _ = strconv.Unquote(q[0])
		}
		key := f.keyAt(line, value)
		if key == "" {
			return fmt.Sprintf("%s:%d: %s", f.name, line, text)
		}
		return fmt.Sprintf("%s:%d: %s: %s", f.name, line, key, text)
	}
	m := keyLine.FindStringSubmatch(l)
	if m == nil {
		return f.name + ": " + l
	}
	if flag, ok := f.flags[m[1]]; ok {
		return flag + ": " + l
	}
	if line := f.lineOf(m[1]); line > 0 {
		return fmt.Sprintf("%s:%d: %s", f.name, line, l)
	}
	return f.name + ": " + l
}

// typeMessage says what is wrong with the value v that the YAML library
// could not decode into the Go type goType, in the configuration's words.
func typeMessage(v, goType string) string {
	q := strconv.Quote(v)
	switch {
	case goType == "time.Duration":
		return q + " is not a duration (such as 30s or 5m)"
	case goType == "bool":
		return q + " is not true or false"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return q + " is not a whole number"
	case strings.HasPrefix(goType, "float"):
		return q + " is not a number"
	case strings.HasPrefix(goType, "[]"):
		return q + " is not a list"
	case strings.HasPrefix(goType, "map["), strings.Contains(goType, "."):
		return q + " is not a mapping of keys"
	}
	return q + " is not text"
}

// lineOf returns the line of the key at the dotted path in the file, or
// of the deepest of its parents that the file has (where a missing key
// belongs); 0 when the file has none of them.
func (f *configFile) lineOf(path string) int {
	n, line := f.root, 0
	for _, seg := range splitPath(path) {
		if n == nil {
			break
		}
		var next *yaml.Node
		switch {
		case n.Kind == yaml.MappingNode && !strings.HasPrefix(seg, "["):
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == seg {
					line, next = n.Content[i].Line, n.Content[i+1]
				}
			}
		case n.Kind == yaml.SequenceNode && strings.HasPrefix(seg, "["):
			if i, err := strconv.Atoi(strings.Trim(seg, "[]")); err == nil && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		}
		n = next
	}
	return line
}

// splitPath splits "a.b[0].c" into a, b, [0], c.
func splitPath(path string) []string {
	var segs []string
	for p := range strings.SplitSeq(path, ".") {
		for {
			i := strings.IndexByte(p, '[')
			if i < 0 {
				break
			}
			if i > 0 {
				segs = append(segs, p[:i])
			}
			j := strings.IndexByte(p, ']')
			if j < i {
				break
			}
			segs = append(segs, p[i:j+1])
			p = p[j+1:]
		}
		if p != "" {
			segs = append(segs, p)
		}
	}
	return segs
}

// keyAt returns the dotted key of what is on the given line: the value
// v when the line holds it (a flow mapping holds several), else the first
// key there; "" when there is none.
func (f *configFile) keyAt(line int, v string) string {
	if f.root == nil {
		return ""
	}
	var keys, at []string
	onLine(f.root, line, "", func(path string, n *yaml.Node) {
		keys = append(keys, path)
		if v != "" && n.Kind == yaml.ScalarNode && n.Value == v {
			at = append(at, path)
		}
	})
	switch {
	case len(at) > 0:
		return at[0]
	case len(keys) > 0:
		return keys[0]
	}
	return ""
}

// onLine calls fn, in document order, with the path of every key (its
// path, the key node) and every scalar value (its path, the value node)
// of n, at path, that is on line.
func onLine(n *yaml.Node, line int, path string, fn func(string, *yaml.Node)) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if k.Line == line {
				fn(p, k)
			}
			onLine(v, line, p, fn)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			onLine(c, line, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	case yaml.ScalarNode:
		if n.Line == line {
			fn(path, n)
		}
	}
}
