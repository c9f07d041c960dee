//go:build !linux

package ledger

// fileLock would be a Ledger's lock on its ledger file itself. Outside
// Linux there is none: BSD and macOS flock locks and SQLite's fcntl locks
// exclude each other, and OFD byte-range locks are Linux's. The lock is
// then the lock file's alone.
type fileLock struct{}

func lockLedgerFile(string, *flock) (*fileLock, error) { return nil, nil }

func useLedgerFile(string) *fileLock { return nil }

func (*fileLock) release() error { return nil }
