// Writes the same order lines twice with DuckDB, as CSV and as Parquet in
// 10 row groups, for sources' TestParquetCSVTwins (a real warehouse's
// writer on both sides):
//
//   node twins.mjs ROWS OUTDIR    # writes OUTDIR/orders.csv, OUTDIR/orders.parquet
//
// It prints {"rows": …, "row_groups": …, "writer": …} as JSON.
import { DuckDBInstance } from '@duckdb/node-api';
import path from 'node:path';

const [rowsArg, outDir] = process.argv.slice(2);
const rows = Number(rowsArg);
if (!Number.isInteger(rows) || rows < 10 || !outDir) {
  console.error('usage: node twins.mjs ROWS OUTDIR');
  process.exit(2);
}
const db = await DuckDBInstance.create(':memory:');
const con = await db.connect();
await con.run('SET threads = 1');
await con.run(`SET TimeZone = 'UTC'`);
// 2 or 3 lines per order, contiguous; names with commas, quotes and
// UTF-8; NULLs in promo_code; whole-second wall times (TIMESTAMP).
await con.run(`CREATE TABLE t AS
  SELECT
    'T-' || lpad(CAST(o AS VARCHAR), 8, '0') AS order_id,
    TIMESTAMP '2026-11-01 00:00:00' + to_seconds(o * 7) AS ordered_at,
    'clk-' || CAST((o * 2654435761) % 1000000007 AS VARCHAR) AS click_id,
    'SKU-' || CAST(i % 997 AS VARCHAR) AS sku,
    ['Anvil, heavy', 'Tennis "Pro" Balls', 'Zoë Ångström kit', '東京 tea', 'plain'][i % 5 + 1] AS name,
    CAST(1 + i % 4 AS INTEGER) AS qty,
    CAST(CAST(99 + (i * 37) % 20000 AS DECIMAL(18, 0)) / 100 AS DECIMAL(9, 2)) AS price,
    CASE WHEN o % 5 = 0 THEN NULL ELSE 'PROMO' || CAST(o % 7 AS VARCHAR) END AS promo_code,
    ['tools', 'garden', 'toys'][o % 3 + 1] AS category
  FROM (SELECT i, (i * 2) // 5 AS o FROM range(${rows}) r(i))
  ORDER BY i`);
const csv = path.join(outDir, 'orders.csv');
const pq = path.join(outDir, 'orders.parquet');
await con.run(`COPY t TO '${csv}' (HEADER, DELIMITER ',')`);
await con.run(`COPY t TO '${pq}' (FORMAT parquet, ROW_GROUP_SIZE ${Math.ceil(rows / 10)})`);
const groups = (await (await con.runAndReadAll(`SELECT count(DISTINCT row_group_id) FROM parquet_metadata('${pq}')`)).getRows())[0][0];
const version = (await (await con.runAndReadAll('SELECT version()')).getRows())[0][0];
console.log(JSON.stringify({ rows, row_groups: Number(groups), writer: `DuckDB ${version}` }));
