package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// post sends a form to the server's Conversions endpoint.
func post(t *testing.T, s *Server, token string, form url.Values) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/Advertisers/"+s.AccountSID()+"/Conversions", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(s.AccountSID(), token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return do(t, req)
}

func do(t *testing.T, req *http.Request) reply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &r.body)
	return r
}

func TestAuth(t *testing.T) {
	s := NewTestServer(t, Config{ScopelessToken: "narrow"})
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"good", DefaultAuthToken, 200},
		{"wrong token", "nope", 401},
		{"scope-less token", "narrow", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := valid()
			v.Set("OrderId", tt.name)
			if r := post(t, s, tt.token, v); r.status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.status, tt.want, r.raw)
			}
		})
	}
}

func TestRejectsInvalidAndDuplicates(t *testing.T) {
	for _, mode := range []DuplicateMode{DuplicateError, DuplicateReason, DuplicateQueued} {
		t.Run(string(mode), func(t *testing.T) {
			s := NewTestServer(t, Config{Duplicates: mode})
			v := valid()
			if r := post(t, s, DefaultAuthToken, v); r.status != 200 || r.body["Status"] != "QUEUED" {
				t.Fatalf("first: %d %s", r.status, r.raw)
			}
			bad := valid()
			bad.Set("OrderId", "O-2")
			bad.Set("ItemQuantity1", "fifty")
			r := post(t, s, DefaultAuthToken, bad)
			if r.status != 400 || !strings.Contains(r.raw, `"field":"ItemQuantity1"`) {
				t.Fatalf("invalid: %d %s", r.status, r.raw)
			}
			r = post(t, s, DefaultAuthToken, v)
			switch mode {
			case DuplicateError:
				if r.status != 400 || !strings.Contains(r.raw, "Duplicate OrderId") {
					t.Fatalf("duplicate: %d %s", r.status, r.raw)
				}
			case DuplicateReason:
				if r.status != 400 || r.body["ErrorReason"] != "CONV_DUPLICATE" {
					t.Fatalf("duplicate: %d %s", r.status, r.raw)
				}
			case DuplicateQueued:
				if r.status != 200 || r.body["Status"] != "QUEUED" {
					t.Fatalf("duplicate: %d %s", r.status, r.raw)
				}
				uri := r.body["QueuedUri"].(string)
				if sub := get(t, s, uri); sub.body["Status"] != "Queued" || sub.body["ErrorReason"] != "" {
					t.Fatalf("submission of the duplicate before processing: %s", sub.raw)
				}
				s.Advance(DefaultCompleteAfter)
				sub := get(t, s, uri)
				if sub.body["Status"] != "Complete" || sub.body["ErrorReason"] != "CONV_DUPLICATE" {
					t.Fatalf("submission of the duplicate: %s", sub.raw)
				}
			}
			if n := len(s.Accepted()); n != 1 {
				t.Errorf("accepted %d, want 1", n)
			}
			if s.Duplicates() != 1 {
				t.Errorf("duplicates %d, want 1", s.Duplicates())
			}
		})
	}
}

func get(t *testing.T, s *Server, path string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(s.AccountSID(), DefaultAuthToken)
	req.Header.Set("Accept", "application/json")
	return do(t, req)
}

