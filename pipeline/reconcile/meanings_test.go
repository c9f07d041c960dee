package reconcile

import (
	"os"
	"regexp"
	"testing"
)

// TestMeaningsMatchTheDocs: docs/reconcile.md's table of reasons and the
// code's are the same, row for row.
func TestMeaningsMatchTheDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/reconcile.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile("(?m)^\\| `([A-Z_]+)` \\| (.+) \\|$").FindAllStringSubmatch(string(b), -1)
	doc := map[string]string{}
	for _, r := range rows {
		doc[r[1]] = r[2]
	}
	for k, v := range meanings {
		if doc[k] != v {
			t.Errorf("%s: docs say %q, the code %q", k, doc[k], v)
		}
	}
	if len(doc) != len(meanings) {
		t.Errorf("the docs explain %d reasons, the code %d", len(doc), len(meanings))
	}
}

func TestMeaning(t *testing.T) {
	tests := map[string]string{
		"CONTRACT_NOT_FOUND":                       meanings["CONTRACT_NOT_FOUND"],
		"contract_not_found":                       meanings["CONTRACT_NOT_FOUND"],
		"CONTRACT_NOT_FOUND  RESTRICTED_PROMOCODE": meanings["CONTRACT_NOT_FOUND"] + "; " + meanings["RESTRICTED_PROMOCODE"],
		"SOMETHING_NEW":                            "SOMETHING_NEW is not in convpipe's table of reasons (docs/reconcile.md): see impact's documentation of API submissions",
		"":                                         "",
	}
	for in, want := range tests {
		if got := Meaning(in); got != want {
			t.Errorf("Meaning(%q) = %q, want %q", in, got, want)
		}
	}
}
