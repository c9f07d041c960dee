package sources

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"convpipe/pipeline"
)

// TestSymlinkLoopOrDanglingInFolder: a dangling symbolic link or a link
// loop in a local folder is listed like any other file and fails at Open
// with a file error that says what is wrong; the listing goes on, and a
// link to a regular file reads as the file.
func TestSymlinkLoopOrDanglingInFolder(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.csv"), []byte("id\n1\n"))
	links := map[string]string{
		"b_link.csv":       "a.csv",                                // to a regular file
		"c_dangling.csv":   filepath.Join(dir, "gone", "c.csv"),    // to nothing
		"d_self.csv":       "d_self.csv",                           // to itself
		"e_loop.csv":       "f_loop.csv",                           // e → f → e
		"f_loop.csv":       "e_loop.csv",                           //
		"sub/g_dangle.csv": "../missing.csv",                       // one level down
		"h_dir.csv":        "sub",                                  // to a folder: not listed, as before
		"_hidden.csv":      filepath.Join(dir, "nowhere", "x.csv"), // hidden: not listed
	}
	for name, target := range links {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"a.csv", "b_link.csv", "c_dangling.csv", "d_self.csv", "e_loop.csv", "f_loop.csv", "sub/g_dangle.csv"}
	wantErr := map[string]string{
		"c_dangling.csv":   "c_dangling.csv: dangling symbolic link: c_dangling.csv → " + filepath.Join(dir, "gone", "c.csv"),
		"d_self.csv":       "d_self.csv: symbolic link loop: d_self.csv → d_self.csv",
		"e_loop.csv":       "e_loop.csv: symbolic link loop: e_loop.csv → f_loop.csv",
		"f_loop.csv":       "f_loop.csv: symbolic link loop: f_loop.csv → e_loop.csv",
		"sub/g_dangle.csv": "sub/g_dangle.csv: dangling symbolic link: g_dangle.csv → ../missing.csv",
	}
	for _, loc := range []string{dir, filepath.Join(dir, "*.csv")} {
		t.Run(filepath.Base(loc), func(t *testing.T) {
			src := newSource(t, Config{Location: loc})
			objs, err := src.Objects(t.Context())
			if err != nil {
				t.Fatalf("Objects = %v", err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, filepath.ToSlash(strings.TrimPrefix(o.Key, dir+string(filepath.Separator))))
			}
			wantHere := want
			if loc != dir { // the glob does not descend into sub/
				wantHere = want[:len(want)-1]
			}
			if !slices.Equal(got, wantHere) {
				t.Fatalf("Objects = %q\nwant %q", got, wantHere)
			}
			for i, o := range objs {
				if wantErr[got[i]] != "" && (o.Size != 0 || o.ETag == "" || o.ModTime.IsZero()) {
					t.Errorf("%s: listed as %+v, want size 0, an ETag and a time", got[i], o)
				}
				checkSymlinkOpen(t, src, o, got[i], dir, wantErr[got[i]])
			}
		})
	}
}

// checkSymlinkOpen opens o and checks that it reads one row, or when
// wantErr is set, that Open fails with dir/wantErr.
func checkSymlinkOpen(t *testing.T, src *Source, o pipeline.Object, rel, dir, wantErr string) {
	t.Helper()
	r, err := src.Open(t.Context(), o)
	if wantErr != "" {
		if err == nil {
			r.Close()
			t.Fatalf("%s: Open succeeded, want %q", rel, wantErr)
		}
		if want := dir + string(filepath.Separator) + wantErr; err.Error() != want {
			t.Fatalf("%s: Open = %q\nwant %q", rel, err, want)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: Open = %v", rel, err)
	}
	res := readAll(t, r)
	if res.fatal != nil || len(res.errs) != 0 || len(res.rows) != 1 || res.rows[0].Values[0] != "1" {
		t.Fatalf("%s: rows %v, errs %v, fatal %v", rel, res.rows, res.errs, res.fatal)
	}
}