func TestSubmissionLifecycle(t *testing.T) {
	s := NewTestServer(t, Config{CompleteAfter: 10 * time.Minute, Quota: 100})
	r := post(t, s, DefaultAuthToken, valid())
	uri, _ := r.body["QueuedUri"].(string)
	if !strings.HasPrefix(uri, "/Advertisers/"+DefaultAccountSID+"/APISubmissions/") {
		t.Fatalf("QueuedUri %q", uri)
	}
	steps := []struct {
		advance time.Duration
		status  string
	}{
		{0, "Queued"}, {4 * time.Minute, "Queued"}, {time.Minute, "In Progress"}, {5 * time.Minute, "Complete"},
		{90*24*time.Hour - 11*time.Minute, "Complete"},
	}
	for _, st := range steps {
		s.Advance(st.advance)
		r := get(t, s, uri)
		if r.status != 200 || r.body["Status"] != st.status || r.body["OrderId"] != "O-1" || r.body["CampaignId"] != "1000" {
			t.Fatalf("after %s more: %d %s, want %s", st.advance, r.status, r.raw, st.status)
		}
		if r.header.Get("X-RateLimit-Remaining") == "" {
			t.Errorf("submission answer without X-RateLimit-Remaining")
		}
		if done := r.body["CompletionDate"] != ""; done != (st.status == "Complete") {
			t.Errorf("%s with CompletionDate %q", st.status, r.body["CompletionDate"])
		}
	}
	s.Advance(2 * time.Minute) // now more than 90 days old
	if r := get(t, s, uri); r.status != 404 {
		t.Fatalf("a submission older than 90 days: %d %s, want 404", r.status, r.raw)
	}
	if r := get(t, s, "/Advertisers/"+DefaultAccountSID+"/APISubmissions/nope"); r.status != 404 {
		t.Fatalf("unknown submission: %d", r.status)
	}
}

func TestProcessingErrors(t *testing.T) {
	cfg := Config{Processing: Processing{
		Campaigns: []string{"1000"}, EventTypes: []string{"12345", "SALE"},
		AssociationWindow: 30 * 24 * time.Hour, RestrictedPromoCodes: []string{"STAFF50"},
	}}
	tests := []struct {
		name              string
		change            func(v url.Values)
		errType, errorWhy string
	}{
		{"tracked", func(url.Values) {}, "", ""},
		{"event type code known", func(v url.Values) { v.Del("EventTypeId"); v.Set("EventTypeCode", "SALE") }, "", ""},
		{"campaign without contract", func(v url.Values) { v.Set("CampaignId", "2000") }, "Contract Error", "CONTRACT_NOT_FOUND"},
		{"unknown event type", func(v url.Values) { v.Set("EventTypeId", "999") }, "Validation", "ACTIONTRACKER_NOT_FOUND"},
		{"restricted promo code", func(v url.Values) { v.Set("OrderPromoCode", "STAFF50") }, "Contract Error", "RESTRICTED_PROMOCODE"},
		{"event date too old", func(v url.Values) { v.Set("EventDate", time.Now().AddDate(0, 0, -31).Format(time.RFC3339)) }, "Contract Error", "OUTSIDE_ASSOCIATION_WINDOW"},
	}
	s := NewTestServer(t, cfg)
	uris := make([]string, len(tests))
	for i, tt := range tests {
		v := valid()
		v.Set("EventDate", time.Now().AddDate(0, 0, -2).Format(time.RFC3339))
		v.Set("OrderId", fmt.Sprint("P-", i))
		tt.change(v)
		r := post(t, s, DefaultAuthToken, v)
		if r.status != 200 || r.body["Status"] != "QUEUED" {
			t.Fatalf("%s: %d %s: processing errors are never answered at once", tt.name, r.status, r.raw)
		}
		uris[i] = r.body["QueuedUri"].(string)
	}
	s.Advance(DefaultCompleteAfter)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, s, uris[i])
			if r.body["Status"] != "Complete" || r.body["ErrorType"] != tt.errType || r.body["ErrorReason"] != tt.errorWhy {
				t.Fatalf("submission %s, want %q %q", r.raw, tt.errType, tt.errorWhy)
			}
			campaign := "1000"
			if tt.errorWhy == "CONTRACT_NOT_FOUND" {
				campaign = "2000"
			}
			list := get(t, s, "/Advertisers/"+DefaultAccountSID+"/Actions?CampaignId="+campaign)
			found := strings.Contains(list.raw, fmt.Sprintf(`"Oid":"P-%d"`, i))
			if found != (tt.errorWhy == "") {
				t.Errorf("action listed: %v, want %v", found, tt.errorWhy == "")
			}
		})
	}
}

