// Package sim is a simulator of impact.com's Advertiser Conversions API for
// tests and trial runs: an HTTP server on loopback that checks credentials,
// the minimum fields and their formats, deduplicates OrderIds per event
// type, answers QUEUED with submission ids, keeps a quota with the
// rate-limit headers, and serves the submission records. Faults can be
// injected at random (latency, 5xx, dropped connections, slow bodies, 429
// bursts) or scripted one request at a time, and changed while it runs.
//
// It keeps what it accepted and every request it saw, so that a test can
// assert exactly what arrived and when. Its checks are the API's rules in
// convpipe/pipeline/rules, written from the API's documentation: the table
// the mapping checks every order by, so that what `convpipe validate`
// passes, the simulator accepts (convpipe's own stricter rules, marked
// Policy there, it leaves out). Its answers' wording is the API's.
package sim
