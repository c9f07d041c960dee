package sources

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xitongsys/parquet-go/parquet"
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
func resolveType(se *parquet.SchemaElement) (valueType, error) {
	lt := se.GetLogicalType()
	ct := parquet.ConvertedType(-1)
	if se.IsSetConvertedType() {
		ct = se.GetConvertedType()
	}
	if lt != nil && lt.DECIMAL != nil || ct == parquet.ConvertedType_DECIMAL {
		return resolveDecimal(se, lt)
	}
	switch se.GetType() {
	case parquet.Type_BOOLEAN:
		return valueType{kind: kindBool}, nil
	case parquet.Type_INT32:
		return resolveInt32(lt, ct)
	case parquet.Type_INT64:
		return resolveInt64(lt, ct)
	case parquet.Type_INT96:
		return valueType{kind: kindInt96}, nil
	case parquet.Type_FLOAT:
		return valueType{kind: kindFloat}, nil
	case parquet.Type_DOUBLE:
		return valueType{kind: kindDouble}, nil
	case parquet.Type_BYTE_ARRAY:
		return resolveByteArray(lt, ct), nil
	case parquet.Type_FIXED_LEN_BYTE_ARRAY:
		return resolveFixedLenByteArray(se, lt)
	}
	return valueType{}, fmt.Errorf("unknown physical type %d", se.GetType())
}

// resolveDecimal resolves a DECIMAL column (logical or converted type),
// whose scale the logical type gives when it is set.
func resolveDecimal(se *parquet.SchemaElement, lt *parquet.LogicalType) (valueType, error) {
	scale := se.GetScale()
	if lt != nil && lt.DECIMAL != nil {
		scale = lt.DECIMAL.Scale
	}
	if scale < 0 || scale > 1000 {
		return valueType{}, fmt.Errorf("decimal scale %d is out of range", scale)
	}
	switch se.GetType() {
	case parquet.Type_INT32, parquet.Type_INT64, parquet.Type_BYTE_ARRAY, parquet.Type_FIXED_LEN_BYTE_ARRAY:
		return valueType{kind: kindDecimal, scale: scale}, nil
	}
	return valueType{}, fmt.Errorf("decimal stored as %s", se.GetType())
}

// resolveUnit picks millis, micros or nanos by the time unit tu.
func resolveUnit(tu *parquet.TimeUnit, millis, micros, nanos valueKind) (valueType, error) {
	switch {
	case tu == nil:
	case tu.MILLIS != nil:
		return valueType{kind: millis}, nil
	case tu.MICROS != nil:
		return valueType{kind: micros}, nil
	case tu.NANOS != nil:
		return valueType{kind: nanos}, nil
	}
	return valueType{}, errors.New("time unit missing")
}

// resolveInt32 resolves an INT32 column that is not a decimal: a date, a
// time of day in milliseconds, or a signed or unsigned integer.
func resolveInt32(lt *parquet.LogicalType, ct parquet.ConvertedType) (valueType, error) {
	switch {
	case lt != nil && lt.DATE != nil, ct == parquet.ConvertedType_DATE:
		return valueType{kind: kindDate}, nil
	case lt != nil && lt.TIME != nil:
		t, err := resolveUnit(lt.TIME.Unit, kindTimeMillis, kindTimeMicros, kindTimeNanos)
		if err == nil && t.kind != kindTimeMillis {
			err = errors.New("TIME in micro- or nanoseconds stored as INT32")
		}
		return t, err
	case ct == parquet.ConvertedType_TIME_MILLIS:
		return valueType{kind: kindTimeMillis}, nil
	case lt != nil && lt.INTEGER != nil && !lt.INTEGER.IsSigned,
		ct == parquet.ConvertedType_UINT_8, ct == parquet.ConvertedType_UINT_16, ct == parquet.ConvertedType_UINT_32:
		return valueType{kind: kindUint32}, nil
	case lt != nil && lt.TIMESTAMP != nil:
		return valueType{}, errors.New("TIMESTAMP stored as INT32")
	}
	return valueType{kind: kindInt32}, nil
}

