// Package engine runs a convpipe job. Run (run.go) wires the stages, one
// file each:
//
//   - read.go: list the source's objects, skip those the ledger has as
//     processed, read and group their rows into orders (pipeline/group);
//   - prepare.go: map, encode and hash the orders on every core, handing
//     them on in source order;
//   - decide.go: the pure decision (decide): an order, what the ledger and
//     the run know of its key, and the run's policy in; a verdict (action,
//     entry to write, counts) out; settle does the same for a send's
//     outcome;
//   - apply.go: the thin applier (order): look up, decide, report, count,
//     write and queue;
//   - record.go: send, writing the order pending just before its request
//     leaves (pipeline.Announcer), record the outcome, release an object
//     once everything in it is answered;
//   - progress.go: progress snapshots and the estimate of what is left.
//
// A run's Mode (Check, DryRun, Send) is chosen once, in newRunner: it
// picks the ledger writer (none unless Send), what takes an order decided
// for sending (a count in a check, the send queue otherwise) and whether
// the send stage runs; the stages receive these values and test no flags.
//
// It depends only on the hub's interfaces; the commands in cmd/ build the
// concrete source, mapper, sink and ledger and pass them in Options.
package engine
