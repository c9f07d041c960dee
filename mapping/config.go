package mapping

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the mapping part of convpipe's configuration: how the rows of
// an export become conversions. It decodes from YAML (see docs/mapping.md
// for every key); New compiles it.
type Config struct {
	// OrderKey names the columns whose values identify an order. The
	// lines of one order share them. Empty means the columns that
	// fields.OrderId reads. Their values are compared normalised as
	// OrderId is sent: trimmed of surrounding white space, without
	// zero-width characters, in Unicode NFC.
	OrderKey []string `yaml:"order_key,omitempty"`
	// NormalizeOrderKey, when unset or true, normalises the values of the
	// order-key columns, the cells the OrderId field reads and the
	// OrderId value: zero-width characters (U+200B, U+200C, U+200D,
	// U+2060, U+FEFF) are removed, surrounding white space is trimmed,
	// and the value is put in Unicode NFC. Two spellings of one order id
	// are then one order with one OrderId, where byte-exact ids would
	// make two conversions and a duplicate commission. The default is
	// safe because what it merges looks the same to a person: no shop
	// tells two orders apart by a space around the number or an
	// invisible character, and NFC is the canonical form of the same
	// text. Set it to false only for OrderIds that are byte-exact by
	// design. Control characters are refused in OrderId either way.
	NormalizeOrderKey *bool `yaml:"normalize_order_key,omitempty"`
	// StrictOrderValues makes every line of an order repeat every
	// order-level value: a line whose cells are empty where another
	// line's are not is a disagreement. Unset, a line that leaves an
	// order-level field's cells empty gives no value for it (exports such
	// as Shopify's write order-level values on the order's first line
	// only), and the order's value is the one non-empty value; two
	// different non-empty values are a disagreement either way.
	StrictOrderValues bool `yaml:"strict_order_values,omitempty"`
	// AllowNow lets EventDate be the literal NOW. A batch must send the
	// real event date, so NOW is refused unless this is set.
	AllowNow bool `yaml:"allow_now,omitempty"`
	// FutureTolerance is how far in the future an EventDate may lie
	// (clock skew); 0 means the default, one hour.
	FutureTolerance time.Duration `yaml:"future_tolerance,omitempty"`
	// MaxEventAge is how old an EventDate may be: an older order is
	// invalid, with the reason, and not sent. 0 means the default,
	// DefaultMaxEventAge.
	MaxEventAge Age `yaml:"max_event_age,omitempty"`
	// AllowOld turns the age check off for one run (--allow-old); it is
	// not read from the file.
	AllowOld bool `yaml:"-"`
	// MaxItems is the most items one conversion may carry; an order with
	// more lines is invalid rather than sent to be refused (impact
	// documents no limit, but a request body has one). 0 means the
	// default, DefaultMaxItems.
	MaxItems int `yaml:"max_items,omitempty"`
	// Fields maps order-level API fields (EventTypeId, OrderId, Text3…)
	// to their values.
	Fields map[string]FieldSpec `yaml:"fields"`
	// Items maps item-level API fields, named without the item index
	// (ItemSku, ItemText_2), to their values; every line that no filter
	// skips becomes one item. Empty means the conversions have no items.
	Items map[string]FieldSpec `yaml:"items,omitempty"`
	// Filters leave rows or whole orders out, each with its reason.
	Filters []Filter `yaml:"filters,omitempty"`
}

// DefaultMaxItems is the most items per conversion when Config.MaxItems
// is 0.
const DefaultMaxItems = 1000

// DefaultFutureTolerance is how far in the future an EventDate may lie
// when Config.FutureTolerance is 0.
const DefaultFutureTolerance = time.Hour

