package sources

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"
)

// valueKind is how a Parquet column's values become strings, from its
// physical type and its logical (or legacy converted) type.
type valueKind uint8

const (
	kindBool valueKind = iota
	kindInt32
	kindUint32
	kindInt64
	kindUint64
	kindFloat
	kindDouble
	kindString // UTF-8 text: STRING, ENUM, JSON
	kindBytes  // binary: as is when valid UTF-8, else lowercase hex
	kindDecimal
	kindDate
	kindTimeMillis
	kindTimeMicros
	kindTimeNanos
	kindTimestampMillis
	kindTimestampMicros
	kindTimestampNanos
	kindInt96 // legacy Impala/Spark timestamp
	kindUUID
	numKinds
)

// maxDecimalBytes bounds a binary decimal's unscaled value (far beyond
// precision 38's 16 bytes).
const maxDecimalBytes = 128

// errWrongType marks a decoded value whose Go type does not fit its column:
// the file is corrupt (or parquet-go decoded it wrongly), so the object
// cannot be trusted.
var errWrongType = errors.New("decoded value does not fit the column's type")

// valueType is a resolved Parquet column type.
type valueType struct {
	kind  valueKind
	scale int32 // decimals
	// wall marks a TIMESTAMP not adjusted to UTC: a wall time in no
	// particular zone, rendered without an offset.
	wall bool
}

// resolveType works out how the column se is rendered. A type it does not
// know is an error naming it.
func resolveType(se *format.SchemaElement) (valueType, error) {
	lt := se.LogicalType.Value
	ct := deprecated.ConvertedType(-1)
	if se.ConvertedType.Valid {
		ct = se.ConvertedType.V
	}
	if _, ok := lt.(*format.DecimalType); ok || ct == deprecated.Decimal {
		return resolveDecimal(se)
	}
	switch se.Type.V {
	case format.Boolean:
		return valueType{kind: kindBool}, nil
	case format.Int32:
		return resolveInt32(lt, ct)
	case format.Int64:
		return resolveInt64(lt, ct)
	case format.Int96:
		return valueType{kind: kindInt96}, nil
	case format.Float:
		return valueType{kind: kindFloat}, nil
	case format.Double:
		return valueType{kind: kindDouble}, nil
	case format.ByteArray:
		return resolveByteArray(lt, ct), nil
	case format.FixedLenByteArray:
		return resolveFixedLenByteArray(se, lt)
	}
	return valueType{}, fmt.Errorf("unknown physical type %d", se.Type.V)
}

// resolveDecimal resolves a DECIMAL column (logical or converted type),
// whose scale the logical type gives when it is set.
func resolveDecimal(se *format.SchemaElement) (valueType, error) {
	scale := se.Scale.V
	if d, ok := se.LogicalType.Value.(*format.DecimalType); ok {
		scale = d.Scale
	}
	if scale < 0 || scale > 1000 {
		return valueType{}, fmt.Errorf("decimal scale %d is out of range", scale)
	}
	switch se.Type.V {
	case format.Int32, format.Int64, format.ByteArray, format.FixedLenByteArray:
		return valueType{kind: kindDecimal, scale: scale}, nil
	}
	return valueType{}, fmt.Errorf("decimal stored as %s", se.Type.V)
}

// resolveUnit picks millis, micros or nanos by the time unit tu.
func resolveUnit(tu format.TimeUnit, millis, micros, nanos valueKind) (valueType, error) {
	switch tu.Value.(type) {
	case *format.MilliSeconds:
		return valueType{kind: millis}, nil
	case *format.MicroSeconds:
		return valueType{kind: micros}, nil
	case *format.NanoSeconds:
		return valueType{kind: nanos}, nil
	}
	return valueType{}, errors.New("time unit missing")
}

