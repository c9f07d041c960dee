package pipeline

// Counts are the numbers a run reports, for the whole run or one object.
type Counts struct {
	// Rows is the number of rows read.
	Rows int64 `json:"rows"`
	// RowErrors counts rows that could not be read (malformed).
	RowErrors int64 `json:"row_errors"`
	// SkippedRows counts rows left out by a row filter.
	SkippedRows int64 `json:"skipped_rows"`
	// Orders counts the orders grouped from the rows.
	Orders int64 `json:"orders"`
	// Invalid counts orders that failed convpipe's checks.
	Invalid int64 `json:"invalid"`
	// Skipped counts orders left out by an order filter.
	Skipped int64 `json:"skipped"`
	// OutsideWindow counts orders whose EventDate is outside the run's
	// event window (--events-since, --events-until): not sent, not
	// recorded, not a problem.
	OutsideWindow int64 `json:"outside_window,omitempty"`
	// ToSend counts orders decided for sending: new, failed before, or
	// rejected before and changed since. In a run that was not stopped
	// early, ToSend = Accepted + Rejected + Failed.
	ToSend int64 `json:"to_send"`
	// AlreadySent counts orders the ledger had as final with the same
	// payload, which were not sent again.
	AlreadySent int64 `json:"already_sent"`
	// Accepted, Rejected and Failed count the outcomes of this run's sends.
	Accepted int64 `json:"accepted"`
	Rejected int64 `json:"rejected"`
	Failed   int64 `json:"failed"`
	// Changed counts accepted orders whose payload has changed since.
	Changed int64 `json:"changed"`
	// Reversals counts accepted orders that an order filter marked as a
	// reversal (cancelled, returned, test, fraud) now leaves out: they
	// need a reversal, not a skip.
	Reversals int64 `json:"reversals,omitempty"`
	// Corrected counts the changed and reversed orders whose correction
	// the run made in impact (run --corrections): no longer counted in
	// Changed or Reversals.
	Corrected int64 `json:"corrected,omitempty"`
	// Unsent counts orders read but not sent because the run stopped
	// (deadline, signal, fatal error); the next run sends them.
	Unsent int64 `json:"unsent"`
	// Requests counts HTTP requests made.
	Requests int64 `json:"requests"`
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Rows += o.Rows
	c.RowErrors += o.RowErrors
	c.SkippedRows += o.SkippedRows
	c.Orders += o.Orders
	c.Invalid += o.Invalid
	c.Skipped += o.Skipped
	c.OutsideWindow += o.OutsideWindow
	c.ToSend += o.ToSend
	c.AlreadySent += o.AlreadySent
	c.Accepted += o.Accepted
	c.Rejected += o.Rejected
	c.Failed += o.Failed
	c.Changed += o.Changed
	c.Reversals += o.Reversals
	c.Corrected += o.Corrected
	c.Unsent += o.Unsent
	c.Requests += o.Requests
}

// NeedsAttention reports whether anything in c needs a human: bad rows,
// invalid, rejected, failed, changed or reversed orders. Orders left unsent by a
// run that stopped at its deadline are not among them: the next run sends
// them.
func (c Counts) NeedsAttention() bool {
	return c.RowErrors+c.Invalid+c.Rejected+c.Failed+c.Changed+c.Reversals > 0
}

// ObjectSummary is the part of a summary for one object.
type ObjectSummary struct {
	Key string `json:"key"`
	// Unchanged is true when the object was left out as already processed.
	Unchanged bool `json:"unchanged,omitempty"`
	// Error is the file error that stopped reading the object, if any.
	Error string `json:"error,omitempty"`
	Counts
}

// Summary is what a run did.
type Summary struct {
	RunID string `json:"run_id"`
	// Stopped says why the run stopped early ("deadline", "signal",
	// "max-duration", "fatal: ..."), empty when it finished.
	Stopped string `json:"stopped,omitempty"`
	// DryRun is true when nothing was sent.
	DryRun  bool            `json:"dry_run,omitempty"`
	Total   Counts          `json:"total"`
	Objects []ObjectSummary `json:"objects"`
	// NotRead is what a run that stopped early did not read (the next run
	// reads it); nil when it read every object.
	NotRead *NotRead `json:"not_read,omitempty"`
	// FileErrors counts objects that could not be read.
	FileErrors int64 `json:"file_errors"`
	// Seconds is the run's duration.
	Seconds float64 `json:"seconds"`
	// Reconcile is what the run's reconcile step found; nil when it made
	// none (a dry run, --no-reconcile).
	Reconcile *ReconcileSummary `json:"reconcile,omitempty"`
	// Open is what the ledger holds open after the run, by state: the
	// problems of this run and of earlier ones.
	Open []OpenProblem `json:"open,omitempty"`
}

// NotRead is what a run that stopped early left unread.
type NotRead struct {
	// Objects counts the objects not read to their end.
	Objects int `json:"objects"`
	// Bytes counts their bytes not read.
	Bytes int64 `json:"bytes"`
	// EstimatedOrders estimates the orders to send in what was not read
	// (and in rows read but not yet grouped into orders), from what the
	// run read before it stopped. Orders read and not sent are counted
	// exactly, in Counts.Unsent.
	EstimatedOrders int64 `json:"estimated_orders"`
}
