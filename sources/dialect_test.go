package sources

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"convpipe/pipeline"
)

// utf16 encodes s as UTF-16 (little-endian unless be), with a byte order
// mark when bom is set.
func utf16(s string, be, bom bool) []byte {
	var out []byte
	put := func(u uint16) {
		if be {
			out = append(out, byte(u>>8), byte(u))
		} else {
			out = append(out, byte(u), byte(u>>8))
		}
	}
	if bom {
		put(0xFEFF)
	}
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			put(uint16(0xD800 + r>>10))
			put(uint16(0xDC00 + r&0x3FF))
			continue
		}
		put(uint16(r))
	}
	return out
}

// TestCSVDialects reads files of other encodings and delimiters: each
// case's transcript, with the file's path as "F".
func TestCSVDialects(t *testing.T) {
	tests := []struct {
		name  string
		csv   CSVConfig
		input []byte
		want  string
	}{
		{
			name:  "windows-1252",
			csv:   CSVConfig{Encoding: "windows-1252", Delimiter: ";"},
			input: []byte("Kunde;Betrag;Notiz\r\nM\xfcller;1.234,50 \x80;\x84Gru\xdf\x93\r\n"),
			want:  "header: [\"Kunde\",\"Betrag\",\"Notiz\"]\n2 [\"Müller\",\"1.234,50 €\",\"„Gruß“\"]\nEOF\n",
		},
		{
			name:  "cp1252 alias",
			csv:   CSVConfig{Encoding: "cp1252"},
			input: []byte("a,b\n\xe9,\x99\n"),
			want:  "header: [\"a\",\"b\"]\n2 [\"é\",\"™\"]\nEOF\n",
		},
		{
			name:  "latin-1 keeps C1 bytes as code points",
			csv:   CSVConfig{Encoding: "latin-1"},
			input: []byte("a,b\n\xe9,\x80\n"),
			want:  "header: [\"a\",\"b\"]\n2 [\"é\",\"\u0080\"]\nEOF\n",
		},
		{
			name:  "utf-8 named",
			csv:   CSVConfig{Encoding: "UTF-8"},
			input: []byte("a,b\nü,2\n"),
			want:  "header: [\"a\",\"b\"]\n2 [\"ü\",\"2\"]\nEOF\n",
		},
		{
			name:  "UTF-16LE with BOM, no setting",
			input: utf16("a,b\r\nü,€\r\n", false, true),
			want:  "header: [\"a\",\"b\"]\n2 [\"ü\",\"€\"]\nEOF\n",
		},
		{
			name:  "UTF-16BE with BOM, set",
			csv:   CSVConfig{Encoding: "utf-16"},
			input: utf16("a;b\n😀;x\n", true, true),
			want:  "header: [\"a\",\"b\"]\n2 [\"😀\",\"x\"]\nEOF\n",
		},
		{
			name:  "UTF-16LE without BOM, set",
			csv:   CSVConfig{Encoding: "utf-16"},
			input: utf16("a,b\nü,2\n", false, false),
			want:  "header: [\"a\",\"b\"]\n2 [\"ü\",\"2\"]\nEOF\n",
		},
		{
			name:  "UTF-16 without BOM, not set",
			input: utf16("a,b\nü,2\n", false, false),
			want:  "file error: F: NUL bytes at every other offset: is it UTF-16 without a byte order mark? set source.csv.encoding: utf-16\n",
		},
		{
			name:  "UTF-8 BOM wins over the setting",
			csv:   CSVConfig{Encoding: "windows-1252"},
			input: []byte("\xEF\xBB\xBFa,b\nü,2\n"),
			want:  "header: [\"a\",\"b\"]\n2 [\"ü\",\"2\"]\nEOF\n",
		},
		{
			name:  "not UTF-8 in the header names the likely encoding",
			input: []byte("Kunde;Stra\xdfe\r\nA;B\r\n"),
			want:  "file error: F:1: header: column 2: not UTF-8 at byte 4: is it windows-1252? set source.csv.encoding\n",
		},
		{
			name:  "not UTF-8 in a value names the likely encoding",
			input: []byte("a,b\n1,caf\xe9\n2,ok\n"),
			want: "header: [\"a\",\"b\"]\n2 error: F:2: b: not UTF-8 at byte 3 of the value: is it windows-1252? set source.csv.encoding\n" +
				"3 [\"2\",\"ok\"]\nEOF\n",
		},
		{
			name:  "not UTF-8 and not windows-1252 either",
			input: []byte("a,b\n1,x\x81\x8d\n"),
			want:  "header: [\"a\",\"b\"]\n2 error: F:2: b: not UTF-8 at byte 1 of the value: set source.csv.encoding\nEOF\n",
		},
		{
			name:  "auto: semicolon",
			input: []byte("Bestellnummer;Betrag;Notiz\n1;1,5;a, b\n"),
			want:  "header: [\"Bestellnummer\",\"Betrag\",\"Notiz\"]\n2 [\"1\",\"1,5\",\"a, b\"]\nEOF\n",
		},
		{
			name:  "auto: tab",
			input: []byte("a\tb,c\td\n1\t2\t3\n"),
			want:  "header: [\"a\",\"b,c\",\"d\"]\n2 [\"1\",\"2\",\"3\"]\nEOF\n",
		},
		{
			name:  "auto: pipe",
			input: []byte("a|b|c\n1|2|3\n"),
			want:  "header: [\"a\",\"b\",\"c\"]\n2 [\"1\",\"2\",\"3\"]\nEOF\n",
		},
		{
			name:  "auto: a delimiter inside quotes does not count",
			input: []byte("\"a;x\",\"b;y\",c\n1,2,3\n"),
			want:  "header: [\"a;x\",\"b;y\",\"c\"]\n2 [\"1\",\"2\",\"3\"]\nEOF\n",
		},
		{
			name:  "auto named",
			csv:   CSVConfig{Delimiter: "auto"},
			input: []byte("a;b\n1;2\n"),
			want:  "header: [\"a\",\"b\"]\n2 [\"1\",\"2\"]\nEOF\n",
		},
		{
			name:  "auto: one column",
			input: []byte("order_id\nA1\n"),
			want:  "header: [\"order_id\"]\n2 [\"A1\"]\nEOF\n",
		},
		{
			name:  "set delimiter, one column holding another",
			csv:   CSVConfig{Delimiter: ","},
			input: []byte("Bestellnummer;Bestelldatum;Kunde;Betrag;Waehrung\n1;2;3;4;5\n"),
			want:  "file error: F:1: header: the header has 1 column \"Bestellnummer;Bestelldatum;…\": is the delimiter ';'? (source.csv.delimiter is ','; auto detects it)\n",
		},
		{
			name:  "gzip, then windows-1252",
			csv:   CSVConfig{Encoding: "windows-1252"},
			input: gzipBytes(t, []byte("Stra\xdfe;Preis\r\nHauptstra\xdfe 1;5,00 \x80\r\n")),
			want:  "header: [\"Straße\",\"Preis\"]\n2 [\"Hauptstraße 1\",\"5,00 €\"]\nEOF\n",
		},
		{
			name:  "limits count the decoded bytes",
			csv:   CSVConfig{Encoding: "latin-1", MaxRecordBytes: 16},
			input: []byte("a,b\n\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9,x\nok,y\n"),
			want: "header: [\"a\",\"b\"]\n2 error: F:2: record of more than 16 bytes (source.csv.max_record_bytes)\n" +
				"3 [\"ok\",\"y\"]\nEOF\n",
		},
		{
			name:  "auto after decoding",
			csv:   CSVConfig{Encoding: "utf-16"},
			input: utf16("a\tb\nx\ty\n", false, true),
			want:  "header: [\"a\",\"b\"]\n2 [\"x\",\"y\"]\nEOF\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "in.csv")
			writeFile(t, p, tc.input)
			src := newSource(t, Config{Location: p, CSV: tc.csv})
			objs, err := src.Objects(t.Context())
			if err != nil || len(objs) != 1 {
				t.Fatalf("Objects = %v, %v", objs, err)
			}
			r, err := src.Open(t.Context(), objs[0])
			got := strings.ReplaceAll(transcript(r, err), p, "F")
			if got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestMixedDelimiters reads a folder of a comma file and a semicolon file
// with the default delimiter: each file is read with its own.
func TestMixedDelimiters(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.csv"), []byte("id,amount\n1,2.50\n"))
	writeFile(t, filepath.Join(dir, "b.csv"), []byte("id;amount\n2;3,50\n"))
	src := newSource(t, Config{Location: dir})
	objs, err := src.Objects(t.Context())
	if err != nil || len(objs) != 2 {
		t.Fatalf("Objects = %v, %v", objs, err)
	}
	var got []string
	for _, o := range objs {
		r, err := src.Open(t.Context(), o)
		got = append(got, strings.ReplaceAll(transcript(r, err), dir+"/", ""))
	}
	want := []string{
		"header: [\"id\",\"amount\"]\n2 [\"1\",\"2.50\"]\nEOF\n",
		"header: [\"id\",\"amount\"]\n2 [\"2\",\"3,50\"]\nEOF\n",
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("file %d: got\n%s\nwant\n%s", i, got[i], want[i])
		}
	}
}

func TestEncodingConfig(t *testing.T) {
	for _, tc := range []struct {
		enc, err string
	}{
		{"", ""}, {"utf-8", ""}, {"utf8", ""}, {"Windows-1252", ""}, {"cp1252", ""},
		{"latin-1", ""}, {"latin1", ""}, {"iso-8859-1", ""}, {"utf-16", ""}, {"UTF-16LE", ""}, {"utf-16be", ""},
		{"ebcdic", `source.csv.encoding: "ebcdic": must be utf-8, windows-1252, latin-1 or utf-16`},
	} {
		err := Config{Location: "x", CSV: CSVConfig{Encoding: tc.enc}}.Validate()
		if g := errString(err); g != tc.err {
			t.Errorf("encoding %q: error %q, want %q", tc.enc, g, tc.err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// FuzzCSVDialect reads arbitrary bytes in each encoding, with the
// delimiter detected: it must not panic, and what it returns is UTF-8,
// each row as wide as the header, each error naming the file.
func FuzzCSVDialect(f *testing.F) {
	f.Add([]byte("Kunde;Stra\xdfe\r\nM\xfcller;\x80\r\n"), byte(1))
	f.Add(utf16("a\tb\nü\tx\n", false, true), byte(0))
	f.Add(utf16("a|b\n1|2\n", true, false), byte(3))
	f.Add([]byte("\"a;b\",c\n1,2\n"), byte(0))
	encodings := []string{"", "windows-1252", "latin-1", "utf-16", "utf-16le", "utf-16be"}
	f.Fuzz(func(t *testing.T, data []byte, enc byte) {
		set, err := Config{Location: "fuzz.csv", CSV: CSVConfig{Encoding: encodings[int(enc)%len(encodings)], MaxFieldBytes: 1 << 10}}.compile()
		if err != nil {
			t.Fatal(err)
		}
		obj := &pipeline.Object{Key: "fuzz.csv", Size: int64(len(data))}
		r, err := newCSVReader(obj, io.NopCloser(bytes.NewReader(data)), set)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.csv") {
				t.Fatalf("open error does not name the file: %v", err)
			}
			return
		}
		defer r.Close()
		for _, n := range r.Header().Names() {
			if !utf8.ValidString(n) {
				t.Fatalf("header name %q is not UTF-8", n)
			}
		}
		for range len(data) + 2 {
			row, err := r.Next()
			var re *pipeline.RowError
			switch {
			case errors.Is(err, io.EOF):
				return
			case errors.As(err, &re):
				if re.Object != "fuzz.csv" {
					t.Fatalf("row error %v does not name the file", re)
				}
			case err != nil:
				if !strings.HasPrefix(err.Error(), "fuzz.csv: ") {
					t.Fatalf("file error does not name the file: %v", err)
				}
				return
			default:
				if len(row.Values) != r.Header().Len() {
					t.Fatalf("row of %d values for %d columns", len(row.Values), r.Header().Len())
				}
				for _, v := range row.Values {
					if !utf8.ValidString(v) {
						t.Fatalf("value %q is not UTF-8", v)
					}
				}
			}
		}
		t.Fatal("reader does not end")
	})
}
