package sinks

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"convpipe/pipeline"
	"convpipe/pipeline/rules"
)

// BatchFile is one batch file of conversions in impact's CSV form (see
// pipeline.BatchFile). EncodeBatch names it "convpipe_<first 24 hex
// digits of the content's SHA-256>.csv".
type BatchFile = pipeline.BatchFile

// BatchOrder is one order of a batch file and its lines.
type BatchOrder = pipeline.BatchOrder

// BatchProblem is a conversion that a batch file cannot carry as it is
// (a value with a line break, an item whose line total cannot be
// computed): it is left out of the file, to be recorded as invalid or
// sent through the API.
type BatchProblem struct {
	Key     pipeline.Key
	Message pipeline.Message
}

// batchFixed maps the API's order-level fields that have a fixed batch
// column to that column.
var batchFixed = map[string]string{
	"CampaignId": "CampaignId", "ProgramId": "CampaignId",
	"EventTypeId": "ActionTrackerId", "ActionTrackerId": "ActionTrackerId",
	"EventDate": "EventDate", "OrderId": "OrderId", "ClickId": "ClickId",
	"CustomerId": "CustomerId", "CurrencyCode": "CurrencyCode",
}

// batchItemFixed maps item fields with a fixed batch column to it.
var batchItemFixed = map[string]string{
	"ItemSku": "Sku", "ItemCategory": "Category", "ItemQuantity": "Quantity", "ItemSubTotal": "Amount",
}

// SplitBatches writes convs into batch files of at most perFile orders
// each, in their order, and returns the files and the conversions no
// file can carry. It is pure.
func SplitBatches(convs []*pipeline.Conversion, perFile int) ([]*BatchFile, []BatchProblem) {
	if perFile < 1 {
		perFile = 1
	}
	var files []*BatchFile
	var problems []BatchProblem
	for start := 0; start < len(convs); start += perFile {
		f, p := EncodeBatch(convs[start:min(start+perFile, len(convs))])
		problems = append(problems, p...)
		if f != nil {
			files = append(files, f)
		}
	}
	return files, problems
}

// batchLine is one line's values by column.
type batchLine map[string]string

// EncodeBatch writes convs, in their order, into one batch file: the
// lines of one order consecutive, the order-level values repeated on
// each of its lines. It returns nil when no conversion can be carried.
func EncodeBatch(convs []*pipeline.Conversion) (*BatchFile, []BatchProblem) {
	var problems []BatchProblem
	type order struct {
		key   pipeline.Key
		lines []batchLine
	}
	var orders []order
	extra := map[string]bool{}
	for _, c := range convs {
		lines, msg := batchLines(c)
		if msg != nil {
			problems = append(problems, BatchProblem{Key: c.Key, Message: *msg})
			continue
		}
		for _, l := range lines {
			for col := range l {
				if !slices.Contains(rules.BatchColumns, col) {
					extra[col] = true
				}
			}
		}
		orders = append(orders, order{c.Key, lines})
	}
	if len(orders) == 0 {
		return nil, problems
	}
	header := append(slices.Clone(rules.BatchColumns), optionalColumns(extra)...)
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(header)
	f := &BatchFile{}
	line := 1
	row := make([]string, len(header))
	for _, o := range orders {
		bo := BatchOrder{Key: o.key, First: line + 1}
		for _, l := range o.lines {
			for i, col := range header {
				row[i] = l[col]
			}
			_ = w.Write(row)
			line++
		}
		bo.Last = line
		f.Orders = append(f.Orders, bo)
	}
	w.Flush()
	f.Data = buf.Bytes()
	sum := sha256.Sum256(f.Data)
	f.Name = "convpipe_" + hex.EncodeToString(sum[:12]) + ".csv"
	return f, problems
}

// optionalColumns orders the optional columns as the API's catalogue
// does: the order-level fields, then the item-level ones, then any other
// by name.
func optionalColumns(extra map[string]bool) []string {
	rank := func(col string) int {
		for i, f := range rules.OrderFields {
			if f.Name == col {
				return i
			}
		}
		for i, f := range rules.ItemFields {
			if f.Name == col {
				return len(rules.OrderFields) + i
			}
		}
		return len(rules.OrderFields) + len(rules.ItemFields)
	}
	cols := make([]string, 0, len(extra))
	for c := range extra {
		cols = append(cols, c)
	}
	slices.SortFunc(cols, func(a, b string) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return cols
}

// batchLines returns the lines of one conversion, or why a batch file
// cannot carry it.
func batchLines(c *pipeline.Conversion) ([]batchLine, *pipeline.Message) {
	base := batchLine{}
	for _, f := range c.Fields {
		if f.Value == "" {
			continue
		}
		if strings.ContainsAny(f.Value, "\r\n") {
			return nil, lineBreak(f.Name)
		}
		col, fixed := batchFixed[f.Name]
		switch {
		case fixed:
			base[col] = f.Value
		case f.Name == "OrderSubTotalPostDiscount" && len(c.Items) == 0:
			base["Amount"] = f.Value
		default:
			base[f.Name] = f.Value
		}
	}
	if len(c.Items) == 0 {
		return []batchLine{base}, nil
	}
	lines := make([]batchLine, 0, len(c.Items))
	for i, it := range c.Items {
		l := make(batchLine, len(base)+len(it.Fields))
		for k, v := range base {
			l[k] = v
		}
		if msg := itemLine(l, it, i+1); msg != nil {
			return nil, msg
		}
		lines = append(lines, l)
	}
	return lines, nil
}

// itemLine adds item n's values to its line l.
func itemLine(l batchLine, it pipeline.Item, n int) *pipeline.Message {
	var price string
	for _, f := range it.Fields {
		if f.Value == "" {
			continue
		}
		if strings.ContainsAny(f.Value, "\r\n") {
			return lineBreak(pipeline.ItemFieldName(f.Name, n))
		}
		switch col, fixed := batchItemFixed[f.Name]; {
		case fixed:
			l[col] = f.Value
		case f.Name == "ItemPrice":
			price = f.Value
		default:
			l[f.Name] = f.Value
		}
	}
	if price == "" || l["Amount"] != "" {
		return nil
	}
	// A batch line carries the line's total: the unit price times the
	// quantity, exactly.
	p, okP := new(big.Rat).SetString(price)
	q, okQ := new(big.Rat).SetString(l["Quantity"])
	if !okP || !okQ {
		return &pipeline.Message{Field: pipeline.ItemFieldName("ItemPrice", n), Value: price,
			Text: "a batch line carries the line total (Amount): ItemPrice times ItemQuantity, which are not both numbers here"}
	}
	total := p.Mul(p, q)
	if !new(big.Rat).Mul(total, big.NewRat(100, 1)).IsInt() {
		return &pipeline.Message{Field: pipeline.ItemFieldName("ItemPrice", n), Value: price,
			Text: "ItemPrice times ItemQuantity has more than 2 decimals: a batch line's Amount cannot carry it"}
	}
	l["Amount"] = total.FloatString(2)
	return nil
}

func lineBreak(field string) *pipeline.Message {
	return &pipeline.Message{Field: field, Text: fmt.Sprintf("%s holds a line break, which a batch file line cannot carry: send this order through the API", field)}
}