func TestProcessingErrorRate(t *testing.T) {
	s := NewTestServer(t, Config{Seed: 1, Processing: Processing{ErrorRate: 0.3}})
	const n = 400
	for i := range n {
		v := valid()
		v.Set("OrderId", fmt.Sprint("R-", i))
		if _, err := s.Submit(v); err != nil {
			t.Fatal(err)
		}
	}
	s.Advance(DefaultCompleteAfter)
	failed, reasons := 0, map[string]int{}
	for i := range n {
		r := get(t, s, fmt.Sprintf("/Advertisers/%s/APISubmissions/SIM%08d", DefaultAccountSID, i+1))
		if why, _ := r.body["ErrorReason"].(string); why != "" {
			failed++
			reasons[why]++
		}
	}
	if failed < n/5 || failed > n*2/5 || len(reasons) != len(randomErrors) {
		t.Fatalf("%d of %d failed (%v), want about 30%% with every reason", failed, n, reasons)
	}
}

func TestDuplicateAfterProcessingError(t *testing.T) {
	// A conversion that failed processing left no action: its OrderId can
	// be sent again (after the campaign got its contract, say).
	s := NewTestServer(t, Config{Duplicates: DuplicateError, Processing: Processing{Campaigns: []string{"1000"}}})
	v := valid()
	v.Set("CampaignId", "2000")
	if r := post(t, s, DefaultAuthToken, v); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	v.Set("CampaignId", "1000")
	if r := post(t, s, DefaultAuthToken, v); r.status != 200 {
		t.Fatalf("the resend of an order without action: %d %s", r.status, r.raw)
	}
	if r := post(t, s, DefaultAuthToken, v); r.status != 400 {
		t.Fatalf("the resend of a tracked order: %d %s", r.status, r.raw)
	}
}

func TestQuotaHeaders(t *testing.T) {
	for _, format := range []ResetFormat{ResetSeconds, ResetUnix} {
		t.Run(string(format), func(t *testing.T) {
			s := NewTestServer(t, Config{Quota: 3, Window: time.Hour, ResetFormat: format})
			for i := range 4 {
				v := valid()
				v.Set("OrderId", strconv.Itoa(i))
				r := post(t, s, DefaultAuthToken, v)
				wantStatus, wantRemaining := 200, strconv.Itoa(2-i)
				if i == 3 {
					wantStatus, wantRemaining = 429, "0"
					if r.header.Get("Retry-After") == "" {
						t.Error("429 without Retry-After")
					}
				}
				if r.status != wantStatus || r.header.Get("X-RateLimit-Remaining") != wantRemaining || r.header.Get("X-RateLimit-Limit") != "3" {
					t.Fatalf("request %d: %d remaining %q, want %d %s", i, r.status, r.header.Get("X-RateLimit-Remaining"), wantStatus, wantRemaining)
				}
				reset, _ := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64)
				resetAt := time.Now().Truncate(time.Hour).Add(time.Hour)
				want := int64(time.Until(resetAt).Seconds())
				if format == ResetUnix {
					want = resetAt.Unix()
				}
				if reset < want-2 || reset > want+2 {
					t.Errorf("reset %d, want about %d", reset, want)
				}
			}
		})
	}
}

func TestCloseWindow(t *testing.T) {
	s := NewTestServer(t, Config{})
	s.CloseWindow(time.Hour)
	v := valid()
	r := post(t, s, DefaultAuthToken, v)
	if r.status != 200 || r.header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("closing answer: %d remaining %q", r.status, r.header.Get("X-RateLimit-Remaining"))
	}
	v.Set("OrderId", "2")
	if r := post(t, s, DefaultAuthToken, v); r.status != 429 {
		t.Fatalf("after the close: %d", r.status)
	}
}