// resolveInt32 resolves an INT32 column that is not a decimal: a date, a
// time of day in milliseconds, or a signed or unsigned integer.
func resolveInt32(lt format.LogicalTypeValue, ct deprecated.ConvertedType) (valueType, error) {
	switch l := lt.(type) {
	case *format.DateType:
		return valueType{kind: kindDate}, nil
	case *format.TimeType:
		t, err := resolveUnit(l.Unit, kindTimeMillis, kindTimeMicros, kindTimeNanos)
		if err == nil && t.kind != kindTimeMillis {
			err = errors.New("TIME in micro- or nanoseconds stored as INT32")
		}
		return t, err
	case *format.IntType:
		if !l.IsSigned {
			return valueType{kind: kindUint32}, nil
		}
		return valueType{kind: kindInt32}, nil
	case *format.TimestampType:
		return valueType{}, errors.New("TIMESTAMP stored as INT32")
	}
	switch ct {
	case deprecated.Date:
		return valueType{kind: kindDate}, nil
	case deprecated.TimeMillis:
		return valueType{kind: kindTimeMillis}, nil
	case deprecated.Uint8, deprecated.Uint16, deprecated.Uint32:
		return valueType{kind: kindUint32}, nil
	}
	return valueType{kind: kindInt32}, nil
}

// resolveInt64 resolves an INT64 column that is not a decimal: a
// timestamp, a time of day, or a signed or unsigned integer.
func resolveInt64(lt format.LogicalTypeValue, ct deprecated.ConvertedType) (valueType, error) {
	switch l := lt.(type) {
	case *format.TimestampType:
		t, err := resolveUnit(l.Unit, kindTimestampMillis, kindTimestampMicros, kindTimestampNanos)
		t.wall = !l.IsAdjustedToUTC
		return t, err
	case *format.TimeType:
		return resolveUnit(l.Unit, kindTimeMillis, kindTimeMicros, kindTimeNanos)
	case *format.IntType:
		if !l.IsSigned {
			return valueType{kind: kindUint64}, nil
		}
		return valueType{kind: kindInt64}, nil
	case *format.DateType:
		return valueType{}, errors.New("DATE stored as INT64")
	}
	switch ct {
	case deprecated.TimestampMillis: // the legacy types are instants
		return valueType{kind: kindTimestampMillis}, nil
	case deprecated.TimestampMicros:
		return valueType{kind: kindTimestampMicros}, nil
	case deprecated.TimeMicros:
		return valueType{kind: kindTimeMicros}, nil
	case deprecated.Uint64:
		return valueType{kind: kindUint64}, nil
	}
	return valueType{kind: kindInt64}, nil
}

// resolveByteArray resolves a BYTE_ARRAY column that is not a decimal:
// UTF-8 text or binary.
func resolveByteArray(lt format.LogicalTypeValue, ct deprecated.ConvertedType) valueType {
	switch lt.(type) {
	case *format.StringType, *format.EnumType, *format.JsonType:
		return valueType{kind: kindString}
	}
	switch ct {
	case deprecated.UTF8, deprecated.Enum, deprecated.Json:
		return valueType{kind: kindString}
	}
	return valueType{kind: kindBytes}
}

// resolveFixedLenByteArray resolves a FIXED_LEN_BYTE_ARRAY column that is
// not a decimal: a UUID (of 16 bytes) or binary.
func resolveFixedLenByteArray(se *format.SchemaElement, lt format.LogicalTypeValue) (valueType, error) {
	if _, ok := lt.(*format.UUIDType); ok {
		if se.TypeLength.V != 16 {
			return valueType{}, fmt.Errorf("UUID of %d bytes", se.TypeLength.V)
		}
		return valueType{kind: kindUUID}, nil
	}
	return valueType{kind: kindBytes}, nil
}

// render returns the string form of one decoded value v (a null is "")
// as pipeline.Row documents it: integers and decimals in plain decimal
// notation, floats with strconv 'g' formatting, booleans as true/false,
// dates as 2006-01-02, times of day as 15:04:05 with as many fractional
// digits as needed, timestamps adjusted to UTC (instants, INT96 included)
// as RFC 3339 in UTC with as many fractional digits as needed, timestamps
// not adjusted to UTC (wall times) the same without the Z, UUIDs
// in their 8-4-4-4-12 form, and binary values that are not valid UTF-8 in
// lowercase hex. An error wrapping errWrongType means the file is corrupt;
// any other error is a problem with this one value (invalid UTF-8 in a
// string, a date beyond year 9999).
func (t valueType) render(v parquet.Value) (string, error) {
	if v.IsNull() {
		return "", nil
	}
	switch t.kind {
	case kindBool, kindInt32, kindUint32, kindInt64, kindUint64, kindFloat, kindDouble:
		return t.renderNumber(v)
	case kindString, kindBytes, kindUUID:
		return t.renderBinary(v)
	case kindDecimal:
		return t.renderDecimal(v)
	case kindDate, kindTimeMillis, kindTimeMicros, kindTimeNanos:
		return t.renderDateOrTime(v)
	case kindTimestampMillis, kindTimestampMicros, kindTimestampNanos, kindInt96:
		return t.renderTimestamp(v)
	}
	return "", t.wrongType(v)
}

