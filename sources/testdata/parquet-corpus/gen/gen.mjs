// Writes the Parquet corpus of convpipe's sources package (see ../README.md):
// one base table of orders, written by DuckDB, Polars and arrow-rs (through
// parquet-wasm) with several layouts, and the rows every file must read as
// (<name>.json, in the form sources renders values). Each file is read back
// with hyparquet, an independent reader, and compared with those rows
// before it is kept. The Go writers are in ../gogen, a Go module of its
// own that this script runs (`go run .`): it needs Node 20 and Go. The
// pinned nodejs-polars-linux-x64-gnu is Polars' build for linux-x64.
//
//   cd sources/testdata/parquet-corpus/gen && npm ci && npm run gen
import { DuckDBInstance } from '@duckdb/node-api';
import pl from 'nodejs-polars';
import * as pw from 'parquet-wasm';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import zlib from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(here, '..');
const tmp = fs.mkdtempSync(path.join(out, '.tmp-'));
const manifest = [];

// rng is a small deterministic generator (mulberry32), so that the corpus
// is the same on every run.
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const names = ['Zoë Ångström', 'Jürgen Groß', 'Łukasz Wróbel', '東京 太郎', 'Ñandú S.A.', 'O\'Brien, "Jr"', 'plain ascii'];
const skus = ['SKU-1', 'SKU-22', 'ÉCLAIR-3', 'SKU-4444'];

const pad = (n, w) => String(n).padStart(w, '0');

// decimal renders the integer u (a BigInt) with scale digits after the
// point, as sources does.
function decimal(u, scale) {
  const neg = u < 0n;
  let s = (neg ? -u : u).toString();
  if (scale > 0) {
    s = s.padStart(scale + 1, '0');
    s = s.slice(0, s.length - scale) + '.' + s.slice(s.length - scale);
  }
  return (neg ? '-' : '') + s;
}

