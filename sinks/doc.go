// Package sinks delivers conversions: Impact sends them to impact.com's
// Conversions API; DryRun writes what would be sent; Discard counts.
//
// Impact is built in layers around a single HTTP call. Each attempt first
// waits on the pacer (the server's quota window as its rate-limit headers
// report it, then a golang.org/x/time/rate token bucket at the configured
// rate), then makes one request, and one function, classify, decides what
// the answer means: the conversion's state, whether to retry, and how long
// to wait. Retries back off exponentially with jitter
// (github.com/cenkalti/backoff/v4), bounded in attempts and in time per
// conversion. Workers (concurrency) are configured apart from the rate, so
// that slow answers do not lower it.
//
// Impact also reads what impact made of accepted conversions (the
// pipeline.OutcomeReader of reconcile): ListActions and Actions list
// actions page by page over event-date windows of at most 45 days, and
// LookupSubmission reads one submission record. Each read is one GET per
// attempt through the same request slots and the same pacer as sending,
// so reads and sends share the account's quota; classifyRead gives each
// answer its meaning on top of classify's verdict.
//
// Credentials come from the environment only; they never appear in
// errors, logs, outcomes or configuration dumps.
package sinks
