package ledger

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gocarina/gocsv"

	"convpipe/pipeline"
)

// Result is one line of a results file: what happened to one conversion,
// for people. Its csv tags are the file's columns, in order.
type Result struct {
	// Key is "EventType/OrderID".
	Key string `csv:"key"`
	// Order is the OrderId.
	Order string `csv:"order"`
	// Source lists the source rows as "object:line", joined by ";".
	Source string `csv:"source"`
	// State is the entry's state.
	State string `csv:"state"`
	// HTTPStatus is the last answer's status, empty when none came.
	HTTPStatus string `csv:"http_status"`
	// Messages are the entry's messages, then what the last reconcile
	// learned (ReconciledText), joined by "; ".
	Messages string `csv:"messages"`
	// SubmissionID is the API's batch id, when accepted.
	SubmissionID string `csv:"submission_id"`
}

// ResultOf returns the results line of e. It adds nothing to e's own
// texts: messages are redacted before they reach the ledger. Its cells are
// as stored; CSVWriter escapes the ones a spreadsheet would evaluate.
func ResultOf(e pipeline.Entry) Result {
	r := Result{
		Key:          e.Key.String(),
		Order:        e.Key.OrderID,
		State:        string(e.State),
		SubmissionID: e.SubmissionID,
	}
	if e.HTTPStatus != 0 {
		r.HTTPStatus = strconv.Itoa(e.HTTPStatus)
	}
	if len(e.Refs) > 0 {
		src := make([]string, len(e.Refs))
		for i, ref := range e.Refs {
			src[i] = ref.String()
		}
		r.Source = strings.Join(src, ";")
	}
	msgs := make([]string, 0, len(e.Messages)+1)
	for _, m := range e.Messages {
		msgs = append(msgs, FormatMessage(m))
	}
	if e.Reconciled != nil {
		// What impact made of it, after the API's messages.
		msgs = append(msgs, ReconciledText(e.Reconciled))
	}
	r.Messages = strings.Join(msgs, "; ")
	return r
}

// FormatMessage returns a message as one line of text:
// "Field: text (value: V)", leaving out what the message lacks.
func FormatMessage(m pipeline.Message) string {
	var b strings.Builder
	if m.Field != "" {
		b.WriteString(m.Field)
		b.WriteString(": ")
	}
	b.WriteString(m.Text)
	if m.Value != "" {
		b.WriteString(" (value: ")
		b.WriteString(m.Value)
		b.WriteString(")")
	}
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(b.String())
}

// formulaStarts are the first characters that make a spreadsheet evaluate
// a cell (OWASP, "CSV Injection").
const formulaStarts = "=+-@\t\r"

// escapeFormula returns s with a "'" in front when a spreadsheet would
// evaluate it as a formula, and s itself otherwise.
func escapeFormula(s string) string {
	if s != "" && strings.IndexByte(formulaStarts, s[0]) >= 0 {
		return "'" + s
	}
	return s
}

// escaped returns r with each cell passed through escapeFormula.
func (r Result) escaped() Result {
	for _, c := range []*string{&r.Key, &r.Order, &r.Source, &r.State, &r.HTTPStatus, &r.Messages, &r.SubmissionID} {
		*c = escapeFormula(*c)
	}
	return r
}

// resultChunk is how many lines CSVWriter hands gocsv at a time.
const resultChunk = 512

// CSVWriter writes a results file: the header, then one line per entry.
// It streams: gocsv marshals each chunk of lines from a slice in the
// caller's goroutine (its channel form would need a producer goroutine
// that leaks when the writer fails, and writes no header for an empty
// file). A CSVWriter is not safe for concurrent use.
//
// The file is for people, who open it in a spreadsheet, and its cells
// carry texts from the shops' exports (OrderIds, messages, file names):
// a cell that starts with '=', '+', '-', '@', a tab or a carriage return,
// which a spreadsheet would evaluate as a formula, is written with a "'"
// in front (OWASP's rule against CSV injection), so "=1+1" reads back
// from the file as "'=1+1" and "-2" as "'-2". Every other cell is written
// as it is. The JSON lines of WriteJSONL are not escaped: they hold the
// entries exactly as stored.
type CSVWriter struct {
	w      *gocsv.SafeCSVWriter
	buf    []Result
	header bool // written
	err    error
}

