package mapping

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"runtime/debug"
	"sync"
	"time"

	"convpipe/pipeline"
)

// fingerprintVersion names the way Map turns lines into a conversion and
// Fingerprint digests them. Change it with any change to Map that gives
// the same lines a different conversion, so that no ledger vouches for a
// payload this code would no longer build. The binary's own build
// (its module version and VCS revision, when it has them) is in every
// digest as well: a new binary maps every order once more.
const fingerprintVersion = "convpipe mapping fingerprint 1"

var _ pipeline.Fingerprinter = (*Mapping)(nil)

// fingerprintDigest is the digest of the mapping's configuration that
// starts every fingerprint; nil when the configuration cannot be encoded
// (Fingerprint then returns "").
func fingerprintDigest(cfg Config) []byte {
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil
	}
	h := sha256.New()
	h.Write([]byte(fingerprintVersion))
	h.Write([]byte{0})
	if bi, ok := debug.ReadBuildInfo(); ok {
		h.Write([]byte(bi.Main.Path + "@" + bi.Main.Version))
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
				h.Write([]byte("\x00" + s.Key + "=" + s.Value))
			}
		}
	}
	h.Write([]byte{0})
	h.Write(js)
	return h.Sum(nil)
}

// fpBufs holds the buffers Fingerprint digests lines in.
var fpBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Fingerprint returns a digest of what Map reads of the lines (every
// cell of the mapping's columns, in order, and which columns each line
// lacks) and of the mapping itself: the configuration, with
// max_event_age and --allow-old, and the code that maps (see
// fingerprintVersion). It is 32 hex digits (128 bits of SHA-256). key is
// the key the first line's values give (Map's, unless row filters leave
// that line out). The fingerprint is "" when the mapping's conversions
// depend on the time of the run (allow_now), so that no rerun takes them
// for sent without mapping them.
func (m *Mapping) Fingerprint(lines []pipeline.Row) (pipeline.Key, string) {
	if len(lines) == 0 || m.digest == nil || m.allowNow {
		return pipeline.Key{}, ""
	}
	bp := fpBufs.Get().(*[]byte)
	b := append((*bp)[:0], m.digest...)
	b = binary.AppendUvarint(b, uint64(len(lines)))
	var key pipeline.Key
	for j := range lines {
		r := &lines[j]
		idx := m.resolve(r.Header).idx
		if j == 0 {
			key = m.lineKey(r, idx)
		}
		for s := range idx {
			if idx[s] < 0 {
				b = append(b, 0) // the header lacks the column
				continue
			}
			v := cell(r, idx, s)
			b = append(b, 1)
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
	}
	sum := sha256.Sum256(b)
	if cap(b) <= 64<<10 { // a huge order's buffer is not kept
		*bp = b
		fpBufs.Put(bp)
	}
	return key, hex.EncodeToString(sum[:16])
}

// OldestEvent is the oldest accepted EventDate for which a ledger may
// vouch that Map still takes the order (max_event_age ago, and a day
// more, so that no order near the limit is taken for sent without Map
// judging its age), or zero when the mapping accepts any age.
func (m *Mapping) OldestEvent() time.Time {
	if m.maxAge <= 0 {
		return time.Time{}
	}
	return m.now().Add(-m.maxAge + 24*time.Hour)
}
