package sim

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"convpipe/pipeline"
	"convpipe/pipeline/rules"
)

// The statuses of a batch file's submission. Queued, In Progress and
// Complete are those of APISubmissions; Failed, for a file impact
// rejects as a whole, is the simulator's reading (unsure: impact does
// not document the word).
const (
	BatchQueued     = "Queued"
	BatchInProgress = "In Progress"
	BatchComplete   = "Complete"
	BatchFailed     = "Failed"
)

// LineError is one line of a batch file that impact did not process, as
// /FTPFileSubmissions/{BatchId}/ErrorDetails lists it.
type LineError struct {
	Line    int    `json:"Line"`
	OrderID string `json:"OrderId"`
	Status  string `json:"Status"`
	Reason  string `json:"Reason"`
}

// ftpBatch is one batch file impact took from the drop folder.
type ftpBatch struct {
	id, file            string
	created, completeAt time.Time
	// records counts the file's data lines; failed is why the file was
	// rejected as a whole ("" when it was processed line by line).
	records int
	failed  string
	errors  []LineError
}

// batches holds the batch files taken, by BatchId, in the order taken.
type batches struct {
	mu     sync.Mutex
	byID   map[string]*ftpBatch
	order  []*ftpBatch
	byFile map[string]*ftpBatch
}

// ServeDrop makes the server take every file delivered to d as impact
// takes batch files: each is parsed and its lines validated by the same
// rules as a POST (and refused when dated more than 88 days back, 398
// with MediaId); its orders become submissions and actions; a result_
// file is written beside it and FTPFileSubmissions reports it. Names
// starting receipt_ or result_ are impact's own and are not taken.
func (s *Server) ServeDrop(d *Drop) {
	d.onDeliver(func(name, path string) { s.takeFile(name, path) })
}

// batchState returns the server's batch records, made on first use.
func (s *Server) batchState() *batches {
	s.batchOnce.Do(func() {
		s.batch = &batches{byID: map[string]*ftpBatch{}, byFile: map[string]*ftpBatch{}}
	})
	return s.batch
}

// takeFile processes one delivered file.
func (s *Server) takeFile(name, path string) {
	if strings.HasPrefix(name, "result_") || strings.HasPrefix(name, "receipt_") {
		return
	}
	bs := s.batchState()
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if _, ok := bs.byFile[name]; ok {
		// impact takes a name once: a second file under it is ignored.
		return
	}
	now := s.Now()
	b := &ftpBatch{id: fmt.Sprintf("FTP%08d", len(bs.order)+1), file: name, created: now, completeAt: now.Add(s.cfg.CompleteAfter)}
	data, err := os.ReadFile(path)
	refuse := s.takeRefusal()
	switch {
	case refuse != "":
		b.failed = refuse
	case err != nil:
		b.failed = "the file cannot be read: " + err.Error()
	default:
		b.records, b.errors, b.failed = s.processBatch(data, now)
	}
	bs.byID[b.id], bs.byFile[name] = b, b
	bs.order = append(bs.order, b)
	_ = os.WriteFile(filepath.Join(filepath.Dir(path), "result_"+name), resultFile(b), 0o644)
}

// RefuseNextFile makes the server refuse the next batch file it takes as
// a whole, with reason, as impact does with a file it cannot read.
func (s *Server) RefuseNextFile(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseNext = reason
}

func (s *Server) takeRefusal() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.refuseNext
	s.refuseNext = ""
	return r
}

// Batches returns how many batch files the server took.
func (s *Server) Batches() int {
	bs := s.batchState()
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return len(bs.order)
}

// resultFile is the result_ file of b: one line per data line
// (Line,OrderId,Status,Reason), the errors with their reason; a file
// rejected as a whole has one line, line 0, with the reason.
func resultFile(b *ftpBatch) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"Line", "OrderId", "Status", "Reason"})
	if b.failed != "" {
		_ = w.Write([]string{"0", "", "ERROR", b.failed})
	}
	for _, e := range b.errors {
		_ = w.Write([]string{strconv.Itoa(e.Line), e.OrderID, e.Status, e.Reason})
	}
	w.Flush()
	return buf.Bytes()
}

