package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"convpipe/pipeline"
)

// localStore reads a local file, folder or glob.
type localStore struct {
	set *settings
}

// localETag is the ETag of a local file: its size and modification time
// (nanoseconds since the epoch) in hexadecimal, "<size>-<mtime>". It
// changes whenever a write changes either; a rewrite that keeps both (the
// same size within the file system's timestamp resolution) goes unseen.
func localETag(fi fs.FileInfo) string {
	return strconv.FormatInt(fi.Size(), 16) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 16)
}

// localObject is the listed file p. fi is the file's information, or for
// a symbolic link that leads to no file, the link's own: its object has
// no bytes (Size 0), and opening it fails.
func localObject(p string, fi fs.FileInfo) pipeline.Object {
	size := fi.Size()
	if fi.Mode()&fs.ModeSymlink != 0 {
		size = 0
	}
	return pipeline.Object{Key: p, ETag: localETag(fi), Size: size, ModTime: fi.ModTime().UTC()}
}

func (l *localStore) list(ctx context.Context) ([]pipeline.Object, error) {
	p := l.set.localPath
	var objs []pipeline.Object
	if !strings.ContainsAny(p, `*?[\`) {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		if fi.IsDir() {
			return l.walk(ctx, p, objs)
		}
		return append(objs, localObject(p, fi)), nil
	}
	matches, err := filepath.Glob(p)
	if err != nil {
		return nil, fmt.Errorf("source: glob %s: %w", p, err)
	}
	for _, m := range matches {
		if !selectedByGlob(filepath.ToSlash(p), filepath.ToSlash(m)) {
			continue
		}
		fi, err := statEntry(m)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		if fi.IsDir() {
			if objs, err = l.walk(ctx, m, objs); err != nil {
				return nil, err
			}
			continue
		}
		objs = append(objs, localObject(m, fi))
	}
	return objs, nil
}

// statEntry returns what a listed name leads to: for a symbolic link, its
// target's information, or when the target cannot be found (a dangling
// link, a loop), the link's own (a ModeSymlink entry). Such a name is
// listed, and its Open fails with an error that says what is wrong
// (openError), while the other files are read.
func statEntry(p string) (fs.FileInfo, error) {
	fi, err := os.Stat(p) // follows symbolic links
	if err == nil {
		return fi, nil
	}
	if li, lerr := os.Lstat(p); lerr == nil && li.Mode()&fs.ModeSymlink != 0 {
		return li, nil
	}
	return nil, err
}

// walk adds the export files under root.
func (l *localStore) walk(ctx context.Context, root string, objs []pipeline.Object) ([]pipeline.Object, error) {
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && hidden(name) {
				return filepath.SkipDir
			}
			return nil
		}
		if rel, err := filepath.Rel(root, p); err != nil || !l.set.selectedInFolder(filepath.ToSlash(rel)) {
			return nil
		}
		fi, err := statEntry(p)
		if err != nil {
			return err
		}
		if fi.Mode().IsRegular() || fi.Mode()&fs.ModeSymlink != 0 {
			objs = append(objs, localObject(p, fi))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("source: list %s: %w", root, err)
	}
	return objs, nil
}

func (l *localStore) openFile(obj pipeline.Object) (*os.File, fs.FileInfo, error) {
	f, err := os.Open(obj.Key)
	if err != nil {
		return nil, nil, openError(obj.Key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: not a regular file", obj.Key)
	}
	if obj.ETag != "" && localETag(fi) != obj.ETag {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w (etag %s, listed as %s)", obj.Key, ErrChanged, localETag(fi), obj.ETag)
	}
	return f, fi, nil
}

func (l *localStore) open(_ context.Context, obj pipeline.Object) (io.ReadCloser, error) {
	f, _, err := l.openFile(obj)
	return f, err
}

func (l *localStore) openAt(_ context.Context, obj pipeline.Object) (readerAtCloser, int64, error) {
	f, fi, err := l.openFile(obj)
	if err != nil {
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// openError explains why key could not be opened when key is a symbolic
// link that leads nowhere (dangling) or back to itself (a loop); other
// errors are returned as they are.
func openError(key string, err error) error {
	target, lerr := os.Readlink(key)
	if lerr != nil {
		return err
	}
	link := filepath.Base(key)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: dangling symbolic link: %s → %s", key, link, target)
	case errors.Is(err, syscall.ELOOP):
		return fmt.Errorf("%s: symbolic link loop: %s → %s", key, link, target)
	}
	return err
}
