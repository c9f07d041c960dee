package reconcile

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		c     Config
		field string // "" when valid
	}{
		{Config{}, ""},
		{Config{Settle: time.Minute, Share: 0.5, MaxRequests: 100}, ""},
		{Config{Share: 1}, ""},
		{Config{Settle: -time.Second}, "reconcile.settle"},
		{Config{Share: 1.5}, "reconcile.share"},
		{Config{Share: -0.1}, "reconcile.share"},
		{Config{MaxRequests: -1}, "reconcile.max_requests"},
	} {
		err := tt.c.Validate()
		if (err == nil) != (tt.field == "") || (err != nil && !strings.HasPrefix(err.Error(), tt.field+":")) {
			t.Errorf("Validate(%+v) = %v, want an error naming %q", tt.c, err, tt.field)
		}
	}
}
