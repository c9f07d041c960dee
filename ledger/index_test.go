package ledger

import (
	"math/rand/v2"
	"testing"
)

// TestIndexLookup checks the index's directory against a map: every
// stored hash is found with its value, and hashes beside them are not,
// at sizes around the directory's steps, after merges, and with hashes
// that share their leading bits (one long run).
func TestIndexLookup(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		n    int
		mask uint64 // hashes are rng & mask | top
		top  uint64
	}{
		{"empty", 0, ^uint64(0), 0},
		{"one", 1, ^uint64(0), 0},
		{"three", 3, ^uint64(0), 0},
		{"1000", 1000, ^uint64(0), 0},
		{"70000", 70000, ^uint64(0), 0},
		{"same leading bits", 5000, 0xffff, 0xabcd << 48},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix := newIndex()
			want := map[uint64]uint64{}
			for len(want) < tc.n {
				h := rng.Uint64()&tc.mask | tc.top
				want[h] = rng.Uint64()
			}
			for h, v := range want {
				ix.base = append(ix.base, slot{h: h, v: v})
			}
			ix.sort()
			check := func(stage string) {
				t.Helper()
				for h, v := range want {
					if got, ok := ix.lookup(h); !ok || got != v {
						t.Fatalf("%s: lookup(%#x) = %#x, %v; want %#x", stage, h, got, ok, v)
					}
					for _, near := range []uint64{h - 1, h + 1} {
						if _, in := want[near]; in {
							continue
						}
						if got, ok := ix.lookup(near); ok {
							t.Fatalf("%s: lookup(%#x), never stored, = %#x", stage, near, got)
						}
					}
				}
				for range 1000 {
					h := rng.Uint64()
					if _, in := want[h]; !in {
						if _, ok := ix.lookup(h); ok {
							t.Fatalf("%s: lookup(%#x), never stored, found", stage, h)
						}
					}
				}
			}
			check("loaded")
			// Writes after the load: new keys and new values of old ones,
			// enough for merges into base.
			for i := range 1<<16 + 10 {
				h := rng.Uint64()&tc.mask | tc.top
				if i%3 == 0 && len(want) > 0 {
					for k := range want {
						h = k
						break
					}
				}
				v := rng.Uint64()
				want[h] = v
				ix.set(h, v)
			}
			check("after writes")
			ix.mu.Lock()
			ix.merge()
			ix.mu.Unlock()
			check("merged")
		})
	}
}
