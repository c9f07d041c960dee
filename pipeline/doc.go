// Package pipeline is convpipe's hub: the domain types that every stage
// shares (a source row with its object and line, a conversion with its
// items, the outcome of one conversion), the small interfaces between the
// stages (Source, Mapper, Sink, Ledger), and Run, which connects them.
//
// Implementations live around the hub and never import each other:
// sources (where rows come from), mapping (rows to conversions), sinks
// (where conversions go) and ledger (what happened to each one). The
// command in cmd/convpipe wires them together.
package pipeline
