package mapping

import (
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	"golang.org/x/text/unicode/norm"
)

// templateKeyYAML is unitYAML with OrderId a template and no order_key:
// the order key is then the template's columns.
var templateKeyYAML = strings.Replace(strings.Replace(unitYAML, "order_key: [order_id]\n", "", 1),
	"OrderId: order_id", `OrderId: "{click}/{order_id}"`, 1)

// spellings are OrderIds that a human reads as the same and an export
// writes differently: the second is the first with surrounding white
// space, in NFD or with zero-width characters.
var spellings = []struct {
	name string
	a, b string
	// want is the OrderId both become when normalised.
	want string
	// control is set when b has a control character at its edge, which
	// only normalisation removes.
	control bool
}{
	{name: "surrounding spaces", a: "A-1", b: "  A-1 ", want: "A-1"},
	{name: "tab and newline", a: "A-1", b: "\tA-1\n", want: "A-1", control: true},
	{name: "no-break space", a: "A-1", b: "\u00a0A-1\u3000", want: "A-1"},
	{name: "NFC and NFD", a: "M\u00fcller-1", b: "Mu\u0308ller-1", want: "M\u00fcller-1"},
	{name: "NFD and NFC", a: "Mu\u0308ller-1", b: "M\u00fcller-1", want: "M\u00fcller-1"},
	{name: "zero width space", a: "A-1", b: "A\u200b-1", want: "A-1"},
	{name: "zero width non-joiner", a: "A-1", b: "A-1\u200c", want: "A-1"},
	{name: "zero width joiner", a: "A-1", b: "\u200dA-1", want: "A-1"},
	{name: "word joiner", a: "A-1", b: "A-\u20601", want: "A-1"},
	{name: "byte order mark", a: "A-1", b: "\ufeffA-1", want: "A-1"},
	{name: "zero width inside the spaces", a: "A-1", b: " \u200b A-1", want: "A-1"},
	{name: "all at once", a: " Mu\u0308ller\u200b-1", b: "\ufeffM\u00fcller-1\u00a0", want: "M\u00fcller-1"},
}

// TestOrderIdSpellingsAreOneOrder: two lines of one order whose OrderIds
// differ only by surrounding white space, Unicode normalisation or
// zero-width characters are grouped as one order and sent with one
// OrderId, the normalised one, whether OrderId is a column or a template
// (the default order key).
func TestOrderIdSpellingsAreOneOrder(t *testing.T) {
	for _, cfg := range []struct{ name, yaml, prefix string }{
		{"column", unitYAML, ""},
		{"template", templateKeyYAML, "clk/"},
	} {
		m := mustMapping(t, cfg.yaml)
		for _, sp := range spellings {
			t.Run(cfg.name+"/"+sp.name, func(t *testing.T) {
				rows := rowsOf("a.csv", unitHeader, unitLine(sp.a, "S1"), unitLine(sp.b, "S2"))
				if ka, kb := m.OrderKey(rows[0]), m.OrderKey(rows[1]); ka != kb {
					t.Errorf("OrderKey = %q and %q, want one key", ka, kb)
				}
				orders := group(m, rows)
				if len(orders) != 1 {
					t.Fatalf("%d orders, want 1", len(orders))
				}
				md := m.Map(orders[0])
				if len(md.Problems) > 0 {
					t.Fatalf("problems: %+v", md.Problems)
				}
				want := cfg.prefix + sp.want
				if got, _ := md.Conversion.Get("OrderId"); got != want || md.Conversion.Key.OrderID != want {
					t.Errorf("OrderId = %q, key %q; want %q", got, md.Conversion.Key.OrderID, want)
				}
				if len(md.Conversion.Items) != 2 {
					t.Errorf("%d items, want 2", len(md.Conversion.Items))
				}
			})
		}
	}
}

