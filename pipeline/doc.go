// Package pipeline is convpipe's hub: the shared language of every stage.
// It holds the domain types (a source row with its object and line, a
// conversion with its items and key, a ledger entry and its states, the
// outcome of one send, the summary of a run, what impact made of a
// conversion: its action or its submission record) and the small
// interfaces between the stages (Source, Mapper, Sink, Ledger, Pacer,
// Settler, OutcomeReader).
//
// The hub imports nothing of the project. Implementations live around it
// and never import each other: sources (where rows come from), mapping
// (rows to conversions), sinks (where conversions go) and ledger (what
// happened to each one). The engine rooms are sub-packages:
// pipeline/group groups the rows of an object into orders, and
// pipeline/engine runs the stages (read, group, prepare, decide, record),
// and pipeline/reconcile plans and decides how accepted conversions are
// reconciled with what impact made of them; only the commands in cmd/
// import the engine and wire it to the rest.
package pipeline