// resolveInt64 resolves an INT64 column that is not a decimal: a
// timestamp, a time of day, or a signed or unsigned integer.
func resolveInt64(lt *parquet.LogicalType, ct parquet.ConvertedType) (valueType, error) {
	switch {
	case lt != nil && lt.TIMESTAMP != nil:
		t, err := resolveUnit(lt.TIMESTAMP.Unit, kindTimestampMillis, kindTimestampMicros, kindTimestampNanos)
		t.wall = !lt.TIMESTAMP.IsAdjustedToUTC
		return t, err
	case ct == parquet.ConvertedType_TIMESTAMP_MILLIS: // the legacy types are instants
		return valueType{kind: kindTimestampMillis}, nil
	case ct == parquet.ConvertedType_TIMESTAMP_MICROS:
		return valueType{kind: kindTimestampMicros}, nil
	case lt != nil && lt.TIME != nil:
		return resolveUnit(lt.TIME.Unit, kindTimeMillis, kindTimeMicros, kindTimeNanos)
	case ct == parquet.ConvertedType_TIME_MICROS:
		return valueType{kind: kindTimeMicros}, nil
	case lt != nil && lt.INTEGER != nil && !lt.INTEGER.IsSigned, ct == parquet.ConvertedType_UINT_64:
		return valueType{kind: kindUint64}, nil
	case lt != nil && lt.DATE != nil:
		return valueType{}, errors.New("DATE stored as INT64")
	}
	return valueType{kind: kindInt64}, nil
}

// resolveByteArray resolves a BYTE_ARRAY column that is not a decimal:
// UTF-8 text or binary.
func resolveByteArray(lt *parquet.LogicalType, ct parquet.ConvertedType) valueType {
	switch {
	case lt != nil && (lt.STRING != nil || lt.ENUM != nil || lt.JSON != nil),
		ct == parquet.ConvertedType_UTF8, ct == parquet.ConvertedType_ENUM, ct == parquet.ConvertedType_JSON:
		return valueType{kind: kindString}
	}
	return valueType{kind: kindBytes}
}

// resolveFixedLenByteArray resolves a FIXED_LEN_BYTE_ARRAY column that is
// not a decimal: a UUID (of 16 bytes) or binary.
func resolveFixedLenByteArray(se *parquet.SchemaElement, lt *parquet.LogicalType) (valueType, error) {
	if lt != nil && lt.UUID != nil {
		if se.GetTypeLength() != 16 {
			return valueType{}, fmt.Errorf("UUID of %d bytes", se.GetTypeLength())
		}
		return valueType{kind: kindUUID}, nil
	}
	return valueType{kind: kindBytes}, nil
}

