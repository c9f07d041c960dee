package sim

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// change sends a PUT or DELETE of the Actions resource with form.
func change(t *testing.T, s *Server, method string, form url.Values) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL()+"/Advertisers/"+s.AccountSID()+"/Actions", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(s.AccountSID(), DefaultAuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return do(t, req)
}

// tracked submits a conversion of O-1 (two items: S1 1 × 10.00, S2 6 for
// 18.84) dated a day ago and lets it complete; it returns its action as
// GET /Actions lists it.
func tracked(t *testing.T, s *Server) map[string]any {
	t.Helper()
	v := valid()
	v.Set("EventDate", s.Now().Add(-24*time.Hour).UTC().Format(time.RFC3339))
	if _, err := s.Submit(v); err != nil {
		t.Fatal(err)
	}
	s.Advance(DefaultCompleteAfter)
	return listed(t, s)
}

// listed returns the one action GET /Actions lists for campaign 1000.
func listed(t *testing.T, s *Server) map[string]any {
	t.Helper()
	r := get(t, s, actionsPath(url.Values{"CampaignId": {"1000"}}))
	acts, _ := r.body["Actions"].([]any)
	if r.status != 200 || len(acts) != 1 {
		t.Fatalf("list: %d %s", r.status, r.raw)
	}
	return acts[0].(map[string]any)
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func TestModifyRules(t *testing.T) {
	byKey := []string{"ActionTrackerId", "12345", "OrderId", "O-1"}
	with := func(kv ...string) url.Values { return form(append(append([]string{}, byKey...), kv...)...) }
	tests := []struct {
		name   string
		method string
		form   url.Values
		status int
		want   string // fragment of the error, or the amount after a change
	}{
		{"no identification", http.MethodPut, form("OrderId", "O-1", "Amount", "5", "Reason", "ORDER_UPDATE"), 400, "ActionTrackerId and OrderId"},
		{"unknown order", http.MethodPut, form("ActionTrackerId", "12345", "OrderId", "O-9", "Amount", "5", "Reason", "ORDER_UPDATE"), 404, "Action not found"},
		{"unknown action id", http.MethodPut, form("ActionId", "1.2.3", "Amount", "5", "Reason", "ORDER_UPDATE"), 404, "Action not found"},
		{"no reason", http.MethodPut, with("Amount", "5"), 400, "Reason (or DispositionCode) is required"},
		{"bad reason", http.MethodPut, with("Amount", "5", "Reason", "BECAUSE"), 400, "Invalid Reason"},
		{"nothing to modify", http.MethodPut, with("Reason", "ORDER_UPDATE"), 400, "Nothing to modify"},
		{"two kinds", http.MethodPut, with("Amount", "5", "ItemSubTotalDelta", "-1", "Reason", "ORDER_UPDATE"), 400, "only one of"},
		{"unknown sku", http.MethodPut, with("Sku", "S9", "Quantity", "0", "Reason", "ORDER_UPDATE"), 400, "not an item"},
		{"fractional quantity", http.MethodPut, with("Sku", "S2", "Quantity", "1.5", "Reason", "ORDER_UPDATE"), 400, "Invalid Quantity"},
		{"negative quantity", http.MethodPut, with("Sku", "S2", "Quantity", "-1", "Reason", "ORDER_UPDATE"), 400, "Invalid Quantity"},
		{"negative amount", http.MethodPut, with("Amount", "-1", "Reason", "ORDER_UPDATE"), 400, "Invalid Amount"},
		{"three decimals", http.MethodPut, with("Amount", "1.005", "Reason", "ORDER_UPDATE"), 400, "Invalid Amount"},
		{"delta below zero", http.MethodPut, with("ItemSubTotalDelta", "-30", "Reason", "ORDER_UPDATE"), 400, "negative"},
		{"one item returned", http.MethodPut, with("Sku", "S2", "Quantity", "3", "Reason", "ITEM_RETURNED"), 200, "19.42"},
		{"items by index", http.MethodPut, with("ItemSku1", "S1", "ItemQuantity1", "0", "ItemSku2", "S2", "ItemQuantity2", "2", "Reason", "ORDER_UPDATE"), 200, "6.28"},
		{"by event type id", http.MethodPut, form("EventTypeId", "12345", "OrderId", "O-1", "Amount", "12.50", "Reason", "ORDER_UPDATE"), 200, "12.50"},
		{"delta", http.MethodPut, with("ItemSubTotalDelta", "-8.84", "Reason", "ORDER_UPDATE"), 200, "20.00"},
		{"reset after a change", http.MethodPut, with("Reason", "RESET"), 200, "28.84"},
		{"reversal without code", http.MethodDelete, form(byKey...), 400, "DispositionCode is required"},
		{"reversal with a bad code", http.MethodDelete, with("DispositionCode", "CHANGED_MIND"), 400, "Invalid DispositionCode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewTestServer(t, Config{})
			before := tracked(t, s)
			if tt.name == "reset after a change" {
				if r := change(t, s, http.MethodPut, with("Amount", "1", "Reason", "ORDER_UPDATE")); r.status != 200 {
					t.Fatalf("first change: %d %s", r.status, r.raw)
				}
			}
			r := change(t, s, tt.method, tt.form)
			after := listed(t, s)
			if r.status != tt.status {
				t.Fatalf("%d %s, want %d", r.status, r.raw, tt.status)
			}
			if tt.status != 200 {
				if !strings.Contains(r.raw, tt.want) || r.body["Status"] != "ERROR" {
					t.Fatalf("%s, want an ERROR with %q", r.raw, tt.want)
				}
				if after["Amount"] != before["Amount"] || after["Modifications"] != before["Modifications"] {
					t.Fatalf("a refused change changed the action: %v → %v", before, after)
				}
				return
			}
			if r.body["Status"] != "QUEUED" || !strings.Contains(r.raw, "/APISubmissions/") {
				t.Fatalf("answer %s", r.raw)
			}
			if after["Amount"] != tt.want || after["State"] != "PENDING" {
				t.Fatalf("after the change: %v, want amount %s, PENDING", after, tt.want)
			}
		})
	}
}

