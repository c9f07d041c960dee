package main

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"convpipe/sim"
)

func TestSimFlags(t *testing.T) {
	t.Setenv("IMPACT_ACCOUNT_SID", "IRSIM")
	t.Setenv("IMPACT_AUTH_TOKEN", "secret")
	tests := []struct {
		name  string
		args  []string
		check func(c sim.Config) bool
		err   string
	}{
		{"defaults", nil, func(c sim.Config) bool {
			return c.Duplicates == sim.DuplicateQueued && c.CompleteAfter == 5*time.Second && !c.OmitRetryAfter
		}, ""},
		{"processing", []string{"--campaigns", "1000,1001", "--event-types", "12345", "--association-window", "720h",
			"--restricted-promo-codes", "STAFF", "--processing-error-rate", "0.03", "--omit-retry-after", "--duplicates", "error", "--redate-after", "168h"},
			func(c sim.Config) bool {
				p := c.Processing
				return len(p.Campaigns) == 2 && p.EventTypes[0] == "12345" && p.AssociationWindow == 30*24*time.Hour &&
					p.RestrictedPromoCodes[0] == "STAFF" && p.ErrorRate == 0.03 && c.OmitRetryAfter && c.Duplicates == sim.DuplicateError && c.RedateAfter == 7*24*time.Hour
			}, ""},
		{"error rate over 1", []string{"--processing-error-rate", "2"}, nil, "--processing-error-rate 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f simFlags
			fs := pflag.NewFlagSet("sim", pflag.ContinueOnError)
			f.register(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := f.check()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !tt.check(f.cfg) {
				t.Fatalf("%v: %+v", err, f.cfg)
			}
		})
	}
}
