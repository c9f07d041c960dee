package group

// hashSet is a set of 64-bit hashes with open addressing; its memory is
// 8 bytes per slot.
type hashSet struct {
	slots []uint64
	n     int
}

// insert adds h and reports whether it was new. Zero is stored as one,
// which at worst makes two keys look alike.
func (s *hashSet) insert(h uint64) bool {
	if h == 0 {
		h = 1
	}
	if 4*(s.n+1) > 3*len(s.slots) {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			s.slots[i] = h
			s.n++
			return true
		case h:
			return false
		}
	}
}

func (s *hashSet) grow() {
	old := s.slots
	s.slots = make([]uint64, max(64, 2*len(old)))
	s.n = 0
	for _, h := range old {
		if h != 0 {
			s.insert(h)
		}
	}
}

func (s *hashSet) bytes() int64 { return int64(8 * len(s.slots)) }