// FieldSpec says where one field's value comes from: exactly one of
// Column, Const or Template, then Transforms in order. In YAML a plain
// string is short for a column ("sku") or, when it contains {column}, a
// template ("{store}-{order_id}").
type FieldSpec struct {
	// Column is the source column read.
	Column string `yaml:"column,omitempty"`
	// Const is a constant value.
	Const *string `yaml:"const,omitempty"`
	// Template builds the value from columns: "{store}-{order_id}"; "{{"
	// and "}}" stand for literal braces.
	Template string `yaml:"template,omitempty"`
	// Expr computes the value with an expression
	// (github.com/expr-lang/expr syntax) over Vars: "subtotal - discount",
	// "qty * price", `status == "refunded" ? 0 : total`. Numbers are
	// exact decimals; a money field's result is rounded half to even to 2
	// decimals.
	Expr string `yaml:"expr,omitempty"`
	// Vars are the expression's variables, each made as a field is (a
	// column, const or template, and transforms). A variable whose last
	// transform is number or integer is a decimal, any other is text.
	Vars map[string]FieldSpec `yaml:"vars,omitempty"`
	// Transforms are applied in order to the value.
	Transforms []Transform `yaml:"transforms,omitempty"`
	// Split, for an item field read from a column, splits the cell by
	// this separator into the values of several items (a cell that packs
	// them: "2 | 1"); each part is trimmed and runs the transforms. Every
	// field that splits must give the same number of parts on a line; an
	// empty cell gives every item an empty value, and a field that does
	// not split gives each item the same value.
	Split string `yaml:"split,omitempty"`
	// KeepEmpty sends the field even when its value is empty; by default
	// an empty value leaves the field out.
	KeepEmpty bool `yaml:"keep_empty,omitempty"`
}

// UnmarshalYAML decodes a field spec from a string (a column or a
// template) or a mapping, refusing unknown keys.
func (f *FieldSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*f = FieldSpec{}
		if strings.Contains(n.Value, "{") {
			f.Template = n.Value
		} else {
			f.Column = n.Value
		}
		return nil
	}
	if err := checkStrict(n, reflect.TypeFor[FieldSpec](), "field"); err != nil {
		return err
	}
	type plain FieldSpec
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*f = FieldSpec(p)
	return nil
}

// Transform is one step of a field's transform chain. Exactly one
// transform is set per step, except that Lookup takes Default (the value
// for a miss) and Keep alongside. In YAML the transforms without options
// are plain strings: trim, lower, upper, integer, number, hash.
type Transform struct {
	// Trim removes leading and trailing white space.
	Trim bool `yaml:"trim,omitempty"`
	// Lower and Upper change the case.
	Lower bool `yaml:"lower,omitempty"`
	Upper bool `yaml:"upper,omitempty"`
	// Default replaces an empty value; with Lookup, it is the value for a
	// miss.
	Default *string `yaml:"default,omitempty"`
	// Lookup replaces a value by its entry in the table. A miss is an
	// error unless Default or Keep is set.
	Lookup map[string]string `yaml:"lookup,omitempty"`
	// Keep, with Lookup, keeps a value the table lacks.
	Keep bool `yaml:"keep,omitempty"`
	// Replace replaces every match of a regular expression; a value
	// without a match passes unchanged.
	Replace *Replace `yaml:"replace,omitempty"`
	// Extract is a regular expression with exactly one capture group: the
	// value becomes the group's text at the first match, or empty when
	// there is none.
	Extract string `yaml:"extract,omitempty"`
	// Number parses a formatted number into a canonical decimal.
	Number *Number `yaml:"number,omitempty"`
	// Integer parses a formatted number that must be whole ("2", "2.0").
	Integer *Number `yaml:"integer,omitempty"`
	// Time parses a date or time into ISO 8601.
	Time *Time `yaml:"time,omitempty"`
	// Hash normalises (trim, lower-case) and hashes: "sha1" or "sha256",
	// as lower-case hex. An empty value stays empty.
	Hash string `yaml:"hash,omitempty"`
}

var transformKeys = []string{"trim", "lower", "upper", "default", "lookup", "keep", "replace", "extract", "number", "integer", "time", "hash"}

