package mapping

import (
	"strings"
	"testing"
	"time"
)

func TestParseAge(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"88d", 88 * 24 * time.Hour, false},
		{"1.5d", 36 * time.Hour, false},
		{"36h", 36 * time.Hour, false},
		{" 0d ", 0, false},
		{"-1d", 0, true},
		{"88 days", 0, true},
		{"d", 0, true},
		{"", 0, true},
	}
	for _, c := range cases {
		got, err := ParseAge(c.in)
		if (err != nil) != c.err || (err == nil && time.Duration(got) != c.want) {
			t.Errorf("ParseAge(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.err)
		}
	}
	if s := Age(88 * 24 * time.Hour).String(); s != "88d" {
		t.Errorf("String = %q", s)
	}
}

// TestMaxEventAgeConfig: the key is read from YAML, checked, and
// --allow-old (AllowOld) turns the check off.
func TestMaxEventAgeConfig(t *testing.T) {
	base := "order_key: [id]\nfields:\n  EventTypeId: {const: \"1\"}\n  OrderId: id\n  EventDate: date\n  ClickId: {const: c}\n  CampaignId: {const: \"2\"}\n"
	if _, err := ParseConfig([]byte("max_event_age: 88 days\n" + base)); err == nil || !strings.Contains(err.Error(), `line 1: "88 days": want days (88d)`) {
		t.Errorf("a bad max_event_age: %v", err)
	}
	cfg, err := ParseConfig([]byte("max_event_age: 30d\n" + base))
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(cfg.MaxEventAge) != 30*24*time.Hour {
		t.Fatalf("MaxEventAge = %v", cfg.MaxEventAge)
	}
	for _, tc := range []struct {
		allowOld bool
		date     string
		invalid  bool
	}{
		{false, "2024-05-10", false},
		{false, "2024-04-01", true},
		{true, "2024-04-01", false},
		{true, "1990-01-01", false},
	} {
		cfg.AllowOld = tc.allowOld
		m, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		m.now = func() time.Time { return testNow }
		got := m.Map(rowsOf("a.csv", []string{"id", "date"}, []string{"o1", tc.date}))
		if (len(got.Problems) > 0) != tc.invalid {
			t.Errorf("allow_old %v, %s: problems %v, want invalid %v", tc.allowOld, tc.date, got.Problems, tc.invalid)
		}
	}
}
