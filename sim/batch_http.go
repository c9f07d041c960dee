package sim

import (
	"net/http"
	"strings"
)

// ftpSubmissions handles GET /Advertisers/{SID}/FTPFileSubmissions (the
// list, newest last, optionally of one FileName),
// /FTPFileSubmissions/{BatchId} (one record: Status, TotalRecords and
// TotalErrors once processed) and /FTPFileSubmissions/{BatchId}/ErrorDetails
// (the lines in error, once processed).
func (s *Server) ftpSubmissions(ex *exchange, _ plan) {
	parts := strings.Split(strings.Trim(ex.r.URL.Path, "/"), "/")
	now := s.Now()
	bs := s.batchState()
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if len(parts) == 3 {
		name := ex.r.URL.Query().Get("FileName")
		list := []map[string]any{}
		for _, b := range bs.order {
			if name == "" || b.file == name {
				list = append(list, s.batchRecord(b, now))
			}
		}
		s.writeJSON(ex, http.StatusOK, map[string]any{
			"@page": "1", "@numpages": "1", "@total": len(list), "FTPFileSubmissions": list,
		})
		return
	}
	b, ok := bs.byID[parts[3]]
	if !ok || now.Sub(b.created) > s.cfg.KeepSubmissions {
		s.fail(ex, http.StatusNotFound, "Submission not found: "+errNoBatch.Error(), nil)
		return
	}
	rec := s.batchRecord(b, now)
	if len(parts) == 4 {
		s.writeJSON(ex, http.StatusOK, rec)
		return
	}
	if len(parts) != 5 || parts[4] != "ErrorDetails" {
		s.fail(ex, http.StatusNotFound, "Not found", nil)
		return
	}
	details := []LineError{}
	if rec["Status"] == BatchComplete {
		details = append(details, b.errors...)
	}
	s.writeJSON(ex, http.StatusOK, map[string]any{
		"@page": "1", "@numpages": "1", "@total": len(details), "BatchId": b.id, "Status": rec["Status"], "ErrorDetails": details,
	})
}
