//go:build !linux

package ledger

// checkSharedFS would refuse to share a ledger on a network file system;
// outside Linux it cannot tell one (see Locking in the package
// documentation: such a ledger must not be shared).
func checkSharedFS(name, dir string) error { return nil }