// wrongType is the error for a value v whose physical type does not fit t.
func (t valueType) wrongType(v parquet.Value) error {
	return fmt.Errorf("%w: %s for kind %d", errWrongType, v.Kind(), t.kind)
}

// renderNumber renders a boolean, integer or floating-point value.
func (t valueType) renderNumber(v parquet.Value) (string, error) {
	k := v.Kind()
	switch {
	case t.kind == kindBool && k == parquet.Boolean:
		return strconv.FormatBool(v.Boolean()), nil
	case t.kind == kindInt32 && k == parquet.Int32:
		return strconv.FormatInt(int64(v.Int32()), 10), nil
	case t.kind == kindUint32 && k == parquet.Int32:
		return strconv.FormatUint(uint64(uint32(v.Int32())), 10), nil
	case t.kind == kindInt64 && k == parquet.Int64:
		return strconv.FormatInt(v.Int64(), 10), nil
	case t.kind == kindUint64 && k == parquet.Int64:
		return strconv.FormatUint(uint64(v.Int64()), 10), nil
	case t.kind == kindFloat && k == parquet.Float:
		return strconv.FormatFloat(float64(v.Float()), 'g', -1, 32), nil
	case t.kind == kindDouble && k == parquet.Double:
		return strconv.FormatFloat(v.Double(), 'g', -1, 64), nil
	}
	return "", t.wrongType(v)
}

// isBinary reports whether v holds bytes (BYTE_ARRAY or
// FIXED_LEN_BYTE_ARRAY).
func isBinary(v parquet.Value) bool {
	k := v.Kind()
	return k == parquet.ByteArray || k == parquet.FixedLenByteArray
}

// renderBinary renders a BYTE_ARRAY or FIXED_LEN_BYTE_ARRAY value: UTF-8
// text, binary (as is when valid UTF-8, else lowercase hex) or a UUID.
func (t valueType) renderBinary(v parquet.Value) (string, error) {
	if !isBinary(v) {
		return "", t.wrongType(v)
	}
	b := v.ByteArray()
	switch t.kind {
	case kindString:
		if !utf8.Valid(b) {
			return "", fmt.Errorf("invalid UTF-8 at byte %d of the value", invalidAt(string(b)))
		}
		return string(b), nil
	case kindBytes:
		if utf8.Valid(b) {
			return string(b), nil
		}
		return hex.EncodeToString(b), nil
	case kindUUID:
		if len(b) == 16 {
			h := hex.EncodeToString(b)
			return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
		}
	}
	return "", t.wrongType(v)
}

// renderDecimal renders a decimal stored as INT32, INT64 or a byte array.
func (t valueType) renderDecimal(v parquet.Value) (string, error) {
	switch v.Kind() {
	case parquet.Int32:
		return formatDecimalInt(int64(v.Int32()), t.scale), nil
	case parquet.Int64:
		return formatDecimalInt(v.Int64(), t.scale), nil
	case parquet.ByteArray, parquet.FixedLenByteArray:
		return formatDecimalBytes(v.ByteArray(), t.scale)
	}
	return "", t.wrongType(v)
}

// renderDateOrTime renders a date (days since 1970-01-01) or a time of
// day.
func (t valueType) renderDateOrTime(v parquet.Value) (string, error) {
	k := v.Kind()
	switch {
	case t.kind == kindDate && k == parquet.Int32:
		return formatTime(time.Unix(int64(v.Int32())*86400, 0), time.DateOnly)
	case t.kind == kindTimeMillis && k == parquet.Int32:
		return formatTimeOfDay(int64(v.Int32()), int64(time.Millisecond))
	case t.kind == kindTimeMicros && k == parquet.Int64:
		return formatTimeOfDay(v.Int64(), int64(time.Microsecond))
	case t.kind == kindTimeNanos && k == parquet.Int64:
		return formatTimeOfDay(v.Int64(), 1)
	}
	return "", t.wrongType(v)
}

// wallLayout renders a wall time: RFC 3339 without the offset.
const wallLayout = "2006-01-02T15:04:05.999999999"

