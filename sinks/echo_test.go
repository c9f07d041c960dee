package sinks

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// echoCreds are credentials whose forms differ: base64 with + and =,
// URL escapes, characters JSON encoders escape.
var echoCreds = Credentials{AccountSID: "IRTEST", AuthToken: "TOKsecret/q+w=e&r~t-ZyXwVuTsRq"}

// secretForms returns the forms a server may echo the credentials in:
// the token and SID:token, raw, base64 and URL-escaped.
func secretForms(c Credentials) map[string]string {
	forms := map[string]string{}
	for name, s := range map[string]string{"token": c.AuthToken, "SID:token": c.AccountSID + ":" + c.AuthToken} {
		forms[name] = s
		forms[name+" in base64"] = base64.StdEncoding.EncodeToString([]byte(s))
		forms[name+" in URL base64"] = base64.URLEncoding.EncodeToString([]byte(s))
		forms[name+" query-escaped"] = url.QueryEscape(s)
		forms[name+" path-escaped"] = url.PathEscape(s)
	}
	return forms
}

// echo returns a reply of status and content type whose body is tmpl with
// {auth} (the request's Authorization header), {body} (the request's
// body) and {NAME} (the secret form NAME, worked out from the request's
// credentials) replaced; jsonStr JSON-escapes the replacements, "/" too.
func echo(status int, ctype, tmpl string, jsonStr bool) reply {
	return func(w http.ResponseWriter, r *http.Request, body string) {
		sid, tok, _ := r.BasicAuth()
		repl := []string{"{auth}", r.Header.Get("Authorization"), "{body}", body}
		for name, f := range secretForms(Credentials{AccountSID: sid, AuthToken: tok}) {
			repl = append(repl, "{"+name+"}", f)
		}
		for i := 1; jsonStr && i < len(repl); i += 2 {
			b, _ := json.Marshal(repl[i])
			repl[i] = strings.ReplaceAll(string(b[1:len(b)-1]), "/", `\/`)
		}
		if ctype != "" {
			w.Header().Set("Content-Type", strings.NewReplacer(repl...).Replace(ctype))
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, strings.NewReplacer(repl...).Replace(tmpl))
	}
}

// badStatusLine answers with a malformed status line that echoes the
// Authorization header: the client's error quotes it.
func badStatusLine(w http.ResponseWriter, r *http.Request, _ string) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = buf.WriteString("ECHO" + strings.ReplaceAll(r.Header.Get("Authorization"), " ", "") + "\r\n\r\n")
	_ = buf.Flush()
}

// TestSecretsEchoed: whatever form of the credentials a server echoes, in
// whichever part of its answer, and wherever the sink shortens the text,
// no outcome shows any of it.
func TestSecretsEchoed(t *testing.T) {
	type tc struct {
		name  string
		reply reply
	}
	tests := []tc{
		{"500 echoing the header and body", echo(500, "text/plain", "you sent Authorization: {auth} and {body}", false)},
		{"500 echoing the header in its Content-Type", echo(500, "text/plain; echo={auth}", "oops", false)},
		{"400 field error echoing the header", echo(400, "application/json", `{"Status":"ERROR","Errors":[{"Field":"Authorization","Message":"refused {auth} for {body}"}]}`, true)},
		{"400 message echoing SID:token, cut at 300", echo(400, "application/json", `{"Status":"ERROR","Message":"`+strings.Repeat("m", 285)+`{SID:token}","ErrorReason":"{token query-escaped}"}`, true)},
		{"400 field echoing the escaped token", echo(400, "application/json", `{"Status":"ERROR","errors":[{"field":"{token path-escaped}","message":"{SID:token query-escaped} {token in base64}"}]}`, true)},
		{"400 JSON without messages echoing the header", echo(400, "application/json", `{"Status":"ERROR","Echo":"{auth}"}`, true)},
		{"200 in XML echoing the header", echo(200, "application/xml", "<Echo>{auth}</Echo>", false)},
		{"200 with the token in the QueuedUri", echo(200, "application/json", `{"Status":"QUEUED","QueuedUri":"/Advertisers/IRTEST/APISubmissions/{token}"}`, true)},
		{"malformed status line echoing the header", badStatusLine},
	}
	// Each form, cut by the excerpt of a 500 and of a 400 answer.
	for name, f := range secretForms(echoCreds) {
		pad := strings.Repeat("x", 120-len(f)/2)
		tests = append(tests,
			tc{"500 cut inside the " + name, echo(500, "text/plain", pad+"{"+name+"}", false)},
			tc{"400 cut inside the " + name, echo(400, "text/plain", pad+"{"+name+"}", false)})
	}
	forms := secretForms(echoCreds)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScripted(t, echoCreds, func(c *Config) { c.MaxAttempts = 2 }, tt.reply)
			out, err := s.sink.Send(t.Context(), conv(1))
			if err != nil || out.Attempts == 0 || (len(out.Messages) == 0 && out.QueuedURI == "") {
				t.Fatalf("outcome %+v, %v", out, err)
			}
			// Without HTML escapes, so that a form with & shows as it is.
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(out); err != nil {
				t.Fatal(err)
			}
			got := b.String()
			if !strings.Contains(got, "[red") {
				t.Errorf("nothing was redacted: was anything echoed? %s", got)
			}
			for name, f := range forms {
				for i := 0; i+8 <= len(f); i++ {
					if w := f[i : i+8]; strings.Contains(got, w) {
						t.Fatalf("the outcome shows %q of the %s: %s", w, name, got)
					}
				}
			}
			if logs := s.logs.String(); strings.Contains(logs, echoCreds.AuthToken) {
				t.Errorf("the log shows the token:\n%s", logs)
			}
		})
	}
}
