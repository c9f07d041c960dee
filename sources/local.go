package sources

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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

func localObject(p string, fi fs.FileInfo) pipeline.Object {
	return pipeline.Object{Key: p, ETag: localETag(fi), Size: fi.Size(), ModTime: fi.ModTime().UTC()}
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
		fi, err := os.Stat(m)
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
		fi, err := os.Stat(p) // follows symbolic links
		if err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
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
		return nil, nil, err
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
