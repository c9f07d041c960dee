package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"

	"convpipe/pipeline"
)

// Items from a list column (items.from): one line per order, its items
// nested in one cell as a JSON array of objects, as sources reads a
// Parquet LIST<STRUCT<…>> column (DuckDB, Spark, BigQuery, arrow) and as
// some CSV exports write them. Every element is one item; the item
// fields' columns name the element's fields. The item plans are compiled
// with a column registry of their own (itemsFrom.columns), resolved
// against each element's field names, so that they are not looked for in
// the file's header.

// itemsFromKey is the key of items that names the list column.
const itemsFromKey = "from"

// itemsFrom is the compiled items.from.
type itemsFrom struct {
	column  string
	slot    int // the list column's slot in the line's header
	columns []string
	slots   map[string]int
	uses    [][]string
	// header caches the element fields' positions of the last element
	// shape seen.
	header atomic.Pointer[resolvedFields]
}

// resolvedFields holds the positions of the item columns in one element
// shape (its field names, sorted).
type resolvedFields struct {
	key     string
	h       *pipeline.Header
	idx     []int
	missing []string
}

// splitItemsFrom takes items.from out of the item specs and checks it: a
// plain column name.
func splitItemsFrom(items map[string]FieldSpec) (map[string]FieldSpec, string, error) {
	spec, ok := items[itemsFromKey]
	if !ok {
		return items, "", nil
	}
	rest := maps.Clone(items)
	delete(rest, itemsFromKey)
	plain := FieldSpec{Column: spec.Column}
	if spec.Column == "" || !equalSpec(spec, plain) {
		return nil, "", errAt("items.from", "the name of the column that holds each order's items (a list column), with nothing else")
	}
	for name, s := range rest {
		if s.Split != "" {
			return nil, "", errAt("items."+name+".split", "not with items.from: each element of the list is one item")
		}
	}
	return rest, spec.Column, nil
}

func equalSpec(a, b FieldSpec) bool {
	return a.Column == b.Column && a.Const == nil && a.Template == "" && a.Expr == "" && len(a.Vars) == 0 &&
		len(a.Transforms) == 0 && a.Split == "" && !a.KeepEmpty && b.Const == nil
}

// compileItemsFrom compiles the item fields against the elements of the
// list column from, with their own column registry.
func (m *Mapping) compileItemsFrom(items map[string]FieldSpec, from string) []error {
	m.from = &itemsFrom{column: from, slot: m.use(from, "items.from")}
	columns, slots, uses := m.columns, m.slots, m.uses
	m.columns, m.slots, m.uses = nil, make(map[string]int), nil
	errs := m.compileLevel(items, true, "items")
	m.from.columns, m.from.slots, m.from.uses = m.columns, m.slots, m.uses
	m.columns, m.slots, m.uses = columns, slots, uses
	return errs
}

// buildItemsFrom adds one item per element of each kept line's list
// cell. A cell that is not a list of objects, or an element without a
// field an item column names, is a problem naming the line and the
// column or field.
func (m *Mapping) buildItemsFrom(conv *pipeline.Conversion, backing []pipeline.Field, kept []pipeline.Row, cols *columns, probs *problems) {
	conv.Items = make([]pipeline.Item, 0, len(kept))
	for j := range kept {
		r := &kept[j]
		raw := cell(r, cols.at(r), m.from.slot)
		elems, err := parseItemList(raw)
		if err != nil {
			probs.add("Items", raw, fmt.Sprintf("column %q (items.from): %v", m.from.column, err), []pipeline.Ref{r.Ref()})
			continue
		}
		for k, e := range elems {
			er := pipeline.Row{Object: r.Object, Line: r.Line, Header: e.header, Values: e.values, Nulls: e.nulls}
			rf := m.resolveFields(e)
			if len(rf.missing) > 0 {
				n := len(conv.Items) + 1
				probs.add(pipeline.ItemFieldName(m.fieldOf(rf.missing[0]), n), "",
					fmt.Sprintf("item %d of column %q (items.from) has no field %s; it has %s",
						k+1, m.from.column, quoteNames(rf.missing), quoteNames(e.header.Names())), []pipeline.Ref{r.Ref()})
				continue
			}
			backing = m.buildItem(conv, backing, &er, rf.idx, nil, 0, probs)
		}
	}
	if len(conv.Items) > m.maxItems {
		probs.add("Items", "", fmt.Sprintf("%d items from %d lines: at most %d items per conversion (mapping.max_items)", len(conv.Items), len(kept), m.maxItems),
			[]pipeline.Ref{kept[0].Ref(), kept[len(kept)-1].Ref()})
	}
}