// UnmarshalYAML decodes a transform from its short form ("trim") or a
// mapping ({hash: sha256}), refusing unknown keys.
func (t *Transform) UnmarshalYAML(n *yaml.Node) error {
	*t = Transform{}
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "trim":
			t.Trim = true
		case "lower":
			t.Lower = true
		case "upper":
			t.Upper = true
		case "integer":
			t.Integer = &Number{}
		case "number":
			t.Number = &Number{}
		case "hash":
			t.Hash = "sha1"
		case "sha1", "sha256":
			t.Hash = n.Value
		default:
			if best := ClosestName(n.Value, transformKeys); best != "" {
				return fmt.Errorf("line %d: unknown transform %q; did you mean %s?", n.Line, n.Value, best)
			}
			return fmt.Errorf("line %d: unknown transform %q (known: %s)", n.Line, n.Value, strings.Join(transformKeys, ", "))
		}
		return nil
	}
	if err := checkStrict(n, reflect.TypeFor[Transform](), "transform"); err != nil {
		return err
	}
	type plain Transform
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*t = Transform(p)
	return nil
}

// Replace replaces every match of Pattern (Go regexp syntax) by With, in
// which $1 or ${name} stand for the pattern's groups.
type Replace struct {
	Pattern string `yaml:"pattern"`
	With    string `yaml:"with"`
}

// Number says how a formatted number is written. The zero value reads
// "1,234.56", "$1,234.56", "(12.00)" and "1 234.56".
type Number struct {
	// Decimal is the decimal separator: "." (default) or ",".
	Decimal string `yaml:"decimal,omitempty"`
	// Thousands is the grouping separator: "," when Decimal is ".", "."
	// when Decimal is ","; spaces and apostrophes are always accepted.
	Thousands string `yaml:"thousands,omitempty"`
	// Decimals, when set, rounds (half away from zero) and pads to that
	// many decimals. Unset, money fields get 2 and other fields keep
	// their digits without trailing zeros.
	Decimals *int `yaml:"decimals,omitempty"`
}

// Time says how a date or time is written in the source and in which
// time zone it was taken.
type Time struct {
	// Layout is a Go time layout ("2006-01-02 15:04:05", "02.01.2006"),
	// or one of: rfc3339, unix (seconds), unix_ms (milliseconds), date
	// (2006-01-02).
	Layout string `yaml:"layout,omitempty"`
	// Layouts are further layouts tried in order after Layout.
	Layouts []string `yaml:"layouts,omitempty"`
	// Zone is the IANA time zone ("Europe/Berlin") in which values without
	// an offset were taken, and in which every value is written. Required
	// unless every layout carries its own offset (rfc3339, unix, unix_ms,
	// a layout with -07:00, Z07:00 or MST) or the output is a date; then
	// the default is UTC.
	Zone string `yaml:"zone,omitempty"`
	// Output is "datetime" (2023-12-01T23:55:24-08:00) or "date"
	// (2023-12-01). Unset, it is date when every layout is date-only
	// ("02.01.2006", date), and datetime otherwise.
	Output string `yaml:"output,omitempty"`
}

// Filter leaves a row or a whole order out when its condition holds. Every
// skip is reported with Reason.
type Filter struct {
	// Skip is "row" (the line is left out, the rest of the order goes on)
	// or "order" (the whole order is left out).
	Skip string `yaml:"skip"`
	// When is the condition.
	When Condition `yaml:"when"`
	// Reason says why, in the skip's message; by default a description of
	// the condition.
	Reason string `yaml:"reason,omitempty"`
	// Reversal marks an order filter whose orders, once accepted, must be
	// reversed: cancelled, returned, test or fraud (see reversal.go).
	Reversal string `yaml:"reversal,omitempty"`
	// Disposition is the DispositionCode of that reversal; by default
	// the Reversal's (ORDER_ERROR, ITEM_RETURNED, TEST_ACTION, CONS_FRAUD).
	Disposition string `yaml:"disposition,omitempty"`
}

