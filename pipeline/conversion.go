package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unsafe"
)

// Field is one named value of a conversion, under the API's field name
// ("OrderId", "Text3"; for items the name without the item index:
// "ItemSku", "ItemText_2").
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Item is one line of an order: its item-level fields, in the API's order.
type Item struct {
	Fields []Field `json:"fields"`
	// Ref is the source row the item came from.
	Ref Ref `json:"ref"`
}

// Get returns the value of the named item field.
func (it Item) Get(name string) (string, bool) { return get(it.Fields, name) }

// Key identifies a conversion to the API and in the ledger: the API
// deduplicates on OrderId per event type.
type Key struct {
	// EventType is the EventTypeId or EventTypeCode.
	EventType string `json:"event_type"`
	// OrderID is the OrderId.
	OrderID string `json:"order_id"`
}

// String returns "EventType/OrderID", the form the ledger stores.
func (k Key) String() string { return k.EventType + "/" + k.OrderID }

// Conversion is one order, ready to be sent: order-level fields (custom
// fields such as Text1 or Money2 among them) in the API's order, and its
// items indexed from 1 in the order of their source lines.
type Conversion struct {
	// Key is the conversion's identity. When the order lacks an OrderId
	// or event type, the mapper still fills what it has; such a conversion
	// is invalid and never sent.
	Key Key `json:"key"`
	// Fields holds the order-level fields in a stable order.
	Fields []Field `json:"fields"`
	// Items holds the order's lines.
	Items []Item `json:"items,omitempty"`
	// Refs lists every source row the conversion was built from.
	Refs []Ref `json:"refs"`
	// MaybeSent tells the sink that an earlier run may have sent this
	// conversion without its answer being recorded (the ledger had it
	// pending or marked maybe-sent): a duplicate-OrderId answer then means
	// accepted. Run sets it; it is not part of the payload.
	MaybeSent bool `json:"-"`
}

// Get returns the value of the named order-level field.
func (c *Conversion) Get(name string) (string, bool) { return get(c.Fields, name) }

func get(fs []Field, name string) (string, bool) {
	for _, f := range fs {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}

// ItemFieldName returns the wire name of an item field for item i
// (counted from 1): "ItemSku" → "ItemSku1", "ItemText_2" → "ItemText1_2".
func ItemFieldName(name string, i int) string {
	n := strconv.Itoa(i)
	if j := strings.IndexByte(name, '_'); j >= 0 {
		return name[:j] + n + name[j:]
	}
	return name + n
}

// Form returns the conversion as the API's form fields, order-level fields
// first and then the items, each in the conversion's stable order.
func (c *Conversion) Form() []Field {
	out := make([]Field, 0, len(c.Fields)+len(c.Items)*6)
	out = append(out, c.Fields...)
	for i, it := range c.Items {
		for _, f := range it.Fields {
			out = append(out, Field{Name: ItemFieldName(f.Name, i+1), Value: f.Value})
		}
	}
	return out
}

// Encode returns the conversion's request body in the API's wire form,
// application/x-www-form-urlencoded, with the fields in the order of Form
// (url.Values would sort them; the order here is the conversion's own).
// Names and values are escaped exactly as url.QueryEscape escapes them.
//
// It builds the body in one allocation (two when many bytes need
// escaping), without building Form's field list: a run encodes every
// order it reads.
func (c *Conversion) Encode() string {
	// The size unescaped, and room for some escapes (a space costs
	// nothing, any other escape two bytes more).
	n := 0
	for _, f := range c.Fields {
		n += len(f.Name) + len(f.Value) + 2
	}
	for i, it := range c.Items {
		digits := 1
		for x := i + 1; x >= 10; x /= 10 {
			digits++
		}
		for _, f := range it.Fields {
			n += len(f.Name) + digits + len(f.Value) + 2
		}
	}
	if n == 0 {
		return ""
	}
	n += n/8 + 16
	b := make([]byte, 0, n)
	for _, f := range c.Fields {
		if len(b) > 0 {
			b = append(b, '&')
		}
		b = appendQuery(b, f.Name)
		b = append(b, '=')
		b = appendQuery(b, f.Value)
	}
	for i, it := range c.Items {
		for _, f := range it.Fields {
			if len(b) > 0 {
				b = append(b, '&')
			}
			// ItemFieldName, escaped: the index is never escaped.
			name, rest := f.Name, ""
			if j := strings.IndexByte(name, '_'); j >= 0 {
				name, rest = name[:j], name[j:]
			}
			b = appendQuery(b, name)
			b = strconv.AppendInt(b, int64(i+1), 10)
			b = appendQuery(b, rest)
			b = append(b, '=')
			b = appendQuery(b, f.Value)
		}
	}
	// b is not changed after this: the string may share its bytes.
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// queryPlain marks the bytes url.QueryEscape leaves as they are:
// letters, digits and -_.~ (RFC 3986's unreserved characters).
var queryPlain = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~'
	}
	return t
}()

// appendQuery appends url.QueryEscape(s) to b: a space as '+', every
// other byte that is not plain as %XX.
func appendQuery(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if queryPlain[c] {
			continue
		}
		b = append(b, s[start:i]...)
		if c == ' ' {
			b = append(b, '+')
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
		start = i + 1
	}
	return append(b, s[start:]...)
}

// PayloadHash returns the hex SHA-256 of the encoded body. The ledger keeps
// it to tell whether an order changed since it was last sent.
func PayloadHash(body string) string {
	// Hash the string's bytes in place: sha256 only reads them.
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(body), len(body)))
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}
