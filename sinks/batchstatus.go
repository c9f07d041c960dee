package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"convpipe/pipeline"
)

var _ pipeline.BatchStatusReader = (*Impact)(nil)

// ftpRecord is one record of GET /FTPFileSubmissions.
type ftpRecord struct {
	BatchID      flex `json:"BatchId"`
	ID           flex `json:"Id"`
	FileName     flex `json:"FileName"`
	Status       flex `json:"Status"`
	TotalRecords flex `json:"TotalRecords"`
	TotalErrors  flex `json:"TotalErrors"`
	ErrorMessage flex `json:"ErrorMessage"`
}

func (r ftpRecord) status() pipeline.BatchStatus {
	return pipeline.BatchStatus{
		File: scrub(string(r.FileName)), BatchID: cmpOr(string(r.BatchID), string(r.ID)), Found: true,
		Status: scrub(string(r.Status)), TotalRecords: r.TotalRecords.int(), TotalErrors: r.TotalErrors.int(),
		Message: scrub(string(r.ErrorMessage)),
	}
}

// BatchStatus returns the status of the batch file named file (see
// BatchStatuses).
func (s *Impact) BatchStatus(ctx context.Context, file string) (pipeline.BatchStatus, error) {
	m, err := s.BatchStatuses(ctx, []string{file})
	return m[file], err
}

// BatchStatuses returns the status of each batch file named: the list of
// FTPFileSubmissions, page by page (asked for the FileName when there is
// one file), matched by name; a file's own record
// (/FTPFileSubmissions/{BatchId}) is read only when the list does not say
// its Status. A file impact has not taken is Found false.
func (s *Impact) BatchStatuses(ctx context.Context, files []string) (map[string]pipeline.BatchStatus, error) {
	out := make(map[string]pipeline.BatchStatus, len(files))
	for _, f := range files {
		out[f] = pipeline.BatchStatus{File: f}
	}
	what := fmt.Sprintf("status of %d batch files", len(files))
	if len(files) == 1 {
		what = "batch file " + scrub(files[0])
	}
	for page, pages := 1, 1; page <= pages && len(files) > 0; page++ {
		v := url.Values{"Page": {strconv.Itoa(page)}}
		if len(files) == 1 {
			v.Set("FileName", files[0])
		}
		body, _, err := s.read(ctx, what, "/Advertisers/"+s.sid+"/FTPFileSubmissions?"+v.Encode())
		if err != nil {
			return out, err
		}
		var env struct {
			Pages flex        `json:"@numpages"`
			List  []ftpRecord `json:"FTPFileSubmissions"`
		}
		if err := json.Unmarshal(body, &env); err != nil || (env.List == nil && !strings.Contains(string(body), `"FTPFileSubmissions"`)) {
			return out, fmt.Errorf("impact: %s: the answer is not a list of FTPFileSubmissions", what)
		}
		pages = max(env.Pages.int(), 1)
		for _, r := range env.List {
			name := string(r.FileName)
			if st, ok := out[name]; !ok || st.Found {
				continue
			}
			st, err := s.batchRecord(ctx, "batch file "+scrub(name), r)
			if err != nil {
				return out, err
			}
			out[name] = st
		}
	}
	return out, nil
}

// batchRecord reads the record of the submission r lists.
func (s *Impact) batchRecord(ctx context.Context, what string, r ftpRecord) (pipeline.BatchStatus, error) {
	st := r.status()
	if !batchIDRe.MatchString(st.BatchID) {
		return st, fmt.Errorf("impact: %s: the list gives no usable BatchId (%q)", what, st.BatchID)
	}
	if st.Status != "" {
		return st, nil
	}
	body, notFound, err := s.read(ctx, what, "/Advertisers/"+s.sid+"/FTPFileSubmissions/"+url.PathEscape(st.BatchID))
	if err != nil || notFound {
		return st, err
	}
	var rec ftpRecord
	if err := json.Unmarshal(body, &rec); err != nil || rec.Status == "" {
		return st, fmt.Errorf("impact: %s: the answer is not an FTPFileSubmissions record", what)
	}
	if rec.FileName == "" {
		rec.FileName = r.FileName
	}
	if rec.BatchID == "" && rec.ID == "" {
		rec.BatchID = flex(st.BatchID)
	}
	return rec.status(), nil
}

// BatchErrors returns the lines in error of a processed batch file, every
// page of /FTPFileSubmissions/{BatchId}/ErrorDetails.
func (s *Impact) BatchErrors(ctx context.Context, batchID string) ([]pipeline.BatchLineError, error) {
	what := "error details of batch " + scrub(batchID)
	if !batchIDRe.MatchString(batchID) {
		return nil, fmt.Errorf("impact: %s: not a batch id", what)
	}
	var out []pipeline.BatchLineError
	for page, pages := 1, 1; page <= pages; page++ {
		body, notFound, err := s.read(ctx, what, "/Advertisers/"+s.sid+"/FTPFileSubmissions/"+url.PathEscape(batchID)+"/ErrorDetails?Page="+strconv.Itoa(page))
		if err != nil {
			return nil, err
		}
		if notFound {
			return nil, fmt.Errorf("impact: %s: not found (impact keeps records 90 days)", what)
		}
		var env struct {
			Pages   flex `json:"@numpages"`
			Details []struct {
				Line    flex `json:"Line"`
				OrderID flex `json:"OrderId"`
				Status  flex `json:"Status"`
				Reason  flex `json:"Reason"`
			} `json:"ErrorDetails"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			return nil, fmt.Errorf("impact: %s: the answer is not a list of error details: %v", what, err)
		}
		if env.Details == nil && !strings.Contains(string(body), `"ErrorDetails"`) {
			return nil, errors.New("impact: " + what + ": the answer is not a list of error details: no ErrorDetails")
		}
		pages = max(env.Pages.int(), 1)
		for i, d := range env.Details {
			n := d.Line.int()
			if n < 1 {
				return nil, fmt.Errorf("impact: %s: detail %d has no line number (%q)", what, i+1, scrub(string(d.Line)))
			}
			out = append(out, pipeline.BatchLineError{Line: n, OrderID: scrub(string(d.OrderID)), Status: scrub(string(d.Status)), Reason: scrub(string(d.Reason))})
		}
	}
	return out, nil
}