// render returns the string form of one decoded value v (nil for a null)
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
func (t valueType) render(v any) (string, error) {
	if v == nil {
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

// wrongType is the error for a value v whose Go type does not fit t.
func (t valueType) wrongType(v any) error {
	return fmt.Errorf("%w: %T for kind %d", errWrongType, v, t.kind)
}

// renderNumber renders a boolean, integer or floating-point value.
func (t valueType) renderNumber(v any) (string, error) {
	switch t.kind {
	case kindBool:
		if b, ok := v.(bool); ok {
			return strconv.FormatBool(b), nil
		}
	case kindInt32:
		if i, ok := v.(int32); ok {
			return strconv.FormatInt(int64(i), 10), nil
		}
	case kindUint32:
		if i, ok := v.(int32); ok {
			return strconv.FormatUint(uint64(uint32(i)), 10), nil
		}
	case kindInt64:
		if i, ok := v.(int64); ok {
			return strconv.FormatInt(i, 10), nil
		}
	case kindUint64:
		if i, ok := v.(int64); ok {
			return strconv.FormatUint(uint64(i), 10), nil
		}
	case kindFloat:
		if f, ok := v.(float32); ok {
			return strconv.FormatFloat(float64(f), 'g', -1, 32), nil
		}
	case kindDouble:
		if f, ok := v.(float64); ok {
			return strconv.FormatFloat(f, 'g', -1, 64), nil
		}
	}
	return "", t.wrongType(v)
}

// renderBinary renders a value decoded as a Go string (a BYTE_ARRAY or
// FIXED_LEN_BYTE_ARRAY column): UTF-8 text, binary (as is when valid
// UTF-8, else lowercase hex) or a UUID.
func (t valueType) renderBinary(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", t.wrongType(v)
	}
	switch t.kind {
	case kindString:
		if !utf8.ValidString(s) {
			return "", fmt.Errorf("invalid UTF-8 at byte %d of the value", invalidAt(s))
		}
		return s, nil
	case kindBytes:
		if utf8.ValidString(s) {
			return s, nil
		}
		return hex.EncodeToString([]byte(s)), nil
	case kindUUID:
		if len(s) == 16 {
			h := hex.EncodeToString([]byte(s))
			return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
		}
	}
	return "", t.wrongType(v)
}

// renderDecimal renders a decimal stored as INT32, INT64 or a byte array.
func (t valueType) renderDecimal(v any) (string, error) {
	switch d := v.(type) {
	case int32:
		return formatDecimalInt(int64(d), t.scale), nil
	case int64:
		return formatDecimalInt(d, t.scale), nil
	case string:
		return formatDecimalBytes(d, t.scale)
	}
	return "", t.wrongType(v)
}

// renderDateOrTime renders a date (days since 1970-01-01) or a time of
// day.
func (t valueType) renderDateOrTime(v any) (string, error) {
	switch t.kind {
	case kindDate:
		if d, ok := v.(int32); ok {
			return formatTime(time.Unix(int64(d)*86400, 0), time.DateOnly)
		}
	case kindTimeMillis:
		if d, ok := v.(int32); ok {
			return formatTimeOfDay(int64(d), int64(time.Millisecond))
		}
	case kindTimeMicros:
		if d, ok := v.(int64); ok {
			return formatTimeOfDay(d, int64(time.Microsecond))
		}
	case kindTimeNanos:
		if d, ok := v.(int64); ok {
			return formatTimeOfDay(d, 1)
		}
	}
	return "", t.wrongType(v)
}

// wallLayout renders a wall time: RFC 3339 without the offset.
const wallLayout = "2006-01-02T15:04:05.999999999"

// renderTimestamp renders an INT64 timestamp or a legacy INT96 one.
func (t valueType) renderTimestamp(v any) (string, error) {
	layout := time.RFC3339Nano
	if t.wall {
		layout = wallLayout
	}
	switch t.kind {
	case kindTimestampMillis:
		if d, ok := v.(int64); ok {
			return formatTime(time.UnixMilli(d), layout)
		}
	case kindTimestampMicros:
		if d, ok := v.(int64); ok {
			return formatTime(time.UnixMicro(d), layout)
		}
	case kindTimestampNanos:
		if d, ok := v.(int64); ok {
			return formatTime(time.Unix(0, d), layout)
		}
	case kindInt96:
		if s, ok := v.(string); ok && len(s) == 12 {
			return formatInt96(s)
		}
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
func formatDecimalBytes(b string, scale int32) (string, error) {
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
	n := new(big.Int).SetBytes([]byte(b))
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
// (8 bytes) then the Julian day (4 bytes), both little-endian.
func formatInt96(s string) (string, error) {
	b := []byte(s)
	nanos := binary.LittleEndian.Uint64(b[:8])
	jd := int64(binary.LittleEndian.Uint32(b[8:]))
	if nanos >= uint64(24*time.Hour) {
		return "", fmt.Errorf("INT96 time of day %d ns is out of range", nanos)
	}
	t := time.Unix((jd-julianUnixEpoch)*86400, int64(nanos))
	return formatTime(t, time.RFC3339Nano)
}
