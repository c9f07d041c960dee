// Package mapping turns the lines of an order export into impact.com
// conversions, as configured in YAML: every field of the Conversions API
// from a column, a constant or a template over columns, with chainable
// transforms (trim, lower, upper, default, lookup, replace, number,
// integer, time, hash), row and order filters, and validation against the
// API's rules before anything could be sent.
//
// A Mapping is pure (no I/O, no context) and safe for concurrent use. Its
// errors and messages name the configuration key, or the field, the value
// and the source rows; a plain e-mail address never appears in them.
//
// docs/mapping.md is the reference of the configuration.
package mapping