// renderTimestamp renders an INT64 timestamp or a legacy INT96 one.
func (t valueType) renderTimestamp(v parquet.Value) (string, error) {
	layout := time.RFC3339Nano
	if t.wall {
		layout = wallLayout
	}
	k := v.Kind()
	switch {
	case t.kind == kindTimestampMillis && k == parquet.Int64:
		return formatTime(time.UnixMilli(v.Int64()), layout)
	case t.kind == kindTimestampMicros && k == parquet.Int64:
		return formatTime(time.UnixMicro(v.Int64()), layout)
	case t.kind == kindTimestampNanos && k == parquet.Int64:
		return formatTime(time.Unix(0, v.Int64()), layout)
	case t.kind == kindInt96 && k == parquet.Int96:
		return formatInt96(v.Int96())
	}
	return "", t.wrongType(v)
}

// formatDecimalInt renders the unscaled value u with scale digits after
// the point: (-1250, 2) is "-12.50".
func formatDecimalInt(u int64, scale int32) string {
	if scale == 0 {
		return strconv.FormatInt(u, 10)
	}
	neg := u < 0
	mag := uint64(u)
	if neg {
		mag = -mag // two's complement: correct for math.MinInt64 too
	}
	return placePoint(neg, strconv.FormatUint(mag, 10), int(scale))
}

// formatDecimalBytes renders a decimal stored as a big-endian two's
// complement integer.
func formatDecimalBytes(b []byte, scale int32) (string, error) {
	switch {
	case len(b) == 0:
		return "", errors.New("empty decimal value")
	case len(b) > maxDecimalBytes:
		return "", fmt.Errorf("decimal value of %d bytes is over the limit of %d", len(b), maxDecimalBytes)
	case len(b) <= 8:
		var u uint64
		for i := 0; i < len(b); i++ {
			u = u<<8 | uint64(b[i])
		}
		shift := 64 - 8*uint(len(b))
		return formatDecimalInt(int64(u<<shift)>>shift, scale), nil // sign-extend
	}
	n := new(big.Int).SetBytes(b)
	neg := b[0]&0x80 != 0
	if neg {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		n.Neg(n)
	}
	if scale == 0 {
		if neg {
			return "-" + n.String(), nil
		}
		return n.String(), nil
	}
	return placePoint(neg, n.String(), int(scale)), nil
}

// placePoint puts a decimal point scale digits from the right of digits.
func placePoint(neg bool, digits string, scale int) string {
	var sb strings.Builder
	sb.Grow(len(digits) + scale + 3)
	if neg {
		sb.WriteByte('-')
	}
	if len(digits) <= scale {
		sb.WriteString("0.")
		for i := len(digits); i < scale; i++ {
			sb.WriteByte('0')
		}
		sb.WriteString(digits)
		return sb.String()
	}
	sb.WriteString(digits[:len(digits)-scale])
	sb.WriteByte('.')
	sb.WriteString(digits[len(digits)-scale:])
	return sb.String()
}

// formatTime renders t in UTC with layout; years outside 0000-9999 have no
// RFC 3339 form and are an error.
func formatTime(t time.Time, layout string) (string, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return "", fmt.Errorf("year %d is out of range", y)
	}
	return t.Format(layout), nil
}

// formatTimeOfDay renders v units after midnight as 15:04:05[.fraction].
func formatTimeOfDay(v, unit int64) (string, error) {
	const day = int64(24 * time.Hour)
	if v < 0 || v >= day/unit {
		return "", fmt.Errorf("time of day %d is out of range", v)
	}
	return time.Unix(0, v*unit).UTC().Format("15:04:05.999999999"), nil
}

// julianUnixEpoch is the Julian day number of 1970-01-01.
const julianUnixEpoch = 2440588

// formatInt96 renders a legacy INT96 timestamp: nanoseconds within the day
// (the first 8 bytes, little-endian, parquet-go's first two words) then
// the Julian day.
func formatInt96(i deprecated.Int96) (string, error) {
	nanos := uint64(i[1])<<32 | uint64(i[0])
	jd := int64(i[2])
	if nanos >= uint64(24*time.Hour) {
		return "", fmt.Errorf("INT96 time of day %d ns is out of range", nanos)
	}
	t := time.Unix((jd-julianUnixEpoch)*86400, int64(nanos))
	return formatTime(t, time.RFC3339Nano)
}
