package group

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// Mode says how the lines of an order are laid out in an object.
type Mode string

// The grouping modes.
const (
	// Auto, the default, accepts any layout and never hands out an
	// order before the whole object is read: every order has all of its
	// lines. Contiguous input beyond the memory budget spills to one
	// sequential temporary file that is streamed back; scattered input
	// spills to hash partitions.
	Auto Mode = "auto"
	// Sorted trusts the object to keep the lines of an order next to
	// each other and streams: an order is handed out as soon as the key
	// changes, and memory holds one order. A key that shows up again later
	// is handed out again, as a separate order.
	Sorted Mode = "sorted"
	// Scattered expects the lines of an order anywhere in the object:
	// rows are held in memory up to the budget, then spilled to hash
	// partitions.
	Scattered Mode = "scattered"
)

// DefaultMemoryBudget is the memory budget of grouping when none is
// configured.
const DefaultMemoryBudget ByteSize = 64 << 20

// MinMemoryBudget is the smallest memory budget accepted. A smaller one
// is most likely a size written without its unit.
const MinMemoryBudget ByteSize = 1 << 10

// Config configures how the rows of an object are grouped into
// orders.
type Config struct {
	// Mode is auto (the default), sorted or scattered; see Mode.
	Mode Mode `yaml:"mode"`
	// MemoryBudget bounds the estimated bytes of rows held in memory
	// before they are spilled to temporary files; DefaultMemoryBudget when
	// zero. In YAML a byte count or a size with a unit ("64MiB").
	MemoryBudget ByteSize `yaml:"memory_budget"`
	// TempDir is where temporary files are created; os.TempDir() when
	// empty.
	TempDir string `yaml:"temp_dir"`
	// FillDown says that the object lists the lines of each order
	// together, its first line first, and that a line whose order key is
	// empty belongs to the order above it (Shopify writes the order's Id
	// on its first line only). Without it, every line with an empty key
	// is an order of its own, which the mapping refuses: never a silent
	// split, never one order lumping the lines of several. Not with mode
	// scattered.
	FillDown bool `yaml:"fill_down"`
}

// WithDefaults returns c with every unset field set to its default: mode
// auto, DefaultMemoryBudget, os.TempDir().
func (c Config) WithDefaults() Config {
	if c.Mode == "" {
		c.Mode = Auto
	}
	c.MemoryBudget = c.Budget()
	if c.TempDir == "" {
		c.TempDir = os.TempDir()
	}
	return c
}

// Validate reports the first invalid field, named as in YAML under
// "group", and checks that TempDir is a directory. A run calls it once,
// when its configuration is loaded; New checks only the fields.
func (c Config) Validate() error {
	if err := c.checkFields(); err != nil {
		return err
	}
	if c.TempDir != "" {
		fi, err := os.Stat(c.TempDir)
		if err != nil {
			return fmt.Errorf("group.temp_dir: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("group.temp_dir: %s is not a directory", c.TempDir)
		}
	}
	return nil
}

// checkFields reports the first invalid field; it does no I/O.
func (c Config) checkFields() error {
	switch c.Mode {
	case "", Auto, Sorted, Scattered:
	default:
		return fmt.Errorf("group.mode: %q is not one of auto, sorted, scattered", string(c.Mode))
	}
	if c.FillDown && c.Mode == Scattered {
		return fmt.Errorf("group.fill_down: needs the lines of each order together, in file order; mode scattered says they are anywhere (use auto or sorted)")
	}
	if c.MemoryBudget < 0 {
		return fmt.Errorf("group.memory_budget: must not be negative")
	}
	if c.MemoryBudget != 0 && c.MemoryBudget < MinMemoryBudget {
		return fmt.Errorf("group.memory_budget: %s is below the minimum of %s; give a unit, e.g. 64MiB", c.MemoryBudget, MinMemoryBudget)
	}
	return nil
}

// Budget returns the memory budget in force: MemoryBudget, or
// DefaultMemoryBudget when it is not set.
func (c Config) Budget() ByteSize {
	if c.MemoryBudget <= 0 {
		return DefaultMemoryBudget
	}
	return c.MemoryBudget
}

// ByteSize is a number of bytes. As text (YAML, flags) it is a plain
// integer or a number with a unit: B; KiB, MiB, GiB, TiB (powers of 1024,
// also written Ki or K, Mi or M, Gi or G, Ti or T); KB, MB, GB, TB (powers
// of 1000). Units are case-insensitive and may follow a space: "64MiB",
// "1.5 GiB", "512k".
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   float64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"ki", 1 << 10}, {"mi", 1 << 20}, {"gi", 1 << 30}, {"ti", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// ParseByteSize parses a size such as "65536", "64MiB" or "1.5 GB".
func ParseByteSize(s string) (ByteSize, error) {
	num := strings.ToLower(strings.TrimSpace(s))
	mult := 1.0
	for _, u := range byteUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("invalid size %q: want a byte count or a number with a unit such as 64MiB", s)
	}
	v = math.Round(v * mult)
	if v < 0 {
		return 0, fmt.Errorf("invalid size %q: must not be negative", s)
	}
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return ByteSize(v), nil
}

// String returns the size with the largest binary unit that divides it
// ("64MiB"), or in bytes ("1000B").
func (b ByteSize) String() string {
	for _, u := range []struct {
		name string
		size ByteSize
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// MarshalText returns the size as String does.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText parses the size as ParseByteSize does.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}
