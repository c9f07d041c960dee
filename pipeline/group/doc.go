// Package group turns the rows of one object into orders: a Grouper takes
// rows in file order and hands out each order's lines together, in one of
// three modes (auto, sorted, scattered; see Mode), within a memory
// budget beyond which rows spill to temporary files (one sequential run
// file, or hash partitions, in a binary record format; see spill.go for the
// folders and RemoveStaleSpills for those left by killed runs).
//
// It knows only the hub's Row, Header and Object: which column is the
// order key is the caller's key function.
package group
