#!/usr/bin/env python3
"""Bytes per event on disk, by column, for a store: where the storage goes.

    benches/column_bytes.py STORE

Reads only the Parquet footers (DuckDB's parquet_metadata; `pip install duckdb`). Prints a Markdown
table: compressed and uncompressed bytes per event for each column, and the footers' share.
"""
import glob
import os
import sys

import duckdb

store = sys.argv[1]
files = glob.glob(os.path.join(store, "*", "*.parquet"))
pattern = os.path.join(store, "*", "*.parquet")
con = duckdb.connect()
n = con.sql(f"SELECT sum(num_rows) FROM parquet_file_metadata('{pattern}')").fetchall()[0][0]
rows = con.sql(
    f"""SELECT path_in_schema, sum(total_compressed_size), sum(total_uncompressed_size)
        FROM parquet_metadata('{pattern}') GROUP BY 1 ORDER BY 2 DESC"""
).fetchall()
total = sum(os.path.getsize(f) for f in files)
print(f"{n} events in {len(files)} files, {total / 1e6:.1f} MB, {total / n:.1f} bytes/event\n")
print("| column | bytes/event (zstd) | bytes/event (uncompressed) | share |")
print("|---|---:|---:|---:|")
for col, b, u in rows:
    print(f"| {col} | {b / n:.2f} | {u / n:.2f} | {100 * b / total:.1f}% |")
rest = total - sum(r[1] for r in rows)
print(f"| (footers, page indexes) | {rest / n:.2f} | | {100 * rest / total:.1f}% |")
