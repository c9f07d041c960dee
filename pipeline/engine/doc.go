// Package engine runs a convpipe job: Run reads the source's objects,
// groups their rows into orders (pipeline/group), maps them on every core
// in order (prepare), decides for each order what to do given its ledger
// entry (DecideSend), stages pending entries, sends through the sink and
// records every outcome in the ledger, and reports progress.
//
// It depends only on the hub's interfaces; the commands in cmd/ build the
// concrete source, mapper, sink and ledger and pass them in Options.
package engine