func TestAnswersXMLWithoutAcceptJSON(t *testing.T) {
	s := NewTestServer(t, Config{})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/Advertisers/"+DefaultAccountSID+"/Conversions", strings.NewReader(valid().Encode()))
	req.SetBasicAuth(DefaultAccountSID, DefaultAuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r := do(t, req)
	if r.status != 200 || !strings.Contains(r.raw, "<Status>QUEUED</Status>") {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

func TestJSONBody(t *testing.T) {
	s := NewTestServer(t, Config{})
	body := `{"EventTypeId":12345,"ClickId":"abc","EventDate":"NOW","CampaignId":1000,"OrderId":"J-1","OrderSubTotalPostDiscount":"9.99"}`
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/Advertisers/"+DefaultAccountSID+"/Conversions", strings.NewReader(body))
	req.SetBasicAuth(DefaultAccountSID, DefaultAuthToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if r := do(t, req); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if got := s.Accepted()[0].Values.Get("CampaignId"); got != "1000" {
		t.Fatalf("CampaignId %q", got)
	}
}

func TestRoutes(t *testing.T) {
	s := NewTestServer(t, Config{})
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/Advertisers/" + DefaultAccountSID + "/Conversions", 405},
		{http.MethodPost, "/Advertisers/" + DefaultAccountSID + "/Nope", 404},
		{http.MethodPost, "/Advertisers/OTHER/Conversions", 403},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, s.URL()+tt.path, nil)
			req.SetBasicAuth(DefaultAccountSID, DefaultAuthToken)
			if r := do(t, req); r.status != tt.want {
				t.Fatalf("%d, want %d", r.status, tt.want)
			}
		})
	}
}

func TestScriptedFaults(t *testing.T) {
	s := NewTestServer(t, Config{Duplicates: DuplicateError})
	s.FailNext(503)
	if r := post(t, s, DefaultAuthToken, valid()); r.status != 503 {
		t.Fatalf("scripted 503: %d", r.status)
	}
	s.TooManyNext(1, 1500*time.Millisecond)
	if r := post(t, s, DefaultAuthToken, valid()); r.status != 429 || r.header.Get("Retry-After") != "2" {
		t.Fatalf("scripted 429: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	s.DropNext(1, true)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/Advertisers/"+DefaultAccountSID+"/Conversions", strings.NewReader(valid().Encode()))
	req.SetBasicAuth(DefaultAccountSID, DefaultAuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("dropped connection answered")
	}
	if len(s.Accepted()) != 1 {
		t.Fatalf("the dropped-after conversion was not recorded")
	}
	if r := post(t, s, DefaultAuthToken, valid()); r.status != 400 {
		t.Fatalf("resend after the drop: %d, want the duplicate's 400", r.status)
	}
	c := s.Counts()
	if c[503] != 1 || c[429] != 1 || c[StatusDropped] != 1 || c[200] != 0 || c[400] != 1 {
		t.Fatalf("counts %v", c)
	}
}

func TestDefaultsOverHTTP(t *testing.T) {
	s := NewTestServer(t, Config{})
	v := valid()
	if r := post(t, s, DefaultAuthToken, v); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	// A duplicate is QUEUED by default, refused only in its submission.
	r := post(t, s, DefaultAuthToken, v)
	if r.status != 200 || r.body["Status"] != "QUEUED" {
		t.Fatalf("duplicate: %d %s", r.status, r.raw)
	}
	uri := r.body["QueuedUri"].(string)
	if sub := get(t, s, uri); sub.body["Status"] != "Queued" {
		t.Fatalf("a submission is not processed at once: %s", sub.raw)
	}
	s.Advance(DefaultCompleteAfter)
	if sub := get(t, s, uri); sub.body["ErrorReason"] != "CONV_DUPLICATE" || sub.body["ErrorType"] != "Validation" {
		t.Fatalf("duplicate's submission: %s", sub.raw)
	}
	// An order-level field impact does not have is refused.
	v.Set("OrderId", "O-2")
	v.Set("OrderColour", "red")
	if r := post(t, s, DefaultAuthToken, v); r.status != 400 || !strings.Contains(r.raw, `"field":"OrderColour"`) || !strings.Contains(r.raw, "Unknown field") {
		t.Fatalf("unknown field: %d %s", r.status, r.raw)
	}
}
