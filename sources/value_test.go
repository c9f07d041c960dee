package sources

import (
	"encoding/binary"
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

func TestRender(t *testing.T) {
	tests := []struct {
		name  string
		typ   valueType
		v     any
		want  string
		isErr bool // a value error (row error)
		wrong bool // errWrongType (file error)
	}{
		{"null", valueType{kind: kindInt64}, nil, "", false, false},
		{"int64 min", valueType{kind: kindInt64}, int64(math.MinInt64), "-9223372036854775808", false, false},
		{"uint64 max", valueType{kind: kindUint64}, int64(-1), "18446744073709551615", false, false},
		{"float32 g", valueType{kind: kindFloat}, float32(1e7), "1e+07", false, false},
		{"float64 NaN", valueType{kind: kindDouble}, math.NaN(), "NaN", false, false},
		{"decimal min int64", valueType{kind: kindDecimal, scale: 2}, int64(math.MinInt64), "-92233720368547758.08", false, false},
		{"decimal scale above digits", valueType{kind: kindDecimal, scale: 5}, int32(-42), "-0.00042", false, false},
		{"decimal zero scale", valueType{kind: kindDecimal}, int64(-7), "-7", false, false},
		{"decimal bytes 16", valueType{kind: kindDecimal, scale: 2}, string(be(16, big.NewInt(-123456789))), "-1234567.89", false, false},
		{"decimal bytes 16 scale 0", valueType{kind: kindDecimal}, string(be(16, big.NewInt(42))), "42", false, false},
		{"decimal bytes empty", valueType{kind: kindDecimal}, "", "", true, false},
		{"date before epoch", valueType{kind: kindDate}, int32(-719162), "0001-01-01", false, false},
		{"date beyond 9999", valueType{kind: kindDate}, int32(math.MaxInt32), "", true, false},
		{"timestamp ms far", valueType{kind: kindTimestampMillis}, int64(math.MaxInt64), "", true, false},
		{"timestamp us", valueType{kind: kindTimestampMicros}, int64(1_700_000_000_000_001), "2023-11-14T22:13:20.000001Z", false, false},
		{"wall time us", valueType{kind: kindTimestampMicros, wall: true}, int64(1_700_000_000_000_001), "2023-11-14T22:13:20.000001", false, false},
		{"wall time ms", valueType{kind: kindTimestampMillis, wall: true}, int64(1_700_000_000_000), "2023-11-14T22:13:20", false, false},
		{"wall time ns", valueType{kind: kindTimestampNanos, wall: true}, int64(-1), "1969-12-31T23:59:59.999999999", false, false},
		{"time of day out of range", valueType{kind: kindTimeMillis}, int32(86_400_000), "", true, false},
		{"time of day negative", valueType{kind: kindTimeNanos}, int64(-1), "", true, false},
		{"int96 bad nanos", valueType{kind: kindInt96}, deprecated.Int96{0xffffffff, 0xffffffff, 0xffffffff}, "", true, false},
		{"string invalid UTF-8", valueType{kind: kindString}, "a\xffb", "", true, false},
		{"bytes invalid UTF-8 as hex", valueType{kind: kindBytes}, "\x00\xff", "00ff", false, false},
		{"bytes text", valueType{kind: kindBytes}, "abc", "abc", false, false},
		{"wrong type", valueType{kind: kindString}, int64(3), "", false, true},
		{"dictionary index left", valueType{kind: kindBool}, int64(0), "", false, true},
		{"uuid wrong length", valueType{kind: kindUUID}, "abc", "", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.typ.render(pv(tc.v))
			switch {
			case tc.wrong:
				if !errors.Is(err, errWrongType) {
					t.Fatalf("render = %q, %v; want errWrongType", got, err)
				}
			case tc.isErr:
				if err == nil || errors.Is(err, errWrongType) {
					t.Fatalf("render = %q, %v; want a value error", got, err)
				}
			case err != nil || got != tc.want:
				t.Fatalf("render = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// be encodes n as a big-endian two's complement integer of size bytes.
func be(size int, n *big.Int) []byte {
	v := new(big.Int).Set(n)
	if v.Sign() < 0 {
		v.Add(v, new(big.Int).Lsh(big.NewInt(1), uint(8*size)))
	}
	return v.FillBytes(make([]byte, size))
}

// pv is the parquet.Value of v (nil: a null; a string: a byte array).
func pv(v any) parquet.Value {
	switch x := v.(type) {
	case nil:
		return parquet.Value{}
	case string:
		return parquet.ByteArrayValue([]byte(x))
	}
	return parquet.ValueOf(v)
}

// el is a schema element of physical type t, with a logical type lt (nil
// for none) and a converted type ct (-1 for none).
func el(t format.Type, lt format.LogicalTypeValue, ct deprecated.ConvertedType) *format.SchemaElement {
	e := &format.SchemaElement{Type: thrift.New(t), LogicalType: format.LogicalType{Value: lt}}
	if ct >= 0 {
		e.ConvertedType = thrift.New(ct)
	}
	return e
}

// unit is the time unit ms, us or ns.
func unit(u string) format.TimeUnit {
	switch u {
	case "ms":
		return format.TimeUnit{Value: &format.MilliSeconds{}}
	case "us":
		return format.TimeUnit{Value: &format.MicroSeconds{}}
	case "ns":
		return format.TimeUnit{Value: &format.NanoSeconds{}}
	}
	return format.TimeUnit{}
}

func TestResolveType(t *testing.T) {
	negScale := el(format.Int32, nil, deprecated.Decimal)
	negScale.Scale = thrift.New(int32(-1))
	uuid8 := el(format.FixedLenByteArray, &format.UUIDType{}, -1)
	uuid8.TypeLength = thrift.New(int32(8))
	tests := []struct {
		name string
		se   *format.SchemaElement
		want valueKind
		err  string
	}{
		{"enum", el(format.ByteArray, nil, deprecated.Enum), kindString, ""},
		{"logical string", el(format.ByteArray, &format.StringType{}, -1), kindString, ""},
		{"bson", el(format.ByteArray, nil, deprecated.Bson), kindBytes, ""},
		{"logical decimal", el(format.Int64, &format.DecimalType{Scale: 3}, -1), kindDecimal, ""},
		{"decimal on float", el(format.Double, nil, deprecated.Decimal), 0, "decimal stored as DOUBLE"},
		{"negative scale", negScale, 0, "scale -1"},
		{"logical date", el(format.Int32, &format.DateType{}, -1), kindDate, ""},
		{"logical unsigned 16", el(format.Int32, &format.IntType{BitWidth: 16}, -1), kindUint32, ""},
		{"legacy unsigned 32", el(format.Int32, nil, deprecated.Uint32), kindUint32, ""},
		{"logical signed 64", el(format.Int64, &format.IntType{BitWidth: 64, IsSigned: true}, -1), kindInt64, ""},
		{"timestamp ms", el(format.Int64, &format.TimestampType{Unit: unit("ms")}, -1), kindTimestampMillis, ""},
		{"legacy timestamp micros", el(format.Int64, nil, deprecated.TimestampMicros), kindTimestampMicros, ""},
		{"logical beats legacy", el(format.Int64, &format.TimestampType{Unit: unit("ns")}, deprecated.TimestampMicros), kindTimestampNanos, ""},
		{"timestamp no unit", el(format.Int64, &format.TimestampType{}, -1), 0, "unit"},
		{"time ns", el(format.Int64, &format.TimeType{Unit: unit("ns")}, -1), kindTimeNanos, ""},
		{"legacy time millis", el(format.Int32, nil, deprecated.TimeMillis), kindTimeMillis, ""},
		{"time us on int32", el(format.Int32, &format.TimeType{Unit: unit("us")}, -1), 0, "INT32"},
		{"timestamp on int32", el(format.Int32, &format.TimestampType{Unit: unit("ms")}, -1), 0, "INT32"},
		{"uuid bad length", uuid8, 0, "UUID of 8"},
		{"interval as bytes", el(format.FixedLenByteArray, nil, deprecated.Interval), kindBytes, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolveType(tc.se)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("resolveType = %v, %v; want error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got.kind != tc.want {
				t.Fatalf("resolveType = %v, %v; want kind %d", got, err, tc.want)
			}
		})
	}
}

// FuzzParquetValue renders values of every kind made from arbitrary bytes
// and checks that nothing panics and that numbers and times read back.
func FuzzParquetValue(f *testing.F) {
	f.Add(uint8(kindDecimal), uint8(2), []byte{0xff, 0x85})
	f.Add(uint8(kindDecimal), uint8(40), []byte("\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"))
	f.Add(uint8(kindTimestampMillis), uint8(0), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(uint8(kindInt96), uint8(0), []byte("\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x3d\x25\x00"))
	f.Add(uint8(kindString), uint8(0), []byte("caf\xc3\xa9"))
	f.Add(uint8(kindFloat), uint8(0), []byte{0, 0, 0xc0, 0x7f})
	f.Fuzz(func(t *testing.T, kind, scale uint8, data []byte) {
		typ := valueType{kind: valueKind(kind % uint8(numKinds)), scale: int32(scale % 60)}
		v := valueFor(typ.kind, data)
		s, err := typ.render(pv(v))
		if err != nil {
			if errors.Is(err, errWrongType) {
				t.Fatalf("render(%T) of kind %d: %v", v, typ.kind, err)
			}
			return
		}
		switch typ.kind {
		case kindInt64:
			if n, err := strconv.ParseInt(s, 10, 64); err != nil || n != v.(int64) {
				t.Fatalf("%q does not read back as %d", s, v)
			}
		case kindDecimal:
			var unscaled *big.Int
			switch d := v.(type) {
			case int32:
				unscaled = big.NewInt(int64(d))
			case int64:
				unscaled = big.NewInt(d)
			case string:
				unscaled = new(big.Int).SetBytes([]byte(d))
				if len(d) > 0 && d[0]&0x80 != 0 {
					unscaled.Sub(unscaled, new(big.Int).Lsh(big.NewInt(1), uint(8*len(d))))
				}
			}
			r, ok := new(big.Rat).SetString(s)
			want := new(big.Rat).SetFrac(unscaled, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(typ.scale)), nil))
			if !ok || r.Cmp(want) != 0 {
				t.Fatalf("%q is not %s", s, want.FloatString(int(typ.scale)))
			}
			if typ.scale > 0 && len(s)-strings.IndexByte(s, '.')-1 != int(typ.scale) {
				t.Fatalf("%q does not have %d decimals", s, typ.scale)
			}
		case kindTimestampMillis, kindTimestampMicros, kindTimestampNanos, kindInt96:
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				t.Fatalf("%q is not RFC 3339: %v", s, err)
			}
		case kindDate:
			if _, err := time.Parse(time.DateOnly, s); err != nil {
				t.Fatalf("%q is not a date: %v", s, err)
			}
		case kindString:
			if s != v.(string) {
				t.Fatalf("string changed: %q", s)
			}
		}
	})
}

// valueFor builds the Go value parquet-go decodes for kind from data.
func valueFor(kind valueKind, data []byte) any {
	pad := func(n int) []byte {
		b := make([]byte, n)
		copy(b, data)
		return b
	}
	switch kind {
	case kindBool:
		return len(data) > 0 && data[0]&1 == 1
	case kindInt32, kindUint32, kindDate, kindTimeMillis:
		return int32(binary.LittleEndian.Uint32(pad(4)))
	case kindInt64, kindUint64, kindTimeMicros, kindTimeNanos, kindTimestampMillis, kindTimestampMicros, kindTimestampNanos:
		return int64(binary.LittleEndian.Uint64(pad(8)))
	case kindFloat:
		return math.Float32frombits(binary.LittleEndian.Uint32(pad(4)))
	case kindDouble:
		return math.Float64frombits(binary.LittleEndian.Uint64(pad(8)))
	case kindInt96:
		b := pad(12)
		return deprecated.Int96{binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])}
	case kindUUID:
		return string(pad(16))
	case kindDecimal:
		switch {
		case len(data) == 4:
			return int32(binary.LittleEndian.Uint32(data))
		case len(data) == 8:
			return int64(binary.LittleEndian.Uint64(data))
		}
		return string(data)
	}
	return string(data)
}
