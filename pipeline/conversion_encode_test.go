package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
)

// referenceEncode is Encode as url.QueryEscape over Form spells it.
func referenceEncode(c *Conversion) string {
	var parts []string
	for _, f := range c.Form() {
		parts = append(parts, url.QueryEscape(f.Name)+"="+url.QueryEscape(f.Value))
	}
	return strings.Join(parts, "&")
}

func TestEncodeEscapesAsQueryEscape(t *testing.T) {
	var every strings.Builder
	for c := range 256 {
		every.WriteByte(byte(c))
	}
	for _, tc := range []struct {
		name string
		conv *Conversion
	}{
		{"empty", &Conversion{}},
		{"order fields", &Conversion{Fields: []Field{{"OrderId", "berlin-1"}, {"CustomerEmail", "a b@c.de"}, {"Text1", "x&y=z+1%"}}}},
		{"every byte", &Conversion{Fields: []Field{{"Text1", every.String()}, {"Text2", "Grüße, \"Welt\" ~-_."}}}},
		{"empty values", &Conversion{Fields: []Field{{"", ""}, {"Text1", ""}}, Items: []Item{{Fields: []Field{{"ItemSku", ""}}}}}},
		{"items only", &Conversion{Items: []Item{{Fields: []Field{{"ItemSku", "a"}}}}}},
		{"item indices", func() *Conversion {
			c := benchConversion()
			for range 120 {
				c.Items = append(c.Items, Item{Fields: []Field{{"ItemText_2", "x y"}, {"ItemSku", "S/1"}, {"Item Name", "ä"}}})
			}
			return c
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, want := tc.conv.Encode(), referenceEncode(tc.conv)
			if got != want {
				t.Fatalf("Encode:\n got %q\nwant %q", got, want)
			}
			sum := sha256.Sum256([]byte(want))
			if h := PayloadHash(got); h != hex.EncodeToString(sum[:]) {
				t.Fatalf("PayloadHash = %s, want the hex SHA-256 %x", h, sum)
			}
		})
	}
}
