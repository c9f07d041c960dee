//go:build linux

package ledger

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sync"
	"syscall"
)

// fOFDSetlk is F_OFD_SETLK (Linux 3.15), which package syscall lacks: a
// lock owned by the open file description, like flock's, on a byte range,
// like fcntl's.
const fOFDSetlk = 37

// lockOffset is where the ledger file's own lock lies: far past the bytes
// SQLite locks (at 1 GiB) and past any size a database reaches, so that
// it never meets SQLite's locks, on a network file system either (where
// flock would be a lock on the whole file).
const lockOffset = 1 << 62

// fileID is a file's identity: its device and inode.
type fileID struct{ dev, ino uint64 }

// fileUse is what this process does with one ledger file.
type fileUse struct {
	holder  *flock     // the Open that holds the file's lock, nil when none
	sharers []*flock   // the Opens that hold it shared (Options.Shared)
	users   int        // Ledgers of this process with connections on it
	idle    []*os.File // descriptors to close once users is 0
}

// inTheWay returns an Open of this process whose lock of the file keeps
// an Open that wants it shared (or not) out, nil when there is none.
func (u *fileUse) inTheWay(shared bool) *flock {
	switch {
	case u.holder != nil:
		return u.holder
	case !shared && len(u.sharers) > 0:
		return u.sharers[len(u.sharers)-1]
	}
	return nil
}

// files are the ledger files this process uses. Closing any descriptor
// of a file drops every POSIX lock that the process holds on it, SQLite's
// included: so a descriptor of a ledger file that SQLite connections of
// this process may use is not closed, but kept idle until the last of
// them is closed; and an Open of a file already held here fails without
// a lock attempt.
var files = struct {
	sync.Mutex
	m map[fileID]*fileUse
}{m: make(map[fileID]*fileUse)}

// fileLock is a Ledger's use of its ledger file: for an Open, with the
// descriptor that holds the file's lock.
type fileLock struct {
	id fileID
	f  *os.File // nil for a reader's use
	lk *flock   // the Open's lock file, nil for a reader's use
}

// lockLedgerFile takes a lock on the ledger file abs itself, beside lk's
// on the lock file and like it exclusive or shared (a read lock, which
// other shared Opens share), so that deleting the lock file lets no
// second Open in: it fails with a *LockedError (whose Holder is known
// when the holder is in this process). It returns a nil *fileLock, and
// no lock, for a file this process may not write (nor then change: the
// probe write refuses it) and on a kernel without OFD locks.
func lockLedgerFile(abs string, lk *flock) (*fileLock, error) {
	f, err := os.OpenFile(abs, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrPermission) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	id := idOf(fi)
	files.Lock()
	defer files.Unlock()
	u := useOf(id)
	if h := u.inTheWay(lk.shared); h != nil {
		u.idle = append(u.idle, f)
		return nil, &LockedError{Holder: h.current()}
	}
	typ := int16(syscall.F_WRLCK)
	if lk.shared {
		typ = syscall.F_RDLCK
	}
	if err := setLock(f, typ); err != nil {
		u.idle = append(u.idle, f)
		cerr := sweep(id)
		switch {
		case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES):
			return nil, &LockedError{}
		case errors.Is(err, syscall.EINVAL):
			return nil, cerr
		}
		return nil, errors.Join(fmt.Errorf("lock %s: %w", abs, err), cerr)
	}
	if lk.shared {
		u.sharers = append(u.sharers, lk)
	} else {
		u.holder = lk
	}
	u.users++
	return &fileLock{id: id, f: f, lk: lk}, nil
}

// useLedgerFile records a reader's use of the ledger file abs, so that no
// Open of this process closes a descriptor of it while the reader's
// connections are open. It returns nil for a file it cannot stat (which
// SQLite then cannot open either).
func useLedgerFile(abs string) *fileLock {
	fi, err := os.Stat(abs)
	if err != nil {
		return nil
	}
	id := idOf(fi)
	files.Lock()
	defer files.Unlock()
	useOf(id).users++
	return &fileLock{id: id}
}

func idOf(fi os.FileInfo) fileID {
	st := fi.Sys().(*syscall.Stat_t)
	return fileID{uint64(st.Dev), uint64(st.Ino)}
}

// useOf returns the use of a file, new if there was none. files must be
// locked.
func useOf(id fileID) *fileUse {
	u := files.m[id]
	if u == nil {
		u = &fileUse{}
		files.m[id] = u
	}
	return u
}

// release ends the use, and drops the lock of an Open, once the Ledger's
// connections are closed.
func (fl *fileLock) release() error {
	if fl == nil {
		return nil
	}
	files.Lock()
	defer files.Unlock()
	u := files.m[fl.id]
	var err error
	if fl.f != nil {
		err = setLock(fl.f, syscall.F_UNLCK)
		if fl.lk.shared {
			u.sharers = slices.DeleteFunc(u.sharers, func(lk *flock) bool { return lk == fl.lk })
		} else {
			u.holder = nil
		}
		u.idle = append(u.idle, fl.f)
		fl.f = nil
	}
	u.users--
	return errors.Join(err, sweep(fl.id))
}

// sweep closes the idle descriptors of a file no connection of this
// process uses any more, and forgets the file. files must be locked.
func sweep(id fileID) error {
	u := files.m[id]
	if u.users > 0 || u.holder != nil || len(u.sharers) > 0 {
		return nil
	}
	var errs []error
	for _, f := range u.idle {
		errs = append(errs, f.Close())
	}
	delete(files.m, id)
	return errors.Join(errs...)
}

func setLock(f *os.File, typ int16) error {
	lk := syscall.Flock_t{Type: typ, Whence: io.SeekStart, Start: lockOffset, Len: 1}
	for {
		err := syscall.FcntlFlock(f.Fd(), fOFDSetlk, &lk)
		if err != syscall.EINTR {
			return err
		}
	}
}