// NewCSVWriter returns a CSVWriter on w. Call Flush at the end.
func NewCSVWriter(w io.Writer) *CSVWriter {
	// Not gocsv.DefaultCSVWriter: its separator follows a package-wide
	// setting; this file's is always a comma.
	return &CSVWriter{w: gocsv.NewSafeCSVWriter(csv.NewWriter(w)), buf: make([]Result, 0, resultChunk)}
}

// Write adds the line of e.
func (cw *CSVWriter) Write(e pipeline.Entry) error {
	return cw.WriteResult(ResultOf(e))
}

// WriteResult adds one line, its formula-like cells escaped.
func (cw *CSVWriter) WriteResult(r Result) error {
	if cw.err != nil {
		return cw.err
	}
	cw.buf = append(cw.buf, r.escaped())
	if len(cw.buf) == resultChunk {
		return cw.flushChunk()
	}
	return nil
}

// Flush writes the lines still buffered (and the header, if nothing was
// written yet) to the underlying writer.
func (cw *CSVWriter) Flush() error {
	if cw.err != nil {
		return cw.err
	}
	return cw.flushChunk()
}

func (cw *CSVWriter) flushChunk() error {
	var err error
	if cw.header {
		err = gocsv.MarshalCSVWithoutHeaders(cw.buf, cw.w)
	} else {
		err = gocsv.MarshalCSV(cw.buf, cw.w)
		cw.header = true
	}
	clear(cw.buf)
	cw.buf = cw.buf[:0]
	if err != nil {
		cw.err = fmt.Errorf("write results: %w", err)
	}
	return cw.err
}

// WriteCSV writes the entries of l that f selects as a results file (the
// CSV of `ledger export`), and, when f selects a run, a line per
// correction the run wrote (see CorrectionResult), through a CSVWriter: cells that a spreadsheet
// would evaluate as a formula get a leading "'". WriteJSONL writes the
// same entries unchanged.
func WriteCSV(ctx context.Context, w io.Writer, l pipeline.Ledger, f pipeline.Filter) error {
	cw := NewCSVWriter(w)
	if err := l.Entries(ctx, f, cw.Write); err != nil {
		return err
	}
	if err := writeCorrections(ctx, cw, l, f); err != nil {
		return err
	}
	return cw.Flush()
}

// WriteJSONL writes the entries of l that f selects, one JSON object (a
// pipeline.Entry) per line. Unlike WriteCSV, it escapes nothing: every
// text is exactly as stored in the ledger.
func WriteJSONL(ctx context.Context, w io.Writer, l pipeline.Ledger, f pipeline.Filter) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	err := l.Entries(ctx, f, func(e pipeline.Entry) error {
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("write jsonl: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write jsonl: %w", err)
	}
	return nil
}

// ResultsPath returns where the results file of a run goes: next to the
// ledger, named after it and the run ("ledger.db" and run "R" give
// "ledger.db.results-R.csv"). Characters of the run id that do not belong
// in a file name become "_".
func ResultsPath(ledgerPath, runID string) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, runID)
	return ledgerPath + ".results-" + safe + ".csv"
}

// WriteResultsFile writes the results file of run (the entries it last
// wrote) to path atomically: a temporary file in the same directory,
// synced, then renamed over path. The file is created readable and
// writable by its owner only (0600). Its cells are escaped as CSVWriter
// describes.
func WriteResultsFile(ctx context.Context, l pipeline.Ledger, path, runID string) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("results file %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 64<<10)
	if err := WriteCSV(ctx, bw, l, pipeline.Filter{RunID: runID}); err != nil {
		return fmt.Errorf("results file %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("results file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("results file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("results file %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("results file %s: %w", path, err)
	}
	return nil
}
