package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strconv"
	"strings"
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
func (c *Conversion) Encode() string {
	var b strings.Builder
	b.Grow(64 * (len(c.Fields) + 6*len(c.Items)))
	for i, f := range c.Form() {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(f.Name))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(f.Value))
	}
	return b.String()
}

// PayloadHash returns the hex SHA-256 of the encoded body. The ledger keeps
// it to tell whether an order changed since it was last sent.
func PayloadHash(body string) string {
	sum := sha256.Sum256([]byte(body))
	return hex.EncodeToString(sum[:])
}
