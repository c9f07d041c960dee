package main

import (
	"bytes"
	"math/big"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// pRow is an order as parquet-go/parquet-go writes it.
type pRow struct {
	OrderID    string     `parquet:"order_id,dict"`
	ClickID    *string    `parquet:"click_id,optional"`
	Customer   *string    `parquet:"customer,optional,dict"`
	Qty        *int32     `parquet:"qty,optional"`
	Big        *int64     `parquet:"big,optional"`
	Price      *float64   `parquet:"price,optional"`
	Weight     *float32   `parquet:"weight,optional,split"`
	Paid       *bool      `parquet:"paid,optional"`
	Amount     *int32     `parquet:"amount,optional,decimal(2:9)"`
	Total      *int64     `parquet:"total,optional,decimal(4:18)"`
	BigDec     *[16]byte  `parquet:"big_dec,optional,decimal(6:38)"`
	OrderDate  *int32     `parquet:"order_date,optional,date"`
	EventUTC   *time.Time `parquet:"event_utc,optional,timestamp(microsecond:utc)"`
	EventLocal *time.Time `parquet:"event_local,optional,timestamp(microsecond:local)"`
	EventMs    *time.Time `parquet:"event_ms,optional,timestamp(millisecond:local)"`
	EventNs    *time.Time `parquet:"event_ns,optional,timestamp(nanosecond:local)"`
}

var pColumns = []string{"order_id", "click_id", "customer", "qty", "big", "price", "weight", "paid", "amount", "total",
	"big_dec", "order_date", "event_utc", "event_local", "event_ms", "event_ns"}

func bigOf(n int64) *big.Int { return big.NewInt(n) }

func writeParquetGo(b *bytes.Buffer, orders []order, pageVersion int, codec string) ([]string, error) {
	var c compress.Codec = &zstd.Codec{}
	if codec == "gzip" {
		c = &gzip.Codec{}
	}
	w := parquet.NewGenericWriter[pRow](b, parquet.DataPageVersion(pageVersion), parquet.Compression(c),
		parquet.MaxRowsPerRowGroup(800), parquet.PageBufferSize(4<<10))
	rows := make([]pRow, len(orders))
	for i, o := range orders {
		rows[i] = pRow{OrderID: *o.OrderID, ClickID: o.ClickID, Customer: o.Customer, Qty: o.Qty, Big: o.Big, Price: o.Price,
			Weight: o.Weight, Paid: o.Paid, Amount: o.Amount, Total: o.Total, OrderDate: o.OrderDate, EventUTC: o.EventUTC, EventLocal: o.EventLocal,
			EventMs: o.EventMs, EventNs: o.EventNs}
		if o.BigDec != nil {
			var fixed [16]byte
			copy(fixed[:], twos(o.BigDec, 16))
			rows[i].BigDec = &fixed
		}
	}
	if _, err := w.Write(rows); err != nil {
		return nil, err
	}
	return pColumns, w.Close()
}
