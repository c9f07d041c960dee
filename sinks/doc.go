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
// Credentials come from the environment only; they never appear in
// errors, logs, outcomes or configuration dumps.
package sinks
