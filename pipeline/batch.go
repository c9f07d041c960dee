package pipeline

import (
	"context"
	"errors"
	"time"
)

// ErrInFile marks an order put into a batch file while it is on a line of
// another that impact has not processed yet.
var ErrInFile = errors.New("the order is in a batch file not processed yet")

// BatchFile is one batch file of conversions in impact's CSV form, ready
// to upload. Its name follows from its content: the same orders in the
// same order make the same file under the same name.
type BatchFile struct {
	// Name is the file's name on the server: never one of impact's
	// reserved receipt_ and result_ names.
	Name string
	// Data is the file's content: a header line, then one line per item
	// (one line for an order without items).
	Data []byte
	// Orders are the file's orders, in file order.
	Orders []BatchOrder
}

// Lines returns the number of data lines (the header not counted).
func (f *BatchFile) Lines() int {
	if len(f.Orders) == 0 {
		return 0
	}
	return f.Orders[len(f.Orders)-1].Last - 1
}

// BatchOrder is one order of a batch file and the lines it is on, as
// file line numbers counted from 1: the header is line 1, the first
// order's first line is line 2.
type BatchOrder struct {
	Key         Key
	First, Last int
}

// BatchSink is the batch way of sending: conversions go into batch files,
// which are uploaded whole. It is safe for concurrent use.
type BatchSink interface {
	// PerFile is how many orders one file takes at most.
	PerFile() int
	// Encode writes convs into one file, in their order (pure). The
	// conversions a file cannot carry are left out, each with an
	// Outcome (invalid, with the reason). It returns a nil file when
	// none can be carried.
	Encode(convs []*Conversion) (*BatchFile, []Outcome)
	// Upload puts f on the server, unless it (or impact's answer to it)
	// is there already: already reports that. After an error the file
	// may be there under a temporary name, which impact does not take,
	// never under its own name half written. An error wrapping ErrFatal
	// means no upload can succeed (a wrong host key, bad credentials).
	// Upload(ctx, nil) only connects and checks the folder.
	Upload(ctx context.Context, f *BatchFile) (already bool, err error)
}

// BatchState is where a batch file stands in the ledger.
type BatchState string

// The states of a batch file.
const (
	// BatchWritten: recorded with its orders (pending) before its upload;
	// not known to be on the server. The next run uploads it (unless it
	// is there) before anything else.
	BatchWritten BatchState = "written"
	// BatchUploaded: on the server under its name; impact's processing
	// (typically within 24 hours) is awaited. Its orders are accepted.
	BatchUploaded BatchState = "uploaded"
	// BatchProcessed: impact processed it line by line; each of its
	// orders has its outcome (accepted, or rejected with the line's
	// reason).
	BatchProcessed BatchState = "processed"
	// BatchRefused: impact refused the file as a whole; its orders are
	// failed, and the next run sends them again.
	BatchRefused BatchState = "refused"
)

// BatchRecord is the ledger's record of one batch file.
type BatchRecord struct {
	Name  string     `json:"name"`
	State BatchState `json:"state"`
	// BatchID is impact's id of the file's submission, once known.
	BatchID string `json:"batch_id,omitempty"`
	// Orders and Lines count the file's orders and data lines.
	Orders int `json:"orders"`
	Lines  int `json:"lines"`
	// TotalRecords and TotalErrors are impact's, once processed.
	TotalRecords int `json:"total_records,omitempty"`
	TotalErrors  int `json:"total_errors,omitempty"`
	// Message is why impact refused the file, or what is awaited.
	Message string `json:"message,omitempty"`
	// Data is the file's content, kept until impact processed it so that
	// a file recorded and not uploaded is uploaded as it was.
	Data    []byte    `json:"-"`
	RunID   string    `json:"run_id"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// BatchLine is the place of one order in a batch file.
type BatchLine struct {
	Key  Key    `json:"key"`
	File string `json:"file"`
	// First and Last are the order's first and last file lines.
	First int `json:"first"`
	Last  int `json:"last"`
}

// BatchLedger is implemented by ledgers that keep batch files. Each write
// is one transaction, durable when it returns.
type BatchLedger interface {
	// RecordBatch records a new file (rec, state BatchWritten), the place
	// of each of its orders and their entries (pending), all or none. It
	// refuses, wrapping ErrInFile, an order that is on a line of a file
	// written or uploaded and not processed yet: an order is in one such
	// file at most.
	RecordBatch(ctx context.Context, rec BatchRecord, lines []BatchLine, es []Entry) error
	// UpdateBatch replaces the file's record (its state, id, totals and
	// message; its data is dropped once processed or refused) and writes
	// the entries, all or none.
	UpdateBatch(ctx context.Context, rec BatchRecord, es []Entry) error
	// BatchFiles calls fn for each file in one of states (every file when
	// none are given), oldest first, with its data.
	BatchFiles(ctx context.Context, fn func(BatchRecord) error, states ...BatchState) error
	// BatchLines returns the orders of one file, in file order.
	BatchLines(ctx context.Context, file string) ([]BatchLine, error)
}

// BatchStatus is what impact says of one batch file.
type BatchStatus struct {
	File    string `json:"file"`
	BatchID string `json:"batch_id,omitempty"`
	// Found is false while impact has not taken the file.
	Found bool `json:"found"`
	// Status is Queued, In Progress, Complete, or another word for a
	// file refused as a whole.
	Status       string `json:"status,omitempty"`
	TotalRecords int    `json:"total_records"`
	TotalErrors  int    `json:"total_errors"`
	// Message is impact's reason for refusing the whole file.
	Message string `json:"message,omitempty"`
}

// BatchLineError is one line of a file that impact did not process.
type BatchLineError struct {
	Line    int    `json:"line"`
	OrderID string `json:"order_id,omitempty"`
	Status  string `json:"status,omitempty"`
	Reason  string `json:"reason"`
}

// BatchStatusReader learns what impact made of uploaded batch files; each
// call is paced and retried like a send. It is safe for concurrent use.
type BatchStatusReader interface {
	// BatchStatuses returns the status of each file named, by name (a
	// file impact has not taken is there with Found false), in as few
	// requests as it can.
	BatchStatuses(ctx context.Context, files []string) (map[string]BatchStatus, error)
	// BatchErrors returns the lines in error of a processed file.
	BatchErrors(ctx context.Context, batchID string) ([]BatchLineError, error)
}
