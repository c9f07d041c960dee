package sinks

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string // fragments of the error; none means valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"zero config takes defaults", func(c *Config) { *c = Config{} }, nil},
		{"https anywhere", func(c *Config) { c.BaseURL = "https://api.example.com/" }, nil},
		{"http to 127.0.0.1", func(c *Config) { c.BaseURL = "http://127.0.0.1:8089" }, nil},
		{"http to 127.1.2.3", func(c *Config) { c.BaseURL = "http://127.1.2.3" }, nil},
		{"http to ::1", func(c *Config) { c.BaseURL = "http://[::1]:8089" }, nil},
		{"http to localhost", func(c *Config) { c.BaseURL = "http://localhost:8089" }, nil},
		{"http to a remote host", func(c *Config) { c.BaseURL = "http://api.impact.com" }, []string{"sink.base_url:", "plain http is refused"}},
		{"http to a remote ip", func(c *Config) { c.BaseURL = "http://10.0.0.1" }, []string{"sink.base_url:"}},
		{"http to a name that starts like loopback", func(c *Config) { c.BaseURL = "http://127.0.0.1.example.com" }, []string{"sink.base_url:"}},
		{"credentials in the url", func(c *Config) { c.BaseURL = "https://sid:tok@api.impact.com" }, []string{"sink.base_url: must not contain credentials"}},
		{"ftp", func(c *Config) { c.BaseURL = "ftp://api.impact.com" }, []string{"sink.base_url:"}},
		{"literal token", func(c *Config) { c.AuthToken = "s3cr3t-token" }, []string{"sink.auth_token: a token must not be written"}},
		{"token from a variable", func(c *Config) { c.AuthToken = "${MY_TOKEN}" }, nil},
		{"sid from a variable", func(c *Config) { c.AccountSID = "${MY_SID}" }, nil},
		{"bad sid", func(c *Config) { c.AccountSID = "IR/../x" }, []string{"sink.account_sid:"}},
		{"bad ir version", func(c *Config) { c.IRVersion = "v14" }, []string{"sink.ir_version:"}},
		{"bad rate", func(c *Config) { c.Rate = "fast" }, []string{"sink.rate:"}},
		{"zero rate", func(c *Config) { c.Rate = "0/h" }, []string{"sink.rate:"}},
		{"negative workers", func(c *Config) { c.Workers = -1 }, []string{"sink.workers: must be > 0"}},
		{"negative timeout", func(c *Config) { c.RequestTimeout = -time.Second }, []string{"sink.request_timeout: must be > 0"}},
		{"zero max wait takes the default", func(c *Config) { c.MaxWait = 0 }, nil},
		{"negative max wait", func(c *Config) { c.MaxWait = -time.Minute }, []string{"sink.max_wait: must be > 0"}},
		{"backoff max below initial", func(c *Config) { c.BackoffInitial, c.BackoffMax = time.Minute, time.Second }, []string{"sink.backoff_max:"}},
		{"list page size under impact's minimum", func(c *Config) { c.ListPageSize = 500 }, []string{"sink.list_page_size: must be from 2000 to 20000"}},
		{"list page size over impact's default", func(c *Config) { c.ListPageSize = 50000 }, []string{"sink.list_page_size:"}},
		{"several", func(c *Config) { c.Burst, c.MaxAttempts = -1, -2 }, []string{"sink.burst:", "sink.max_attempts:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t-token") || strings.Contains(err.Error(), ":tok@") {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want float64 // per second; 0 means an error
	}{
		{"1000/h", 1000.0 / 3600},
		{"20/s", 20},
		{"50/min", 50.0 / 60},
		{"1/hour", 1.0 / 3600},
		{" 2.5 / second ", 2.5},
		{"100/15m", 100.0 / 900},
		{"2400/day", 2400.0 / 86400},
		{"1000", 0},
		{"-1/s", 0},
		{"x/s", 0},
		{"10/fortnight", 0},
		{"10/-1s", 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRate(tt.in)
			if tt.want == 0 {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil || math.Abs(float64(got)-tt.want) > 1e-9 {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	env := map[string]string{EnvAccountSID: "IRDEFAULT", EnvAuthToken: "tok-default", "OTHER_SID": "IROTHER", "OTHER_TOKEN": "tok-other"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name       string
		cfg        Config
		env        func(string) string
		sid, token string
		err        string
	}{
		{"from the default variables", Config{}, getenv, "IRDEFAULT", "tok-default", ""},
		{"from named variables", Config{AccountSID: "${OTHER_SID}", AuthToken: "${OTHER_TOKEN}"}, getenv, "IROTHER", "tok-other", ""},
		{"literal sid", Config{AccountSID: "IRLITERAL"}, getenv, "IRLITERAL", "tok-default", ""},
		{"token unset", Config{}, func(k string) string { return map[string]string{EnvAccountSID: "IR1"}[k] }, "", "", "sink.auth_token: not set: set the environment variable IMPACT_AUTH_TOKEN"},
		{"named variable unset", Config{AuthToken: "${NOPE}"}, getenv, "", "", "set the environment variable NOPE"},
		{"literal token", Config{AuthToken: "tok-literal"}, getenv, "", "", "sink.auth_token: a token must not be written"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sid, token, err := tt.cfg.Credentials(tt.env)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "tok-") {
					t.Fatalf("error shows a token: %v", err)
				}
				return
			}
			if err != nil || sid != tt.sid || token != tt.token {
				t.Fatalf("got %q %q %v, want %q %q", sid, token, err, tt.sid, tt.token)
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	in := `base_url: http://127.0.0.1:8089
account_sid: IRACCOUNT
auth_token: ${IMPACT_AUTH_TOKEN}
ir_version: "14"
rate: 50/min
burst: 2
workers: 8
connect_timeout: 3s
request_timeout: 20s
max_attempts: 5
max_elapsed: 10m
max_wait: 30m
`
	c := DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(in))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.Workers != 8 || c.RequestTimeout != 20*time.Second || c.MaxElapsed != 10*time.Minute || c.IRVersion != "14" || c.BackoffInitial != time.Second || c.MaxWait != 30*time.Minute {
		t.Fatalf("decoded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	dec = yaml.NewDecoder(strings.NewReader("rates: 1/s\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err == nil {
		t.Fatal("unknown key accepted")
	}
}

func TestConfigDumpsRedact(t *testing.T) {
	c := DefaultConfig()
	c.AccountSID = "IRSECRETSID"
	c.AuthToken = "tok-literal-secret"
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%s\n%v\n%+v\n%#v\n%s", out, c, c, c, c.String())
	if s := buf.String(); strings.Contains(s, "tok-literal-secret") || strings.Contains(s, "IRSECRETSID") || !strings.Contains(s, redacted) {
		t.Fatalf("dump shows credentials:\n%s", s)
	}
	c.AuthToken = "${MY_TOKEN}"
	if out, _ := yaml.Marshal(c); !strings.Contains(string(out), "${MY_TOKEN}") {
		t.Fatalf("a variable reference should stay visible:\n%s", out)
	}
}

// TestResolve: the defaults, the rate and the endpoint are resolved once,
// and a sink opens only from resolved settings.
func TestResolve(t *testing.T) {
	set, err := Config{Rate: "20/s", BaseURL: "https://api.example.com/"}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if set.Limit != 20 || set.Base != "https://api.example.com" || set.Workers != DefaultConfig().Workers || set.MaxWait != time.Hour {
		t.Errorf("resolved %+v", set)
	}
	if _, err := (Config{Rate: "fast"}).Resolve(); err == nil || !strings.Contains(err.Error(), "sink.rate:") {
		t.Errorf("Resolve with rate fast: %v, want a sink.rate error", err)
	}
	creds := Credentials{AccountSID: "IRX", AuthToken: "t"}
	if _, err := NewFromSettings(Settings{Config: DefaultConfig()}, creds, "test", nil); err == nil || !strings.Contains(err.Error(), "not resolved") {
		t.Errorf("NewFromSettings with unresolved settings: %v, want an error", err)
	}
	if _, err := set.WithBaseURL("http://example.com"); err == nil || !strings.Contains(err.Error(), "sink.base_url: ") {
		t.Errorf("WithBaseURL to plain http off loopback: %v, want refused", err)
	}
	loop, err := set.WithBaseURL("http://127.0.0.1:8089/")
	if err != nil || loop.Base != "http://127.0.0.1:8089" || loop.Limit != 20 {
		t.Fatalf("WithBaseURL to loopback: %+v, %v", loop, err)
	}
	imp, err := NewFromSettings(loop, creds, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer imp.Close()
	if imp.endpoint != "http://127.0.0.1:8089/Advertisers/IRX/Conversions" || imp.Pace().PerSecond != 20 {
		t.Errorf("endpoint %s, pace %+v", imp.endpoint, imp.Pace())
	}
}

// TestConfigErrorsShowURLUserinfo: a base URL with credentials is
// refused, and no error (nor a configuration dump) shows them, however
// malformed the rest of the URL is.
func TestConfigErrorsShowURLUserinfo(t *testing.T) {
	tests := []struct{ name, url string }{
		{"well formed", "https://IRTEST:TOKsecret@api.impact.com"},
		{"bad escape in the path", "http://IRTEST:TOKsecret@127.0.0.1:18080/%zz"},
		{"bad port", "http://IRTEST:TOKsecret@127.0.0.1:80x/"},
		{"unclosed IPv6 host", "http://IRTEST:TOKsecret@[::1"},
		{"bad escape in the token", "http://IRTEST:TOK%zzsecret@127.0.0.1"},
		{"slash in the token", "http://IRTEST:TOK/secret@127.0.0.1"},
		{"control character", "http://IRTEST:TOKsecret@127.0.0.1/\x7f"},
		{"leading space", " http://IRTEST:TOKsecret@127.0.0.1"},
		{"no scheme", "IRTEST:TOKsecret@127.0.0.1:18080"},
		{"no slashes", "http:IRTEST:TOKsecret@127.0.0.1"},
		{"a query too", "http://IRTEST:TOKsecret@127.0.0.1/?a=%zz"},
	}
	leaks := func(s string) bool { return strings.Contains(s, "TOK") || strings.Contains(s, "secret") }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.BaseURL = tt.url
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), "sink.base_url: ") || leaks(err.Error()) {
				t.Errorf("Validate: %v; want a sink.base_url error without the token", err)
			}
			set, rerr := DefaultConfig().Resolve()
			if rerr != nil {
				t.Fatal(rerr)
			}
			if _, err := set.WithBaseURL(tt.url); err == nil || !strings.Contains(err.Error(), "sink.base_url: ") || leaks(err.Error()) {
				t.Errorf("WithBaseURL: %v; want a sink.base_url error without the token", err)
			}
			out, _ := yaml.Marshal(c)
			if dump := fmt.Sprintf("%s\n%v\n%+v\n%#v", out, c, c, c); leaks(dump) {
				t.Errorf("the configuration dump shows the token:\n%s", dump)
			}
		})
	}
}
