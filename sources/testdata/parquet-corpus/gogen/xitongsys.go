package main

import (
	"bytes"
	"errors"

	"github.com/xitongsys/parquet-go/parquet"
	"github.com/xitongsys/parquet-go/source"
	"github.com/xitongsys/parquet-go/writer"
)

// xRow is an order as xitongsys/parquet-go writes it.
type xRow struct {
	OrderID    string   `parquet:"name=order_id, type=BYTE_ARRAY, convertedtype=UTF8, encoding=PLAIN_DICTIONARY"`
	ClickID    *string  `parquet:"name=click_id, type=BYTE_ARRAY, convertedtype=UTF8, repetitiontype=OPTIONAL"`
	Customer   *string  `parquet:"name=customer, type=BYTE_ARRAY, convertedtype=UTF8, encoding=PLAIN_DICTIONARY, repetitiontype=OPTIONAL"`
	Qty        *int32   `parquet:"name=qty, type=INT32, repetitiontype=OPTIONAL"`
	Big        *int64   `parquet:"name=big, type=INT64, repetitiontype=OPTIONAL"`
	Price      *float64 `parquet:"name=price, type=DOUBLE, repetitiontype=OPTIONAL"`
	Weight     *float32 `parquet:"name=weight, type=FLOAT, repetitiontype=OPTIONAL"`
	Paid       *bool    `parquet:"name=paid, type=BOOLEAN, repetitiontype=OPTIONAL"`
	Amount     *int32   `parquet:"name=amount, type=INT32, convertedtype=DECIMAL, scale=2, precision=9, repetitiontype=OPTIONAL"`
	Total      *string  `parquet:"name=total, type=FIXED_LEN_BYTE_ARRAY, length=8, convertedtype=DECIMAL, scale=4, precision=18, repetitiontype=OPTIONAL"`
	BigDec     *string  `parquet:"name=big_dec, type=BYTE_ARRAY, convertedtype=DECIMAL, scale=6, precision=38, repetitiontype=OPTIONAL"`
	OrderDate  *int32   `parquet:"name=order_date, type=INT32, convertedtype=DATE, repetitiontype=OPTIONAL"`
	EventUTC   *int64   `parquet:"name=event_utc, type=INT64, convertedtype=TIMESTAMP_MICROS, isadjustedtoutc=true, repetitiontype=OPTIONAL"`
	EventLocal *int64   `parquet:"name=event_local, type=INT64, logicaltype=TIMESTAMP, logicaltype.isadjustedtoutc=false, logicaltype.unit=MICROS, repetitiontype=OPTIONAL"`
	EventMs    *int64   `parquet:"name=event_ms, type=INT64, convertedtype=TIMESTAMP_MILLIS, repetitiontype=OPTIONAL"`
	EventNs    *int64   `parquet:"name=event_ns, type=INT64, logicaltype=TIMESTAMP, logicaltype.isadjustedtoutc=false, logicaltype.unit=NANOS, repetitiontype=OPTIONAL"`
	EventInt96 *string  `parquet:"name=event_int96, type=INT96, repetitiontype=OPTIONAL"`
}

var xColumns = []string{"order_id", "click_id", "customer", "qty", "big", "price", "weight", "paid", "amount", "total",
	"big_dec", "order_date", "event_utc", "event_local", "event_ms", "event_ns", "event_int96"}

// bufFile is a write-only source.ParquetFile over a buffer.
type bufFile struct{ buf *bytes.Buffer }

var _ source.ParquetFile = bufFile{}

func (f bufFile) Write(p []byte) (int, error)               { return f.buf.Write(p) }
func (f bufFile) Read([]byte) (int, error)                  { return 0, errors.New("write-only") }
func (f bufFile) Seek(int64, int) (int64, error)            { return 0, errors.New("write-only") }
func (f bufFile) Close() error                              { return nil }
func (f bufFile) Open(string) (source.ParquetFile, error)   { return f, nil }
func (f bufFile) Create(string) (source.ParquetFile, error) { return f, nil }

func writeXitongsys(b *bytes.Buffer, orders []order, groupRows int) ([]string, error) {
	pw, err := writer.NewParquetWriter(bufFile{b}, new(xRow), 1)
	if err != nil {
		return nil, err
	}
	pw.CompressionType = parquet.CompressionCodec_SNAPPY
	pw.PageSize = 4 << 10
	for i, o := range orders {
		r := xRow{OrderID: *o.OrderID, ClickID: o.ClickID, Customer: o.Customer, Qty: o.Qty, Big: o.Big, Price: o.Price,
			Weight: o.Weight, Paid: o.Paid, Amount: o.Amount, OrderDate: o.OrderDate}
		if o.Total != nil {
			r.Total = ptr(string(twos(bigOf(*o.Total), 8)))
		}
		if o.BigDec != nil {
			r.BigDec = ptr(string(twos(o.BigDec, 0)))
		}
		if o.EventUTC != nil {
			r.EventUTC = ptr(o.EventUTC.UnixMicro())
			r.EventInt96 = ptr(int96(*o.EventUTC))
		}
		if o.EventLocal != nil {
			r.EventLocal = ptr(o.EventLocal.UnixMicro())
		}
		if o.EventMs != nil {
			r.EventMs = ptr(o.EventMs.UnixMilli())
		}
		if o.EventNs != nil {
			r.EventNs = ptr(o.EventNs.UnixNano())
		}
		if err := pw.Write(r); err != nil {
			return nil, err
		}
		if (i+1)%groupRows == 0 {
			if err := pw.Flush(true); err != nil {
				return nil, err
			}
		}
	}
	return xColumns, pw.WriteStop()
}
