//go:build linux

package ledger

import (
	"fmt"
	"syscall"
)

// checkSharedFS refuses to share a SQLite ledger in the directory dir of
// a network file system: its runs could be on several machines, whose
// WAL shared memory is not one, and whose locks the file system may not
// carry; two of them would corrupt the ledger. A file system it cannot
// tell passes: SQLite's own checks follow.
func checkSharedFS(name, dir string) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil
	}
	if fs := networkFS(int64(st.Type)); fs != "" {
		return fmt.Errorf("ledger %s: shared (ledger.shared), but %s is on a network file system (%s): a SQLite ledger is shared by the runs of one machine, on its own disk; share a PostgreSQL ledger (ledger.url) between machines", name, dir, fs)
	}
	return nil
}

// networkFS names the network file system whose statfs magic number is
// magic, "" for any other.
func networkFS(magic int64) string {
	switch uint32(magic) {
	case 0x6969:
		return "nfs"
	case 0xFF534D42:
		return "cifs"
	case 0xFE534D42:
		return "smb2"
	case 0x517B:
		return "smb"
	case 0x564c:
		return "ncp"
	case 0x5346414F, 0x6B414653:
		return "afs"
	case 0x00C36400:
		return "ceph"
	case 0x0BD00BD0:
		return "lustre"
	case 0x47504653:
		return "gpfs"
	case 0x73757245:
		return "coda"
	case 0x19830326:
		return "beegfs"
	}
	return ""
}