func TestNormalizeOrderID(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"A-1", "A-1"},
		{"\x1bA-1\x00", "\x1bA-1\x00"}, // control characters that are no white space stay, for validation
		{" A 1 ", "A 1"},
		{"\u200b", ""},
		{"\u200b \u00a0\ufeff", ""},
		{"Mu\u0308ller", "M\u00fcller"},
		{"A\u200b\u200c\u200d\u2060\ufeffB", "AB"},
		{"A\u200aB", "A\u200aB"},         // a hair space inside is white space, kept
		{"\xffA\u200b ", "\xffA\u200b "}, // invalid UTF-8 is kept as it is, for validation to refuse
		{"\xe2\x80", "\xe2\x80"},         // a cut zero-width character is not one
		{"A\u034fB", "A\u034fB"},         // a combining grapheme joiner is no zero-width character here
		{"\u212b", "\u00c5"},             // the angstrom sign is an Å in NFC
		{" \u0308A", "\u0308A"},          // a lone combining mark stays
		{"\u0041\u030a\u200b", "\u00c5"}, // stripped before composing
	} {
		if got := normalizeOrderID(tt.in); got != tt.want {
			t.Errorf("normalizeOrderID(%+q) = %+q, want %+q", tt.in, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = normalizeOrderID("de-100001") }); n != 0 {
		t.Errorf("normalizeOrderID of plain ASCII allocates %v times", n)
	}
}

// FuzzNormalizeOrderID checks that normalising is idempotent, keeps
// invalid UTF-8 as it is, and leaves valid UTF-8 without zero-width
// characters or surrounding white space, in NFC; and that the order key of
// a line is the OrderId its order is sent with. (It found that stripping
// a zero-width character from between stray bytes could join them into a
// new one.)
func FuzzNormalizeOrderID(f *testing.F) {
	for _, sp := range spellings {
		f.Add(sp.b)
	}
	f.Add("\xff\u200b")
	m := mustMapping(f, unitYAML)
	f.Fuzz(func(t *testing.T, in string) {
		rows := rowsOf("a.csv", unitHeader, unitLine(in, "S1"))
		if k, id := m.OrderKey(rows[0]), m.Map(rows).Conversion.Key.OrderID; k != id && !hasEmail(k) {
			t.Errorf("OrderKey(%+q) = %+q, but the OrderId is %+q", in, k, id)
		}
		out := normalizeOrderID(in)
		if again := normalizeOrderID(out); again != out {
			t.Errorf("normalizeOrderID(%+q) = %+q, then %+q", in, out, again)
		}
		if !utf8.ValidString(in) {
			if out != in {
				t.Errorf("normalizeOrderID(%+q) = %+q: invalid UTF-8 must be kept as it is", in, out)
			}
			return
		}
		if strings.ContainsAny(out, "\u200b\u200c\u200d\u2060\ufeff") || strings.TrimSpace(out) != out {
			t.Errorf("normalizeOrderID(%+q) = %+q", in, out)
		}
		if !utf8.ValidString(out) || !norm.NFC.IsNormalString(out) {
			t.Errorf("normalizeOrderID(%+q) = %+q, not valid NFC", in, out)
		}
	})
}

// TestNormalizeOrderKeyFalseKeepsOrderIdsByteExact: with
// normalize_order_key: false, OrderIds that differ in any byte are two
// orders, each sent exactly as the export wrote it.
func TestNormalizeOrderKeyFalseKeepsOrderIdsByteExact(t *testing.T) {
	const off = "normalize_order_key: false\n"
	for _, cfg := range []struct{ name, yaml, prefix string }{
		{"column", off + unitYAML, ""},
		{"template", off + templateKeyYAML, "clk/"},
	} {
		m := mustMapping(t, cfg.yaml)
		for _, sp := range spellings {
			if sp.control {
				continue // invalid without normalisation; see TestOrderIdControlCharacters
			}
			t.Run(cfg.name+"/"+sp.name, func(t *testing.T) {
				rows := rowsOf("a.csv", unitHeader, unitLine(sp.a, "S1"), unitLine(sp.b, "S2"))
				orders := group(m, rows)
				if len(orders) != 2 {
					t.Fatalf("%d orders, want 2", len(orders))
				}
				for i, want := range []string{sp.a, sp.b} {
					md := m.Map(orders[i])
					if len(md.Problems) > 0 {
						t.Fatalf("order %d: problems: %+v", i+1, md.Problems)
					}
					want = cfg.prefix + want
					if got, _ := md.Conversion.Get("OrderId"); got != want || md.Conversion.Key.OrderID != want {
						t.Errorf("order %d: OrderId = %+q, key %+q; want %+q", i+1, got, md.Conversion.Key.OrderID, want)
					}
				}
			})
		}
	}
}