// Condition tests one subject, exactly one of Column (the raw source
// value, trimmed), Field (a mapped field's value, after its transforms)
// or Amount (the order's amount; order filters only), with exactly one
// test. For an order filter, a column or item field matches when it
// matches on any line of the order.
type Condition struct {
	Column string `yaml:"column,omitempty"`
	Field  string `yaml:"field,omitempty"`
	// Amount is the order's amount: OrderSubTotalPostDiscount when set,
	// otherwise the sum over the items of ItemSubTotal, or ItemPrice ×
	// ItemQuantity.
	Amount bool `yaml:"amount,omitempty"`

	// Equals holds when the value equals it.
	Equals *string `yaml:"equals,omitempty"`
	// In holds when the value is one of these; NotIn when it is none.
	In    []string `yaml:"in,omitempty"`
	NotIn []string `yaml:"not_in,omitempty"`
	// Empty holds when the value's emptiness is as given.
	Empty *bool `yaml:"empty,omitempty"`
	// Zero holds when the value is (true) or is not (false) a number equal
	// to zero.
	Zero *bool `yaml:"zero,omitempty"`
	// Matches holds when the value matches the regular expression.
	Matches string `yaml:"matches,omitempty"`
	// IgnoreCase makes Equals, In and NotIn case-insensitive.
	IgnoreCase bool `yaml:"ignore_case,omitempty"`
}

// ParseConfig decodes a mapping configuration from YAML, refusing unknown
// keys, and validates it.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("mapping: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks the configuration completely: field names, sources,
// transforms (regular expressions, time zones, layouts), filters and the
// fields the API requires. Its error names the bad key
// ("mapping.fields.EventDate.transforms[0].time.zone: ...").
func (c Config) Validate() error {
	_, err := compile(c)
	return err
}

// configError names the key at fault.
type configError struct {
	key string
	err error
}

func (e *configError) Error() string { return "mapping." + e.key + ": " + e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

func errAt(key string, format string, args ...any) error {
	return &configError{key: key, err: fmt.Errorf(format, args...)}
}

// checkStrict refuses keys of YAML mappings that the Go type t (a struct,
// or slices and maps of them) has no field for, down to the types that
// unmarshal themselves. yaml's KnownFields does not reach into custom
// unmarshalers, so they call this.
func checkStrict(n *yaml.Node, t reflect.Type, what string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && what != "" {
				return fmt.Errorf("line %d: %s must be a mapping, not %q", n.Line, what, n.Value)
			}
			return nil
		}
		fields := make(map[string]reflect.Type)
		var names []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f.Type
			names = append(names, name)
		}
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				errs = append(errs, unknownKeyError(k, what, names))
				continue
			}
			if reflect.PointerTo(ft).Implements(unmarshalerType) || ft.Implements(unmarshalerType) {
				continue // checks itself
			}
			if err := checkStrict(v, ft, k.Value); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		et := t.Elem()
		if reflect.PointerTo(et).Implements(unmarshalerType) {
			return nil
		}
		var errs []error
		for _, c := range n.Content {
			errs = append(errs, checkStrict(c, et, what))
		}
		return errors.Join(errs...)
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// unknownKeyError is the error of the key k that the mapping what (a
// field, a transform) has no field for, with the closest of names.
func unknownKeyError(k *yaml.Node, what string, names []string) error {
	if best := ClosestName(k.Value, names); best != "" {
		return fmt.Errorf("line %d: unknown key %q in %s; did you mean %s?", k.Line, k.Value, what, best)
	}
	return fmt.Errorf("line %d: unknown key %q in %s (known: %s)", k.Line, k.Value, what, strings.Join(names, ", "))
}

// sortedKeys returns the keys of m in order, so that errors are stable.
func sortedKeys(m map[string]FieldSpec) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