// batchOrder is the lines of one order of a batch file.
type batchOrder struct {
	key   string
	first int
	lines [][]string
	nums  []int
}

// processBatch parses a batch file and processes its orders; it returns
// the number of data lines, the lines in error, and why the whole file
// is refused ("" when it is not).
func (s *Server) processBatch(data []byte, now time.Time) (int, []LineError, string) {
	r := csv.NewReader(bytes.NewReader(data))
	recs, err := r.ReadAll()
	if err != nil {
		return 0, nil, "not a CSV file: " + err.Error()
	}
	if len(recs) < 2 {
		return 0, nil, "no data lines under the header"
	}
	header := recs[0]
	if msg := checkBatchHeader(header); msg != "" {
		return len(recs) - 1, nil, msg
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	orders, errs := groupBatch(recs[1:], col)
	for _, o := range orders {
		errs = append(errs, s.processBatchOrder(o, header, col, now)...)
	}
	slices.SortFunc(errs, func(a, b LineError) int { return a.Line - b.Line })
	return len(recs) - 1, errs, ""
}

// checkBatchHeader says what is wrong with a header: a fixed column
// missing, a column named twice or one that is no field of the API.
func checkBatchHeader(header []string) string {
	seen := map[string]bool{}
	for _, h := range header {
		if seen[h] {
			return fmt.Sprintf("the header names column %s twice", h)
		}
		seen[h] = true
	}
	for _, c := range rules.BatchColumns {
		if !seen[c] {
			return fmt.Sprintf("the header lacks column %s (a batch file starts with %s)", c, strings.Join(rules.BatchColumns, ","))
		}
	}
	for _, h := range header {
		if slices.Contains(rules.BatchColumns, h) {
			continue
		}
		if _, ok := rules.Item(h); ok {
			continue
		}
		if _, ok := rules.Order(h); !ok {
			return fmt.Sprintf("column %s is no field of the API", h)
		}
	}
	return ""
}

// groupBatch groups data lines by order (ActionTrackerId and OrderId);
// the lines of an order that are not consecutive are errors, and the
// order is not processed.
func groupBatch(recs [][]string, col map[string]int) ([]*batchOrder, []LineError) {
	var orders []*batchOrder
	byKey := map[string]*batchOrder{}
	apart := map[string]bool{}
	var last string
	for i, rec := range recs {
		line := i + 2
		key := rec[col["ActionTrackerId"]] + "\x00" + rec[col["OrderId"]]
		o, ok := byKey[key]
		switch {
		case !ok:
			o = &batchOrder{key: key, first: line}
			byKey[key] = o
			orders = append(orders, o)
		case key != last:
			apart[key] = true
		}
		o.lines, o.nums = append(o.lines, rec), append(o.nums, line)
		last = key
	}
	var errs []LineError
	kept := orders[:0]
	for _, o := range orders {
		if !apart[o.key] {
			kept = append(kept, o)
			continue
		}
		errs = append(errs, orderErrors(o, fmt.Sprintf("the lines of this order are not consecutive (lines %s): impact needs an order's lines together", joinInts(o.nums)))...)
	}
	return kept, errs
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// orderErrors is reason on every line of o.
func orderErrors(o *batchOrder, reason string) []LineError {
	out := make([]LineError, len(o.nums))
	oid := ""
	if len(o.lines) > 0 {
		oid = o.key[strings.IndexByte(o.key, 0)+1:]
	}
	for i, n := range o.nums {
		out[i] = LineError{Line: n, OrderID: oid, Status: "ERROR", Reason: reason}
	}
	return out
}

// processBatchOrder turns one order's lines into a conversion, checks it
// as a POST would be and queues it; it returns its lines' errors.
func (s *Server) processBatchOrder(o *batchOrder, header []string, col map[string]int, now time.Time) []LineError {
	v, msg := batchValues(o, header, col)
	if msg != "" {
		return orderErrors(o, msg)
	}
	if errs := validate(v); len(errs) > 0 {
		parts := make([]string, len(errs))
		for i, e := range errs {
			parts[i] = e.Field + ": " + e.Message
		}
		return orderErrors(o, strings.Join(parts, "; "))
	}
	if t, r := rules.ParseDate(v.Get("EventDate")); r == rules.None && rules.BatchTooOld(t, now, v.Get("MediaId") != "") {
		limit := "88"
		if v.Get("MediaId") != "" {
			limit = "398"
		}
		return orderErrors(o, fmt.Sprintf("EVENT_DATE_TOO_OLD: EventDate %s is more than %s days ago: a batch file line is not processed", v.Get("EventDate"), limit))
	}
	s.mu.Lock()
	sub, dup := s.store(v, "", nil)
	s.mu.Unlock()
	switch {
	case sub == nil || dup:
		return orderErrors(o, "CONV_DUPLICATE: the OrderId was taken before for this event type")
	case sub.errorReason != "":
		return orderErrors(o, sub.errorReason+": "+sub.errorType)
	}
	return nil
}

// batchValues are the API's fields of one order of a batch file: the
// order-level columns, the same on each of its lines, and one item per
// line when the lines carry a Sku. Amount is the line's ItemSubTotal on
// an item line and OrderSubTotalPostDiscount on the one line of an order
// without items.
func batchValues(o *batchOrder, header []string, col map[string]int) (url.Values, string) {
	v := url.Values{}
	items := o.lines[0][col["Sku"]] != ""
	if !items && len(o.lines) > 1 {
		return nil, fmt.Sprintf("the order has %d lines without a Sku: an order without items has one line", len(o.lines))
	}
	for i, rec := range o.lines {
		if (rec[col["Sku"]] != "") != items {
			return nil, fmt.Sprintf("line %d: Sku is set on some lines of the order and not on others", o.nums[i])
		}
		for j, h := range header {
			val := rec[j]
			name, item := batchField(h, items)
			if item {
				if val != "" {
					v.Set(pipeline.ItemFieldName(name, i+1), val)
				}
				continue
			}
			if i == 0 {
				if val != "" {
					v.Set(name, val)
				}
			} else if val != o.lines[0][j] {
				return nil, fmt.Sprintf("line %d: %s differs from the order's first line (line %d): an order's values are the same on each of its lines", o.nums[i], h, o.first)
			}
		}
	}
	return v, ""
}

// batchField is the API's field a batch column stands for, and whether
// it is an item's.
func batchField(col string, items bool) (string, bool) {
	switch col {
	case "Amount":
		if items {
			return "ItemSubTotal", true
		}
		return "OrderSubTotalPostDiscount", false
	case "ActionTrackerId":
		return "ActionTrackerId", false
	}
	if f, ok := rules.BatchColumnField[col]; ok {
		return f, true
	}
	if _, ok := rules.Item(col); ok {
		return col, true
	}
	return col, false
}

// errNoBatch is a BatchId the server does not know.
var errNoBatch = errors.New("no such batch")

// batchRecord is the FTPFileSubmissions record of b at now.
func (s *Server) batchRecord(b *ftpBatch, now time.Time) map[string]any {
	status := BatchQueued
	switch age := now.Sub(b.created); {
	case age >= s.cfg.CompleteAfter && b.failed != "":
		status = BatchFailed
	case age >= s.cfg.CompleteAfter:
		status = BatchComplete
	case age >= s.cfg.CompleteAfter/2:
		status = BatchInProgress
	}
	rec := map[string]any{
		"BatchId": b.id, "FileName": b.file, "Status": status,
		"SubmissionDate": b.created.UTC().Format(time.RFC3339), "CompletionDate": "",
		"TotalRecords": "", "TotalErrors": "", "ErrorMessage": "",
	}
	if status == BatchComplete || status == BatchFailed {
		rec["CompletionDate"] = b.completeAt.UTC().Format(time.RFC3339)
		rec["TotalRecords"] = strconv.Itoa(b.records)
		errs := len(b.errors)
		if b.failed != "" {
			errs = b.records
		}
		rec["TotalErrors"] = strconv.Itoa(errs)
		rec["ErrorMessage"] = b.failed
	}
	return rec
}