// TestNormalizeOrderKeySetting: unset and true normalise, false does
// not, false survives a config dump, and anything but a boolean is a
// configuration error naming the line.
func TestNormalizeOrderKeySetting(t *testing.T) {
	rows := rowsOf("a.csv", unitHeader, unitLine(" A-1\u200b", "S1"))
	for _, tt := range []struct {
		setting string
		want    string
	}{
		{"", "A-1"},
		{"normalize_order_key: true\n", "A-1"},
		{"normalize_order_key: false\n", " A-1\u200b"},
	} {
		m := mustMapping(t, tt.setting+unitYAML)
		if k := m.OrderKey(rows[0]); k != tt.want {
			t.Errorf("%q: OrderKey = %+q, want %+q", tt.setting, k, tt.want)
		}
		if v, _ := m.Map(rows).Conversion.Get("OrderId"); v != tt.want {
			t.Errorf("%q: OrderId = %+q, want %+q", tt.setting, v, tt.want)
		}
	}
	cfg, err := ParseConfig([]byte("normalize_order_key: false\n" + unitYAML))
	if err != nil {
		t.Fatal(err)
	}
	dump, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := ParseConfig(dump); err != nil || back.NormalizeOrderKey == nil || *back.NormalizeOrderKey {
		t.Errorf("a dump of normalize_order_key: false reads back as %v, %v", back.NormalizeOrderKey, err)
	}
	for _, bad := range []string{"maybe", `"false"`, "0", "[false]"} {
		_, err := ParseConfig([]byte("normalize_order_key: " + bad + "\n" + unitYAML))
		if err == nil || !strings.Contains(err.Error(), "line 1: cannot unmarshal") || !strings.Contains(err.Error(), "into bool") {
			t.Errorf("normalize_order_key: %s: error = %v, want one saying line 1 is no bool", bad, err)
		}
	}
}

// TestOrderIdControlCharacters: an OrderId with a control character
// (Unicode category Cc, tab included) is invalid, with a problem on
// OrderId naming the row and the character, whether or not the mapping
// normalises; normalising trims white space at the edges first.
func TestOrderIdControlCharacters(t *testing.T) {
	const valid = ""
	for _, tt := range []struct {
		name, id string
		// on and off are the character refused with and without
		// normalisation, or valid.
		on, off string
	}{
		{"NUL", "A\x00B", "U+0000", "U+0000"},
		{"escape", "A\x1bB", "U+001B", "U+001B"},
		{"line feed inside", "A\nB", "U+000A", "U+000A"},
		{"carriage return inside", "A\rB", "U+000D", "U+000D"},
		{"tab inside", "A\tB", "U+0009", "U+0009"},
		{"delete", "A\x7fB", "U+007F", "U+007F"},
		{"C1 next line inside", "A\u0085B", "U+0085", "U+0085"},
		{"C1 application program command", "A\u009fB", "U+009F", "U+009F"},
		{"first of two", "A\x1b\x00B", "U+001B", "U+001B"},
		{"escape at the end", "A-1\x1b", "U+001B", "U+001B"},
		{"tab at the end", "A-1\t", valid, "U+0009"},
		{"line feed at the start", "\nA-1", valid, "U+000A"},
		{"zero width space is no control character", "A\u200bB", valid, valid},
		{"no-break space is no control character", "A\u00a0B", valid, valid},
	} {
		for _, mode := range []struct {
			name, setting, want string
		}{{"normalised", "", tt.on}, {"byte-exact", "normalize_order_key: false\n", tt.off}} {
			t.Run(tt.name+"/"+mode.name, func(t *testing.T) {
				m := mustMapping(t, mode.setting+unitYAML)
				md := m.Map(rowsOf("a.csv", unitHeader, unitLine(tt.id, "S1")))
				if mode.want == valid {
					if len(md.Problems) > 0 {
						t.Fatalf("problems: %+v", md.Problems)
					}
					return
				}
				var found bool
				for _, p := range md.Problems {
					if p.Field != "OrderId" {
						t.Errorf("unexpected problem %+v", p)
						continue
					}
					found = true
					if want := "contains the control character " + mode.want; !strings.HasPrefix(p.Text, want) {
						t.Errorf("text = %q, want it to begin with %q", p.Text, want)
					}
					if len(p.Refs) != 1 || p.Refs[0].String() != "a.csv:2" {
						t.Errorf("refs = %v, want a.csv:2", p.Refs)
					}
				}
				if !found {
					t.Fatalf("no problem on OrderId; problems %+v", md.Problems)
				}
			})
		}
	}
}