// fieldOf returns the item field that reads the element field column.
func (m *Mapping) fieldOf(column string) string {
	if s, ok := m.from.slots[column]; ok && len(m.from.uses[s]) > 0 {
		if parts := strings.Split(m.from.uses[s][0], "."); len(parts) > 1 {
			return parts[1]
		}
	}
	return "Items"
}

// quoteNames quotes the first names (at most 20) for a message.
func quoteNames(names []string) string {
	const shown = 20
	q := make([]string, 0, min(len(names), shown)+1)
	for i, n := range names {
		if i == shown {
			q = append(q, fmt.Sprintf("and %d more", len(names)-shown))
			break
		}
		q = append(q, fmt.Sprintf("%q", display(n)))
	}
	return strings.Join(q, ", ")
}

// resolveFields returns the item columns' positions in element e.
func (m *Mapping) resolveFields(e itemElement) *resolvedFields {
	if r := m.from.header.Load(); r != nil && r.key == e.key {
		return r
	}
	r := &resolvedFields{key: e.key, h: e.header, idx: make([]int, len(m.from.columns))}
	for s, c := range m.from.columns {
		i, ok := e.header.Index(c)
		if !ok {
			i = -1
			r.missing = append(r.missing, c)
		}
		r.idx[s] = i
	}
	m.from.header.Store(r)
	return r
}

// itemElement is one element of a list cell: its fields as a row.
type itemElement struct {
	key    string // the field names, sorted and joined
	header *pipeline.Header
	values []string
	nulls  []bool
}

// maxListNesting bounds how deeply an element's objects may nest.
const maxListNesting = 8

// parseItemList reads a list cell: a JSON array of objects whose values
// are text, numbers, booleans or null (nested objects give dotted names:
// "price.amount"). An empty cell or "null" holds no items.
func parseItemList(raw string) ([]itemElement, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || raw == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var list []any
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("not a list of items (a JSON array of objects): %v", jsonProblem(err))
	}
	if dec.More() {
		return nil, errors.New("not a list of items (a JSON array of objects): text after the array")
	}
	out := make([]itemElement, 0, len(list))
	for i, v := range list {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("item %d is %s, not an object of fields", i+1, jsonKind(v))
		}
		flat := make(map[string]*string, len(obj))
		if err := flatten(flat, "", obj, 0); err != nil {
			return nil, fmt.Errorf("item %d: %v", i+1, err)
		}
		names := slices.Sorted(maps.Keys(flat))
		e := itemElement{key: strings.Join(names, "\x00"), values: make([]string, len(names)), nulls: make([]bool, len(names))}
		for k, n := range names {
			if p := flat[n]; p != nil {
				e.values[k] = *p
			} else {
				e.nulls[k] = true
			}
		}
		e.header = pipeline.NewHeader(names)
		out = append(out, e)
	}
	return out, nil
}

// flatten adds obj's fields to flat under prefix, nested objects with
// dotted names, every scalar as text (nil for null).
func flatten(flat map[string]*string, prefix string, obj map[string]any, depth int) error {
	if depth > maxListNesting {
		return errors.New("objects nested too deeply")
	}
	for k, v := range obj {
		name := prefix + k
		var s string
		switch x := v.(type) {
		case nil:
			flat[name] = nil
			continue
		case string:
			s = x
		case json.Number:
			s = x.String()
		case bool:
			s = fmt.Sprint(x)
		case map[string]any:
			if err := flatten(flat, name+".", x, depth+1); err != nil {
				return err
			}
			continue
		default:
			return fmt.Errorf("field %q is %s: not supported", name, jsonKind(v))
		}
		flat[name] = &s
	}
	return nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "text"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	}
	return "an object"
}

// jsonProblem shortens a decoding error.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v at byte %d", se, se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "a JSON " + te.Value + ", not an array"
	}
	return err.Error()
}