// wall renders a time of nanos (BigInt) since 1970 as 2006-01-02T15:04:05
// with as many fractional digits as needed; utc adds the Z.
function wall(nanos, utc) {
  const sec = nanos / 1000000000n - (nanos % 1000000000n < 0n ? 1n : 0n);
  const frac = nanos - sec * 1000000000n;
  const d = new Date(Number(sec) * 1000);
  let s = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}T` +
    `${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}`;
  if (frac > 0n) s += '.' + pad(frac, 9).replace(/0+$/, '');
  return s + (utc ? 'Z' : '');
}

// baseRows makes n order rows: every column is null in some rows.
function baseRows(n) {
  const r = rng(13);
  const rows = [];
  const t0 = 1793484000n; // 2026-11-01T00:00:00Z, seconds
  for (let i = 0; i < n; i++) {
    const nul = (k) => i % k === k - 1;
    const secs = t0 + BigInt(i * 37 + Math.floor(r() * 30));
    const micros = secs * 1000000n + BigInt(Math.floor(r() * 1000000));
    const nanos = micros * 1000n + BigInt(Math.floor(r() * 1000));
    const millis = secs * 1000n + BigInt(Math.floor(r() * 1000));
    const items = [];
    for (let k = 0; k < i % 4; k++) {
      items.push({ sku: skus[(i + k) % skus.length], name: names[(i * 3 + k) % names.length], qty: 1 + k, price: BigInt(99 + i * 7 + k * 1000) });
    }
    rows.push({
      order_id: `O-${100000 + Math.floor(i / 3)}`,
      click_id: nul(7) ? null : `clk-${Math.floor(r() * 1e9).toString(36)}`,
      customer: nul(11) ? null : names[i % names.length],
      qty: nul(13) ? null : (i % 50) - 5,
      big: nul(17) ? null : BigInt(i) * 1000000007n - 5000000000000n,
      price: nul(5) ? null : Math.round(r() * 100000) / 8 - 1000,
      weight: nul(9) ? null : (i % 400) / 4,
      paid: nul(6) ? null : r() < 0.5,
      amount: nul(8) ? null : BigInt((i * 137) % 100000 - 20000), // DECIMAL(9,2)
      total: nul(10) ? null : BigInt(i) * 123456789n - 999999999n, // DECIMAL(18,4)
      big_dec: nul(12) ? null : BigInt(i) * 98765432109876543210n - 10n ** 25n, // DECIMAL(38,6)
      order_date: nul(14) ? null : Number((secs / 86400n) - 30n + BigInt(i % 60)),
      event_utc: nul(15) ? null : micros, // TIMESTAMP(MICROS, adjusted to UTC)
      event_local: nul(16) ? null : micros, // TIMESTAMP(MICROS), wall time
      event_ms: nul(18) ? null : millis,
      event_ns: nul(19) ? null : nanos,
      items: nul(20) ? null : items,
    });
  }
  return rows;
}

// columns describes the base table: DuckDB type, the JSON value DuckDB
// reads, and the value sources must render.
const columns = {
  order_id: ['VARCHAR', (v) => v, (v) => v],
  click_id: ['VARCHAR', (v) => v, (v) => v],
  customer: ['VARCHAR', (v) => v, (v) => v],
  qty: ['INTEGER', (v) => v, (v) => String(v)],
  big: ['BIGINT', (v) => v.toString(), (v) => v.toString()],
  price: ['DOUBLE', (v) => v, (v) => String(v)],
  weight: ['FLOAT', (v) => v, (v) => String(v)],
  paid: ['BOOLEAN', (v) => v, (v) => String(v)],
  amount: ['DECIMAL(9,2)', (v) => decimal(v, 2), (v) => decimal(v, 2)],
  total: ['DECIMAL(18,4)', (v) => decimal(v, 4), (v) => decimal(v, 4)],
  big_dec: ['DECIMAL(38,6)', (v) => decimal(v, 6), (v) => decimal(v, 6)],
  order_date: ['DATE', (v) => wall(BigInt(v) * 86400000000000n, false).slice(0, 10), (v) => wall(BigInt(v) * 86400000000000n, false).slice(0, 10)],
  event_utc: ['TIMESTAMPTZ', (v) => wall(v * 1000n, true), (v) => wall(v * 1000n, true)],
  event_local: ['TIMESTAMP', (v) => wall(v * 1000n, false).replace('T', ' '), (v) => wall(v * 1000n, false)],
  event_ms: ['TIMESTAMP_MS', (v) => wall(v * 1000000n, false).replace('T', ' '), (v) => wall(v * 1000000n, false)],
  event_ns: ['TIMESTAMP_NS', (v) => wall(v, false).replace('T', ' '), (v) => wall(v, false)],
  items: ['STRUCT(sku VARCHAR, name VARCHAR, qty INTEGER, price DECIMAL(9,2))[]',
    (v) => v.map((it) => ({ ...it, price: decimal(it.price, 2) })),
    (v) => JSON.stringify(v.map((it) => ({ ...it, price: decimal(it.price, 2) })))],
};

// expected renders rows as sources must read them: one array of strings
// (null for a null) per row, in the order of cols.
function expected(rows, cols) {
  return rows.map((row) => cols.map((c) => (row[c] === null ? null : columns[c][2](row[c]))));
}

// loadBase writes rows as JSON lines and loads them into DuckDB as base.
async function loadBase(con, rows) {
  const p = path.join(tmp, 'base.jsonl');
  fs.writeFileSync(p, rows.map((row) => JSON.stringify(Object.fromEntries(
    Object.entries(row).map(([k, v]) => [k, v === null ? null : columns[k][1](v)])))).join('\n') + '\n');
  const spec = Object.entries(columns).map(([k, [t]]) => `'${k}': '${t}'`).join(', ');
  await con.run(`SET TimeZone = 'UTC'`);
  await con.run('SET threads = 1');
  await con.run(`CREATE TABLE base AS SELECT * FROM read_json('${p}', columns = {${spec}}, format = 'newline_delimited')`);
}

// keep records a written file and the rows it must read as: the rows
// file <set>.rows.json.gz, shared by the files written from one set of
// rows.
const written = new Set();
function keep(name, writer, how, set, cols, want) {
  const file = path.join(out, name + '.parquet');
  const size = fs.statSync(file).size;
  if (size >= 1 << 20) throw new Error(`${name}: ${size} bytes, over 1 MiB`);
  const rowsFile = `${set}.rows.json.gz`;
  if (!written.has(rowsFile)) {
    const text = '{"header": ' + JSON.stringify(cols) + ',\n "rows": [\n' + want.map((r) => '  ' + JSON.stringify(r)).join(',\n') + '\n]}\n';
    fs.writeFileSync(path.join(out, rowsFile), zlib.gzipSync(text, { level: 9 }));
    written.add(rowsFile);
  }
  const entry = { file: name + '.parquet', rows_file: rowsFile, columns: cols, writer, how, rows: want.length, bytes: size };
  // sources reads a list column as one JSON array; the test compares it
  // with the rows' items as JSON, every scalar as text.
  manifest.push(entry);
}

const version = (pkg) => JSON.parse(fs.readFileSync(path.join(here, 'node_modules', pkg, 'package.json'))).version;

// render turns a value as hyparquet returns it (with the parsers below)
// into the form sources renders, using the column's schema element.
function render(v, el) {
  if (v === null || v === undefined) return null;
  const lt = el.logical_type;
  if (el.converted_type === 'DECIMAL' || lt?.type === 'DECIMAL') return v; // already exact: see decimalParsers
  if (lt?.type === 'TIMESTAMP' || el.converted_type?.startsWith('TIMESTAMP') || el.type === 'INT96') {
    return wall(v, lt ? lt.isAdjustedToUTC : true);
  }
  if (lt?.type === 'DATE' || el.converted_type === 'DATE') return wall(BigInt(v) * 86400000000000n, false).slice(0, 10);
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return JSON.stringify(v.map((it) => ({ ...it, price: it.price })));
  return String(v);
}

// Parsers that keep every digit: timestamps as nanoseconds (BigInt).
const parsers = {
  timestampFromMilliseconds: (v) => BigInt(v) * 1000000n,
  timestampFromMicroseconds: (v) => BigInt(v) * 1000n,
  timestampFromNanoseconds: (v) => BigInt(v),
  dateFromDays: (v) => v,
};

// verify reads file with hyparquet and compares every value with want.
// Decimals come back from hyparquet as floats: they are compared at the
// precision a double has (the Go corpus test compares them exactly).
async function verify(name, cols, want) {
  const buf = fs.readFileSync(path.join(out, name + '.parquet'));
  const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const meta = parquetMetadata(file);
  const leaf = Object.fromEntries(meta.schema.map((el) => [el.name, el]));
  const got = await parquetReadObjects({ file, compressors, parsers, columns: cols.filter((c) => c !== 'items') });
  for (let i = 0; i < want.length; i++) {
    for (const [j, c] of cols.entries()) {
      if (c === 'items') continue;
      const el = leaf[c];
      let g = render(got[i][c], el);
      let w = want[i][j];
      if (g !== null && (el.converted_type === 'DECIMAL' || el.logical_type?.type === 'DECIMAL')) {
        g = Number(g).toPrecision(12);
        w = Number(w).toPrecision(12);
      }
      if (g !== w) throw new Error(`${name}: row ${i + 1} column ${c}: hyparquet reads ${g}, want ${w}`);
    }
  }
  return meta;
}

function describe(meta) {
  const codecs = new Set(), encodings = new Set();
  for (const rg of meta.row_groups) {
    for (const c of rg.columns) {
      codecs.add(c.meta_data.codec);
      c.meta_data.encodings.forEach((e) => encodings.add(e));
    }
  }
  return `${meta.row_groups.length} row groups; ${[...codecs].join(', ')}; ${[...encodings].join(', ')}`;
}

async function main() {
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  const duck = `DuckDB ${(await (await con.runAndReadAll('SELECT version()')).getRows())[0][0]} (@duckdb/node-api ${version('@duckdb/node-api')})`;

  // The file of issue 13: 30,000 nullable rows in 8 row groups.
  const big = baseRows(30000);
  await loadBase(con, big);
  const narrow = ['order_id', 'event_utc', 'click_id', 'amount'];
  await con.run(`COPY (SELECT ${narrow.join(', ')} FROM base) TO '${out}/duckdb_nullable_8rg.parquet' (FORMAT parquet, ROW_GROUP_SIZE 4096)`);
  await finish('duckdb_nullable_8rg', duck, 'COPY … (FORMAT parquet, ROW_GROUP_SIZE 4096)', 'nullable30000', narrow, expected(big, narrow));
  await con.run('DROP TABLE base');

  const rows = baseRows(5000);
  await loadBase(con, rows);
  const flat = Object.keys(columns).filter((c) => c !== 'items');
  for (const [name, opts] of [
    ['duckdb_snappy_v1', "COMPRESSION snappy"],
    ['duckdb_zstd_v2', "COMPRESSION zstd, PARQUET_VERSION v2"],
    ['duckdb_gzip_v1', "COMPRESSION gzip"],
    ['duckdb_uncompressed_v2', "COMPRESSION uncompressed, PARQUET_VERSION v2"],
  ]) {
    await con.run(`COPY (SELECT ${flat.join(', ')} FROM base) TO '${out}/${name}.parquet' (FORMAT parquet, ROW_GROUP_SIZE 2048, ${opts})`);
    await finish(name, duck, `COPY … (FORMAT parquet, ROW_GROUP_SIZE 2048, ${opts})`, 'flat5000', flat, expected(rows, flat));
  }
  // Small files for the corruption test (sources/bad_test.go), which
  // damages them at many bytes: many small pages, nulls in every column.
  const tiny = rows.slice(0, 300);
  await con.run(`COPY (SELECT ${flat.join(', ')} FROM base LIMIT 300) TO '${out}/duckdb_tiny_v2.parquet' (FORMAT parquet, COMPRESSION zstd, PARQUET_VERSION v2)`);
  await finish('duckdb_tiny_v2', duck, 'COPY … LIMIT 300 (FORMAT parquet, COMPRESSION zstd, PARQUET_VERSION v2)', 'tiny300', flat, expected(tiny, flat));
  const nested = ['order_id', 'event_utc', 'click_id', 'items'];
  await con.run(`COPY (SELECT ${nested.join(', ')} FROM base) TO '${out}/duckdb_items.parquet' (FORMAT parquet, ROW_GROUP_SIZE 2048)`);
  await finish('duckdb_items', duck, 'COPY … (FORMAT parquet, ROW_GROUP_SIZE 2048): items LIST<STRUCT<sku, name, qty, price DECIMAL(9,2)>>', 'items5000', nested, expected(rows, nested));
  // The warehouse shape: one row per order, its items nested (DuckDB,
  // Spark and BigQuery exports), zstd, data page v2; and a small one for
  // the case folder sources/testdata/cases/parquet-nested-items.
  const perOrder = rows.map((row, i) => ({ ...row, order_id: `W-${pad(i, 5)}` }));
  const orderSQL = `SELECT printf('W-%05d', rowid) AS order_id, event_utc, click_id, items FROM base`;
  await con.run(`COPY (${orderSQL}) TO '${out}/duckdb_orders_items_v2.parquet' (FORMAT parquet, ROW_GROUP_SIZE 1000, COMPRESSION zstd, PARQUET_VERSION v2)`);
  await finish('duckdb_orders_items_v2', duck, 'COPY (one row per order) … (FORMAT parquet, ROW_GROUP_SIZE 1000, COMPRESSION zstd, PARQUET_VERSION v2)', 'orders_items5000', nested, expected(perOrder, nested));
  const caseDir = path.resolve(out, '..', 'cases', 'parquet-nested-items', 'input');
  fs.mkdirSync(caseDir, { recursive: true });
  await con.run(`COPY (${orderSQL} LIMIT 40) TO '${caseDir}/orders.parquet' (FORMAT parquet, ROW_GROUP_SIZE 16)`);

  // arrow-rs (parquet-wasm) and Polars rewrite DuckDB's snappy file.
  const src = fs.readFileSync(path.join(out, 'duckdb_snappy_v1.parquet'));
  const arrow = `arrow-rs (parquet-wasm ${version('parquet-wasm')})`;
  for (const [name, how, props] of [
    ['arrow_zstd_v2_plain', 'writer version 2, zstd, dictionary off, 1000-row groups',
      new pw.WriterPropertiesBuilder().setWriterVersion(pw.WriterVersion.V2).setCompression(pw.Compression.ZSTD).setDictionaryEnabled(false).setMaxRowGroupSize(1000)],
    ['arrow_gzip_v1_dict', 'writer version 1, gzip, dictionary on, 700-row groups, 4 KiB pages',
      new pw.WriterPropertiesBuilder().setWriterVersion(pw.WriterVersion.V1).setCompression(pw.Compression.GZIP).setDictionaryEnabled(true).setMaxRowGroupSize(700).setDataPageSizeLimit(4096)],
  ]) {
    const table = pw.readParquet(new Uint8Array(src));
    fs.writeFileSync(path.join(out, name + '.parquet'), pw.writeParquet(table, props.build()));
    await finish(name, arrow, 'readParquet(duckdb_snappy_v1) then writeParquet: ' + how, 'flat5000', flat, expected(rows, flat));
  }
  fs.writeFileSync(path.join(out, 'arrow_tiny_v2.parquet'), pw.writeParquet(pw.readParquet(new Uint8Array(fs.readFileSync(path.join(out, 'duckdb_tiny_v2.parquet')))),
    new pw.WriterPropertiesBuilder().setWriterVersion(pw.WriterVersion.V2).setCompression(pw.Compression.SNAPPY).setMaxRowGroupSize(100).setDataPageSizeLimit(256).build()));
  await finish('arrow_tiny_v2', arrow, 'readParquet(duckdb_tiny_v2) then writeParquet: writer version 2, snappy, dictionary on, 100-row groups, 256-byte pages', 'tiny300', flat, expected(tiny, flat));
  // arrow-rs and Polars rewrite the nested items too: their own list
  // layouts (element names, large lists).
  fs.writeFileSync(path.join(out, 'arrow_items.parquet'), pw.writeParquet(pw.readParquet(new Uint8Array(fs.readFileSync(path.join(out, 'duckdb_items.parquet')))),
    new pw.WriterPropertiesBuilder().setWriterVersion(pw.WriterVersion.V2).setCompression(pw.Compression.SNAPPY).setMaxRowGroupSize(1500).build()));
  await finish('arrow_items', arrow, 'readParquet(duckdb_items) then writeParquet: writer version 2, snappy, 1500-row groups', 'items5000', nested, expected(rows, nested));
  const polars = `Polars (nodejs-polars ${version('nodejs-polars')})`;
  // Polars has no DECIMAL(38,6) writer that round-trips here: it keeps the
  // decimals it reads.
  for (const [name, compression, rowGroupSize] of [['polars_zstd', 'zstd', 1000], ['polars_snappy', 'snappy', 600]]) {
    await pl.scanParquet(path.join(out, 'duckdb_snappy_v1.parquet')).sinkParquet(path.join(out, name + '.parquet'), { compression, rowGroupSize }).collect();
    await finish(name, polars, `scanParquet(duckdb_snappy_v1).sinkParquet({compression: ${compression}, rowGroupSize: ${rowGroupSize}})`, 'flat5000', flat, expected(rows, flat));
  }

  await pl.scanParquet(path.join(out, 'duckdb_items.parquet')).sinkParquet(path.join(out, 'polars_items.parquet'), { compression: 'zstd', rowGroupSize: 1200 }).collect();
  await finish('polars_items', polars, 'scanParquet(duckdb_items).sinkParquet({compression: zstd, rowGroupSize: 1200})', 'items5000', nested, expected(rows, nested));

  // The Go writers read the same rows (../gogen, a module of its own).
  fs.writeFileSync(path.join(tmp, 'rows.json'), JSON.stringify({ columns: flat, rows: expected(rows, flat) }));
  execFileSync('go', ['run', '.', '-rows', path.join(tmp, 'rows.json'), '-out', out], { cwd: path.join(here, '..', 'gogen'), stdio: 'inherit' });
  for (const m of JSON.parse(fs.readFileSync(path.join(tmp, 'rows.json.manifest'))).files) {
    const name = m.file.replace('.parquet', '');
    await finish(name, m.writer, m.how, name, m.columns, JSON.parse(fs.readFileSync(m.rows_json)).rows);
  }

  fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  fs.rmSync(tmp, { recursive: true });
}

// finish checks a written file with hyparquet and records it.
async function finish(name, writer, how, set, cols, want) {
  const meta = await verify(name, cols, want);
  keep(name, writer, `${how} [${describe(meta)}]`, set, cols, want);
  console.log(`${name}: ${want.length} rows, ${describe(meta)}`);
}

main().catch((e) => {
  console.error(e);
  fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(1);
});
