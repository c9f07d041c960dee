package sinks

import (
	"encoding/base64"
	"testing"
)

func TestRedactor(t *testing.T) {
	r := newRedactor("IRTEST", "TOKsecret/q+w=e&r~t-ZyXwVuTsRq")
	basic := base64.StdEncoding.EncodeToString([]byte("IRTEST:TOKsecret/q+w=e&r~t-ZyXwVuTsRq"))
	tests := []struct{ in, want string }{
		{"nothing secret", "nothing secret"},
		{"token TOKsecret/q+w=e&r~t-ZyXwVuTsRq.", "token [redacted]."},
		{"user IRTEST:TOKsecret/q+w=e&r~t-ZyXwVuTsRq", "user [redacted]"},
		{"Authorization: Basic " + basic, "Authorization: Basic [redacted]"},
		{"lower-case escapes TOKsecret%2fq%2bw%3de%26r~t-ZyXwVuTsRq", "lower-case escapes [redacted]"},
		{`json "TOKsecret\/q+w=e\u0026r~t-ZyXwVuTsRq"`, `json "[redacted]"`},
		{"path TOKsecret%2Fq+w=e&r~t-ZyXwVuTsRq", "path [redacted]"},
		{"token base64 VE9Lc2VjcmV0L3Erdz1lJnJ+dC1aeVh3VnVUc1Jx", "token base64 [redacted]"},
		{"url base64 VE9Lc2VjcmV0L3Erdz1lJnJ-dC1aeVh3VnVUc1Jx", "url base64 [redacted]"},
		{"a part TOKsecret/q+w", "a part TOKsecret/q+w"},
	}
	for _, tt := range tests {
		if got := r.redact(tt.in); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	var none *redactor
	if got := none.redact("TOKsecret"); got != "TOKsecret" {
		t.Errorf("a nil redactor changed %q", got)
	}
	if newRedactor("IRTEST", "") != nil {
		t.Error("a redactor for no token")
	}
}