func TestReversalIsFinal(t *testing.T) {
	s := NewTestServer(t, Config{})
	a := tracked(t, s)
	if r := change(t, s, http.MethodDelete, form("ActionId", a["Id"].(string), "DispositionCode", "ITEM_RETURNED")); r.status != 200 {
		t.Fatalf("reversal: %d %s", r.status, r.raw)
	}
	if got := listed(t, s); got["State"] != "REVERSED" || got["DispositionCode"] != "ITEM_RETURNED" {
		t.Fatalf("after the reversal: %v", got)
	}
	for _, m := range []string{http.MethodPut, http.MethodDelete} {
		r := change(t, s, m, form("ActionTrackerId", "12345", "OrderId", "O-1", "Amount", "1", "Reason", "ORDER_UPDATE", "DispositionCode", "ORDER_ERROR"))
		if r.status != 400 || !strings.Contains(r.raw, "reversed") {
			t.Fatalf("%s of a reversed action: %d %s", m, r.status, r.raw)
		}
	}
	if n := len(s.Modifications()); n != 1 {
		t.Fatalf("%d modifications recorded, want 1", n)
	}
}

func TestModifyAfterLocking(t *testing.T) {
	s := NewTestServer(t, Config{LockAfter: 48 * time.Hour})
	tracked(t, s)
	s.Advance(24 * time.Hour)
	if got := listed(t, s); got["State"] != "APPROVED" {
		t.Fatalf("after the locking date: %v", got)
	}
	for _, m := range []string{http.MethodPut, http.MethodDelete} {
		r := change(t, s, m, form("ActionTrackerId", "12345", "OrderId", "O-1", "Amount", "1", "Reason", "ORDER_UPDATE", "DispositionCode", "ORDER_ERROR"))
		if r.status != 400 || !strings.Contains(r.raw, "locked") {
			t.Fatalf("%s of a locked action: %d %s", m, r.status, r.raw)
		}
	}
	if got := listed(t, s); got["State"] != "APPROVED" || got["Amount"] != "28.84" {
		t.Fatalf("a locked action changed: %v", got)
	}
}

func TestModificationLimit(t *testing.T) {
	s := NewTestServer(t, Config{})
	tracked(t, s)
	s.mu.Lock()
	s.actions[0].mods = MaxModifications - 1
	s.mu.Unlock()
	f := form("ActionTrackerId", "12345", "OrderId", "O-1", "Amount", "20", "Reason", "ORDER_UPDATE")
	if r := change(t, s, http.MethodPut, f); r.status != 200 {
		t.Fatalf("the 1000th modification: %d %s", r.status, r.raw)
	}
	if r := change(t, s, http.MethodPut, f); r.status != 400 || !strings.Contains(r.raw, "limit of 1000 modifications") {
		t.Fatalf("the 1001st: %d %s", r.status, r.raw)
	}
	if r := change(t, s, http.MethodDelete, form("ActionTrackerId", "12345", "OrderId", "O-1", "DispositionCode", "ORDER_ERROR")); r.status != 400 {
		t.Fatalf("a reversal past the limit: %d %s", r.status, r.raw)
	}
	if r := get(t, s, "/Advertisers/"+DefaultAccountSID+"/Actions?CampaignId=1000"); r.status != 200 {
		t.Fatalf("GET after: %d", r.status)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPatch, s.URL()+"/Advertisers/"+s.AccountSID()+"/Actions", nil)
	req.SetBasicAuth(s.AccountSID(), DefaultAuthToken)
	req.Header.Set("Accept", "application/json")
	if r := do(t, req); r.status != 405 {
		t.Fatalf("PATCH: %d", r.status)
	}
}

func TestSeed(t *testing.T) {
	s := NewTestServer(t, Config{})
	v := valid()
	v.Set("EventDate", s.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	if err := s.Seed(v); err != nil {
		t.Fatal(err)
	}
	if a := listed(t, s); a["Amount"] != "28.84" || a["Oid"] != "O-1" || a["State"] != "PENDING" {
		t.Fatalf("seeded action %v", a)
	}
	if r := post(t, s, DefaultAuthToken, v); r.status != 200 || s.Duplicates() != 1 {
		t.Fatalf("the seeded OrderId is not taken: %d, %d duplicates", r.status, s.Duplicates())
	}
	if err := s.Seed(url.Values{"OrderId": {"x"}}); err == nil {
		t.Fatal("a seed without its campaign")
	}
}
