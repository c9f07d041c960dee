package sinks

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// redactor removes an account's credentials from texts, in every form a
// server may echo them: the token and SID:token, each raw, in base64 (the
// Basic authorization is base64 of SID:token), URL-escaped, and each of
// these JSON-escaped. Matching ignores case, as escapes may be written in
// either. A nil redactor removes nothing. It is safe for concurrent use.
type redactor struct {
	re *regexp.Regexp
}

// newRedactor returns the redactor of the credentials; nil when there is
// no token.
func newRedactor(sid, token string) *redactor {
	if token == "" {
		return nil
	}
	seen := map[string]bool{}
	var forms []string
	for _, secret := range []string{sid + ":" + token, token} {
		for _, f := range encodedForms(secret) {
			for _, j := range jsonForms(f) {
				if j != "" && !seen[j] {
					seen[j] = true
					forms = append(forms, j)
				}
			}
		}
	}
	// Longest first: where forms overlap (SID:token holds the token),
	// the longest is removed whole.
	sort.SliceStable(forms, func(i, j int) bool { return len(forms[i]) > len(forms[j]) })
	for i, f := range forms {
		forms[i] = regexp.QuoteMeta(f)
	}
	return &redactor{re: regexp.MustCompile("(?i)" + strings.Join(forms, "|"))}
}

// encodedForms returns s raw, in base64 and URL-escaped.
func encodedForms(s string) []string {
	b := []byte(s)
	std := base64.StdEncoding.EncodeToString(b)
	return []string{
		s, url.QueryEscape(s), url.PathEscape(s),
		std, base64.URLEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.RawURLEncoding.EncodeToString(b), url.QueryEscape(std),
	}
}

// jsonForms returns s and s as JSON encoders write it inside a string:
// with and without HTML escapes, with and without "/" escaped.
func jsonForms(s string) []string {
	html, _ := json.Marshal(s)
	var plain bytes.Buffer
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	forms := []string{s}
	for _, q := range []string{string(html), strings.TrimSuffix(plain.String(), "\n")} {
		q = q[1 : len(q)-1]
		forms = append(forms, q, strings.ReplaceAll(q, "/", `\/`))
	}
	return forms
}

// redact returns s with every form of the credentials replaced.
func (r *redactor) redact(s string) string {
	if r == nil || s == "" {
		return s
	}
	return r.re.ReplaceAllLiteralString(s, redacted)
}
