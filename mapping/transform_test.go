package mapping

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestNumberCanonical(t *testing.T) {
	dot := numberFormat{dec: '.', thou: ',', decimals: -1}
	money := numberFormat{dec: '.', thou: ',', decimals: 2}
	comma := numberFormat{dec: ',', thou: '.', decimals: -1}
	tests := []struct {
		name string
		f    numberFormat
		in   string
		want string
		err  error
	}{
		{"plain", dot, "12.5", "12.5", nil},
		{"integer", dot, "42", "42", nil},
		{"thousands", dot, "1,234,567.89", "1234567.89", nil},
		{"spaces", dot, " 1 234.5 ", "1234.5", nil},
		{"nbsp grouping", dot, "1\u00a0234.5", "1234.5", nil},
		{"thin space grouping", dot, "1\u202f234", "1234", nil},
		{"apostrophe", dot, "1'234.5", "1234.5", nil},
		{"dollar", dot, "$12.50", "12.5", nil},
		{"euro suffix", dot, "12.50 €", "12.5", nil},
		{"pound", dot, "£7", "7", nil},
		{"yen", dot, "¥1,000", "1000", nil},
		{"code prefix", dot, "USD 12", "12", nil},
		{"code suffix", dot, "12USD", "12", nil},
		{"parentheses", dot, "(12.00)", "-12", nil},
		{"parentheses currency", dot, "($1,000.00)", "-1000", nil},
		{"trailing minus", dot, "12.5-", "-12.5", nil},
		{"minus after symbol", dot, "$-5", "-5", nil},
		{"minus before symbol", dot, "-$5", "-5", nil},
		{"plus", dot, "+5", "5", nil},
		{"leading zeros", dot, "007.50", "7.5", nil},
		{"only fraction", dot, ".5", "0.5", nil},
		{"trailing point", dot, "5.", "5", nil},
		{"negative zero", dot, "-0.00", "0", nil},
		{"exponent", dot, "1.5e3", "1500", nil},
		{"negative exponent", dot, "25E-3", "0.025", nil},
		{"float formatting", dot, "1e+06", "1000000", nil},
		{"money pads", money, "10", "10.00", nil},
		{"money rounds up", money, "2.345", "2.35", nil},
		{"money rounds down", money, "2.344", "2.34", nil},
		{"money carries", money, "9.995", "10.00", nil},
		{"money carries far", money, "999.999", "1000.00", nil},
		{"money negative rounds away", money, "-2.345", "-2.35", nil},
		{"money tiny negative", money, "-0.004", "0.00", nil},
		{"money unchanged", money, "3.14", "3.14", nil},
		{"comma decimal", comma, "1.234,56", "1234.56", nil},
		{"comma no grouping", comma, "1234,5", "1234.5", nil},
		{"comma currency", comma, "12,50 €", "12.5", nil},
		{"comma space grouping", comma, "1 234,5", "1234.5", nil},

		{"empty", dot, "", "", errNotNumber},
		{"spaces only", dot, "   ", "", errNotNumber},
		{"word", dot, "fifty", "", errNotNumber},
		{"code only", dot, "EUR", "", errNotNumber},
		{"two points", dot, "1.2.3", "", errNotNumber},
		{"bad grouping", dot, "1,23", "", errGrouping},
		{"group too long", dot, "1,2345", "", errGrouping},
		{"lead too long", dot, "1234,567", "", errGrouping},
		{"separator first", dot, ",123", "", errGrouping},
		{"grouping before point", dot, "1,23.5", "", errGrouping},
		{"comma: point decimal", comma, "1.5", "", errGrouping},
		{"comma: english", comma, "1,234.56", "", errNotNumber},
		{"two signs", dot, "--5", "", errTwoSigns},
		{"sign and trailing minus", dot, "-5-", "", errTwoSigns},
		{"two currencies", dot, "$5€", "", errTwoCurrency},
		{"exponent too big", dot, "1e41", "", errExponent},
		{"exponent empty", dot, "1e", "", errNotNumber},
		{"comma exponent", comma, "1e3", "", errNotNumber},
		{"too long", dot, strings.Repeat("1", 65), "", errNumberLong},
		{"lowercase code", dot, "eur 5", "", errNotNumber},
		{"inner letters", dot, "1a2", "", errNotNumber},
		{"infinity", dot, "Inf", "", errNotNumber},
		{"hex", dot, "0x10", "", errNotNumber},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.canonical(tt.in)
			if err != tt.err {
				t.Fatalf("canonical(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if got != tt.want {
				t.Errorf("canonical(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNumberWhole(t *testing.T) {
	f := numberFormat{dec: '.', thou: ','}
	for in, want := range map[string]string{"2": "2", "2.0": "2", "2.00": "2", "+3": "3", "1,000": "1000", " 6 ": "6", "-1": "-1", "1e2": "100"} {
		if got, err := f.whole(in); err != nil || got != want {
			t.Errorf("whole(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]error{"2.5": errNotWhole, "0.1": errNotWhole, "two": errNotNumber, "": errNotNumber, "1e-1": errNotWhole} {
		if _, err := f.whole(in); err != want {
			t.Errorf("whole(%q) error = %v, want %v", in, err, want)
		}
	}
}

func TestIsZero(t *testing.T) {
	for in, want := range map[string]bool{"0": true, "0.00": true, "-0": true, "$0.00": true, "0.01": false, "": false, "zero": false, "10": false} {
		if got := isZero(in); got != want {
			t.Errorf("isZero(%q) = %v, want %v", in, got, want)
		}
	}
}

func compileOne(t *testing.T, tr Transform, k kind) step {
	t.Helper()
	s, err := compileStep("t", tr, k)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func TestTransforms(t *testing.T) {
	tests := []struct {
		name    string
		tr      Transform
		kind    kind
		in      string
		want    string
		wantErr bool
	}{
		{"trim", Transform{Trim: true}, kindString, " \ta b\n ", "a b", false},
		{"lower", Transform{Lower: true}, kindString, "ÄBC", "äbc", false},
		{"upper", Transform{Upper: true}, kindString, "usd", "USD", false},
		{"default empty", Transform{Default: ptr("x")}, kindString, "", "x", false},
		{"default set", Transform{Default: ptr("x")}, kindString, "y", "y", false},
		{"lookup hit", Transform{Lookup: map[string]string{"a": "A"}}, kindString, "a", "A", false},
		{"lookup miss", Transform{Lookup: map[string]string{"a": "A"}}, kindString, "b", "", true},
		{"lookup empty passes", Transform{Lookup: map[string]string{"a": "A"}}, kindString, "", "", false},
		{"lookup miss default", Transform{Lookup: map[string]string{"a": "A"}, Default: ptr("Z")}, kindString, "b", "Z", false},
		{"lookup miss keep", Transform{Lookup: map[string]string{"a": "A"}, Keep: true}, kindString, "b", "b", false},
		{"lookup empty stays with default", Transform{Lookup: map[string]string{"a": "A"}, Default: ptr("Z")}, kindString, "", "", false},
		{"lookup empty key", Transform{Lookup: map[string]string{"": "none"}}, kindString, "", "none", false},
		{"replace empty", Transform{Replace: &Replace{Pattern: "^$", With: "x"}}, kindString, "", "", false},
		{"replace", Transform{Replace: &Replace{Pattern: `(\d+)-(\d+)`, With: "$2/$1"}}, kindString, "12-34", "34/12", false},
		{"replace without a match passes the value", Transform{Replace: &Replace{Pattern: `irclickid: (\S+)`, With: "$1"}}, kindString, "_ga: GA1.2.345", "_ga: GA1.2.345", false},
		{"extract", Transform{Extract: `(?m)^irclickid:\s*(\S+)`}, kindString, "irclickid: abc123\n_ga: GA1.2.345", "abc123", false},
		{"extract later line", Transform{Extract: `(?m)^irclickid:\s*(\S+)`}, kindString, "_ga: GA1.2.345\nirclickid: Qj2WZ1\nutm_source: google", "Qj2WZ1", false},
		{"extract no match is empty", Transform{Extract: `(?m)^irclickid:\s*(\S+)`}, kindString, "_ga: GA1.2.345\nutm_source: google", "", false},
		{"extract empty", Transform{Extract: `(\d+)`}, kindString, "", "", false},
		{"extract optional group unmatched", Transform{Extract: `a(\d+)?`}, kindString, "abc", "", false},
		{"number money", Transform{Number: &Number{}}, kindMoney, "1,000", "1000.00", false},
		{"number decimal", Transform{Number: &Number{}}, kindDecimal, "1,000.50", "1000.5", false},
		{"number decimals", Transform{Number: &Number{Decimals: ptr(0)}}, kindMoney, "2.5", "3", false},
		{"number thousands", Transform{Number: &Number{Thousands: "_"}}, kindDecimal, "1_000", "1000", false},
		{"number comma", Transform{Number: &Number{Decimal: ","}}, kindMoney, "1.000,5", "1000.50", false},
		{"number empty", Transform{Number: &Number{}}, kindMoney, "", "", false},
		{"number bad", Transform{Number: &Number{}}, kindMoney, "fifty", "", true},
		{"integer", Transform{Integer: &Number{}}, kindQuantity, "2.0", "2", false},
		{"integer fraction", Transform{Integer: &Number{}}, kindQuantity, "2.5", "", true},
		{"hash sha1", Transform{Hash: "sha1"}, kindDigest, " A@B.example ", "894741fd17a1c947e869490b15afe8ad678a0cef", false},
		{"hash sha256", Transform{Hash: "sha256"}, kindDigest, "a@b.example", "", false},
		{"hash empty", Transform{Hash: "sha1"}, kindDigest, "  ", "", false},
		{"time zone winter", Transform{Time: &Time{Layout: "2006-01-02 15:04", Zone: "Europe/Berlin"}}, kindDate, "2024-01-15 10:00", "2024-01-15T10:00:00+01:00", false},
		{"time zone summer", Transform{Time: &Time{Layout: "2006-01-02 15:04", Zone: "Europe/Berlin"}}, kindDate, "2024-07-15 10:00", "2024-07-15T10:00:00+02:00", false},
		{"time utc", Transform{Time: &Time{Layout: "2006-01-02 15:04", Zone: "UTC"}}, kindDate, "2024-07-15 10:00", "2024-07-15T10:00:00Z", false},
		{"time rfc3339 keeps its offset", Transform{Time: &Time{Layout: "rfc3339", Zone: "America/Los_Angeles"}}, kindDate, "2023-12-02T07:55:24Z", "2023-12-02T07:55:24Z", false},
		{"time rfc3339 keeps +01:00", Transform{Time: &Time{Layout: "rfc3339"}}, kindDate, "2023-12-02T08:55:24+01:00", "2023-12-02T08:55:24+01:00", false},
		{"time shopify offset kept", Transform{Time: &Time{Layout: "2006-01-02 15:04:05 -0700"}}, kindDate, "2024-03-10 13:01:58 -0500", "2024-03-10T13:01:58-05:00", false},
		{"time offset kept with a zone", Transform{Time: &Time{Layout: "2006-01-02 15:04:05 -0700", Zone: "Europe/Berlin"}}, kindDate, "2024-03-10 13:01:58 -0500", "2024-03-10T13:01:58-05:00", false},
		{"time gap moves forward (Chicago)", Transform{Time: &Time{Layout: "2006-01-02 15:04:05", Zone: "America/Chicago"}}, kindDate, "2024-03-10 02:30:00", "2024-03-10T03:30:00-05:00", false},
		{"time gap moves forward (Berlin)", Transform{Time: &Time{Layout: "2006-01-02 15:04:05", Zone: "Europe/Berlin"}}, kindDate, "2024-03-31 02:30:00", "2024-03-31T03:30:00+02:00", false},
		{"time gap moves forward (Go layout)", Transform{Time: &Time{Layout: "01/02/2006 3:04 PM", Zone: "America/Chicago"}}, kindDate, "03/10/2024 2:30 AM", "2024-03-10T03:30:00-05:00", false},
		{"time zone abbreviation read in the zone", Transform{Time: &Time{Layout: "2006-01-02 15:04:05 MST", Zone: "America/Chicago"}}, kindDate, "2024-01-10 13:01:58 CST", "2024-01-10T13:01:58-06:00", false},
		{"time fall back keeps the first", Transform{Time: &Time{Layout: "2006-01-02 15:04:05", Zone: "America/Chicago"}}, kindDate, "2024-11-03 01:30:00", "2024-11-03T01:30:00-05:00", false},
		{"time unix into the zone", Transform{Time: &Time{Layout: "unix", Zone: "America/Chicago"}}, kindDate, "1710086400", "2024-03-10T11:00:00-05:00", false},
		{"time unix", Transform{Time: &Time{Layout: "unix"}}, kindDate, "1700000000", "2023-11-14T22:13:20Z", false},
		{"time unix ms", Transform{Time: &Time{Layout: "unix_ms"}}, kindDate, "1700000000123", "2023-11-14T22:13:20.123Z", false},
		{"time unix negative ms", Transform{Time: &Time{Layout: "unix_ms"}}, kindDate, "-1500", "1969-12-31T23:59:58.5Z", false},
		{"time date", Transform{Time: &Time{Layout: "date"}}, kindDate, "2024-02-29", "2024-02-29", false},
		{"time date-only layout", Transform{Time: &Time{Layout: "02.01.2006"}}, kindDate, "29.02.2024", "2024-02-29", false},
		{"time output date", Transform{Time: &Time{Layout: "2006-01-02 15:04", Zone: "Asia/Tokyo", Output: "date"}}, kindDate, "2024-02-29 23:00", "2024-02-29", false},
		{"time bad", Transform{Time: &Time{Layout: "date"}}, kindDate, "2024-02-30", "", true},
		{"time unix words", Transform{Time: &Time{Layout: "unix"}}, kindDate, "soon", "", true},
		{"time unix range", Transform{Time: &Time{Layout: "unix"}}, kindDate, "9223372036854775807", "", true},
		{"time empty", Transform{Time: &Time{Layout: "unix"}}, kindDate, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := compileOne(t, tt.tr, tt.kind)
			got, err := s.apply(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("apply(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if tt.name == "hash sha256" {
				if len(got) != 64 || !isHex(got) {
					t.Errorf("sha256 = %q, want 64 hex digits", got)
				}
				return
			}
			if got != tt.want {
				t.Errorf("apply(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestHashNormalises(t *testing.T) {
	s := compileOne(t, Transform{Hash: "sha1"}, kindDigest)
	a, _ := s.apply("  John.Doe@Example.COM ")
	b, _ := s.apply("john.doe@example.com")
	if a != b || len(a) != 40 {
		t.Errorf("hash of the same address differs: %q %q", a, b)
	}
}

func TestCompileStepErrors(t *testing.T) {
	tests := []struct {
		name string
		tr   Transform
		want string
	}{
		{"empty", Transform{}, "mapping.t: empty transform"},
		{"two", Transform{Trim: true, Upper: true}, "one transform per list entry, found trim and upper"},
		{"keep alone", Transform{Trim: true, Keep: true}, "mapping.t.keep: only with lookup"},
		{"keep and default", Transform{Lookup: map[string]string{"a": "b"}, Keep: true, Default: ptr("x")}, "keep and default exclude each other"},
		{"empty lookup", Transform{Lookup: map[string]string{}}, "mapping.t.lookup: empty table"},
		{"bad regex", Transform{Replace: &Replace{Pattern: "("}}, "mapping.t.replace.pattern: error parsing regexp"},
		{"empty regex", Transform{Replace: &Replace{}}, "mapping.t.replace.pattern: empty"},
		{"extract bad regex", Transform{Extract: "("}, "mapping.t.extract: error parsing regexp"},
		{"extract no group", Transform{Extract: "irclickid: \\S+"}, "mapping.t.extract: the pattern must have exactly one capture group (the value to keep), it has 0"},
		{"extract two groups", Transform{Extract: "(a)(b)"}, "it has 2"},
		{"bad decimal", Transform{Number: &Number{Decimal: ";"}}, "mapping.t.number.decimal"},
		{"bad thousands", Transform{Number: &Number{Thousands: "x"}}, "mapping.t.number.thousands"},
		{"same separators", Transform{Number: &Number{Decimal: ",", Thousands: ","}}, "same as the decimal separator"},
		{"decimals range", Transform{Number: &Number{Decimals: ptr(11)}}, "mapping.t.number.decimals: must be 0 to 10"},
		{"integer decimals", Transform{Integer: &Number{Decimals: ptr(2)}}, "mapping.t.integer.decimals"},
		{"no layout", Transform{Time: &Time{Zone: "UTC"}}, "mapping.t.time.layout: required"},
		{"bad layout", Transform{Time: &Time{Layout: "yyyy-mm-dd", Zone: "UTC"}}, "mapping.t.time.layout: \"yyyy-mm-dd\" is not a Go time layout"},
		{"bad second layout", Transform{Time: &Time{Layout: "unix", Layouts: []string{"dd.mm"}}}, "mapping.t.time.layouts[0]"},
		{"no zone", Transform{Time: &Time{Layout: "2006-01-02 15:04"}}, "mapping.t.time.zone: required"},
		{"bad zone", Transform{Time: &Time{Layout: "unix", Zone: "Mars/Olympus"}}, "mapping.t.time.zone: unknown time zone"},
		{"local zone", Transform{Time: &Time{Layout: "unix", Zone: "Local"}}, "unknown time zone \"Local\""},
		{"bad output", Transform{Time: &Time{Layout: "unix", Output: "week"}}, "mapping.t.time.output"},
		{"datetime needs zone", Transform{Time: &Time{Layout: "02.01.2006", Output: "datetime"}}, "mapping.t.time.zone: required"},
		{"bad hash", Transform{Hash: "md5"}, "mapping.t.hash: \"md5\" is not sha1 or sha256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compileStep("t", tt.tr, kindString)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"jane@example.com", redacted},
		{"Mail: John.Doe+tag@sub.example.co.uk, thanks", "Mail: " + redacted + ", thanks"},
		{"a@b.example and c@d.example", redacted + " and " + redacted},
		{"no address here", "no address here"},
		{"user@localhost", "user@localhost"},
		{"@example.com", "@example.com"},
		{"x@y.c1", "x@y.c1"},
		{"price@10.5", "price@10.5"},
		{"jane@example.com.", redacted + "."},
	}
	for _, tt := range tests {
		if got := redact(tt.in); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if hasEmail(tt.in) != (tt.want != tt.in) {
			t.Errorf("hasEmail(%q) = %v", tt.in, hasEmail(tt.in))
		}
	}
}

func TestDisplay(t *testing.T) {
	long := strings.Repeat("x ", 250) + "jane@example.com"
	if got := display(long); len(got) > maxShown+40 || !strings.Contains(got, "(517 bytes)") {
		t.Errorf("display(long) = %q", got)
	}
	if got := display("ab\xffc"); got != "ab\uFFFDc" {
		t.Errorf("display(invalid UTF-8) = %q", got)
	}
	cut := strings.Repeat("x", maxShown-8) + "jane@example.com"
	if got := display(cut); hasEmail(got) || strings.Contains(got, "jane") {
		t.Errorf("display(cut) = %q leaks the address", got)
	}
}

func TestEditDistanceSuggestions(t *testing.T) {
	tests := []struct {
		name string
		item bool
		want string
	}{
		{"OrderID", false, "did you mean OrderId?"},
		{"orderid", false, "did you mean OrderId?"},
		{"EventDat", false, "did you mean EventDate?"},
		{"CustomerMail", false, "did you mean CustomerEmail?"},
		{"Text51", false, "did you mean Text1?"},
		{"ItemPrice", false, "belongs under items"},
		{"OrderId", true, "belongs under fields"},
		{"ProgramId", false, "synonym of CampaignId"},
		{"ItemQty", true, "unknown item-level field"},
		{"ItemText3_1", true, "did you mean ItemText_1?"},
		{"Completely Different", false, "unknown order-level field"},
	}
	for _, tt := range tests {
		if got := unknownField(tt.name, tt.item); !strings.Contains(got, tt.want) {
			t.Errorf("unknownField(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if d := editDistance("kitten", "sitting"); d != 3 {
		t.Errorf("editDistance = %d, want 3", d)
	}
}

func TestParseTemplate(t *testing.T) {
	parts, err := parseTemplate("{{x}}-{a}{b}/")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range parts {
		if p.slot >= 0 {
			got = append(got, "col:"+p.lit)
		} else {
			got = append(got, p.lit)
		}
	}
	if strings.Join(got, "|") != "{x}-|col:a|col:b|/" {
		t.Errorf("parts = %q", got)
	}
	for _, bad := range []string{"{a", "{}", "a}", "{a{b}"} {
		if _, err := parseTemplate(bad); err == nil {
			t.Errorf("parseTemplate(%q) succeeded", bad)
		}
	}
}

func TestCatalogue(t *testing.T) {
	for _, n := range []string{"Text1", "Text50", "Numeric10", "Money3", "Date10"} {
		if _, ok := orderFields.lookup(n); !ok {
			t.Errorf("order field %s missing", n)
		}
	}
	for _, n := range []string{"ItemText_1", "ItemText_50", "ItemNumeric_10", "ItemDate_10", "ItemMoney_3"} {
		if _, ok := itemFields.lookup(n); !ok {
			t.Errorf("item field %s missing", n)
		}
	}
	for _, n := range []string{"Text51", "Money4", "ItemMoney_4", "ItemText_0"} {
		_, a := orderFields.lookup(n)
		_, b := itemFields.lookup(n)
		if a || b {
			t.Errorf("field %s should not exist", n)
		}
	}
	if len(orderFields.list) != 45+50+10+3+10 || len(itemFields.list) != 14+50+10+10+3 {
		t.Errorf("catalogue sizes %d, %d", len(orderFields.list), len(itemFields.list))
	}
}

// TestAppendISO compares the hand-written formatting with time.Format
// over many instants and zones, offsets with seconds (LMT) included.
func TestAppendISO(t *testing.T) {
	zones := []string{"UTC", "Europe/Berlin", "America/Los_Angeles", "Asia/Kolkata", "Australia/Lord_Howe", "America/St_Johns", "Pacific/Chatham"}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, z := range zones {
		loc, err := time.LoadLocation(z)
		if err != nil {
			t.Fatal(err)
		}
		for range 2000 {
			sec := rng.Int64N(253402300799+62135596800) - 62135596800
			ns := int64(0)
			if rng.IntN(2) == 0 {
				ns = rng.Int64N(1e9)
			}
			tm := time.Unix(sec, ns).In(loc)
			if tm.Year() < 1 || tm.Year() > 9999 {
				continue
			}
			if got, want := string(appendISO(nil, tm, false)), tm.Format(time.RFC3339Nano); got != want {
				t.Fatalf("appendISO(%v) = %s, want %s", tm, got, want)
			}
			if got, want := string(appendISO(nil, tm, true)), tm.Format(time.DateOnly); got != want {
				t.Fatalf("appendISO date (%v) = %s, want %s", tm, got, want)
			}
		}
	}
}

// TestFixedLayout compares the fixed-layout reader with time.Parse: what
// it accepts, time.Parse accepts alike.
func TestFixedLayout(t *testing.T) {
	loc, _ := time.LoadLocation("Europe/Berlin")
	layouts := []string{"2006-01-02 15:04:05", "02.01.2006", "01/02/2006 15:04", "2006-01-02T15:04:05", time.DateOnly}
	inputs := []string{"2024-03-31 02:30:00", "2024-02-29 23:59:59", "2023-02-29 10:00:00", "2024-13-01 00:00:00", "2024-04-31 00:00:00",
		"31.12.2024", "29.02.2023", "00.01.2024", "12/31/2024 24:00", "12/31/2024 23:60", "2024-05-01T10:00:00", "2024-5-1 10:00:00", "0000-01-01"}
	for _, l := range layouts {
		f := compileFixed(l)
		if f == nil {
			t.Fatalf("layout %q not fixed", l)
		}
		for _, in := range inputs {
			got, ok := f.parse(in, l, loc)
			want, err := time.ParseInLocation(l, in, loc)
			if ok && (err != nil || !got.Equal(want)) {
				t.Errorf("%q %q: fixed %v, time.Parse %v %v", l, in, got, want, err)
			}
		}
	}
	for _, l := range []string{"Jan 2 2006", "2006-01-02 3:04PM", "2006-01-02T15:04:05Z07:00", "02.01.06", "2006-01-02 15:04:05.000"} {
		if compileFixed(l) != nil {
			t.Errorf("layout %q taken as fixed", l)
		}
	}
}
