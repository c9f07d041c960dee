// Package sources reads order exports where they live, as streams of rows
// that remember where they came from: it implements pipeline.Source and
// pipeline.RowReader.
//
// Storage and format are apart. Storage is a local file, folder or glob,
// or an S3 location (s3://bucket/prefix/, globs on keys) read through the
// AWS SDK's standard credential chain; objects are streamed, and a body
// cut mid-way is resumed with a Range request on the same ETag. Formats
// are CSV (encoding/csv, plain or gzip) and Parquet (parquet-go/parquet-go,
// over random access to the object: a local file or ranged GETs, one per
// row group). A Parquet list column (LIST<STRUCT<…>>, as warehouses write
// nested items) is one column whose value is a JSON array of its
// elements; see docs/parquet.md and docs/mapping.md.
// Reading takes bounded memory whatever the input: a CSV record is cut at
// CSVConfig.MaxRecordBytes before the parser holds it (a row error), and
// gzip data that inflates past CSVConfig.MaxInflateRatio is a file error.
//
// Construct a Source with New from a Config; Objects lists what it
// selects, Open reads one object.
package sources
