#!/usr/bin/env bash
# Ingest, side by side in one run on one machine: auditlake vs DuckDB (JSON -> hive-partitioned
# Parquet) vs gzip, on the same generated file. Prints a Markdown table with ratios to DuckDB.
#
#   benches/ingest_compare.sh [EVENTS] [DAYS]      (default 1000000 events over 1 day)
#
# Needs: a release build (built here), python3, `pip install duckdb-cli` (installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
DAYS=${2:-1}
RUNS=${RUNS:-3}
WORK=${WORK:-$(mktemp -d /tmp/auditlake-bench.XXXXXX)}
command -v duckdb >/dev/null 2>&1 || pip install -q duckdb-cli
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin auditlake >&2
A=${CARGO_TARGET_DIR:-$PWD/target}/release/auditlake
M="python3 $PWD/benches/measure.py"
LOG=$WORK/audit.log
[ -f "$LOG" ] || $A gen --events "$EVENTS" --days "$DAYS" --seed 42 --end 2026-03-20T00:00:00Z --out "$LOG"
BYTES=$(stat -c %s "$LOG")
echo "input: $EVENTS events, $BYTES bytes of JSON lines, $(nproc) cores" >&2

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }
du_bytes() { find "$1" -name '*.parquet' -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }

declare -A WALL RSS DISK
run_tool() { # name, command...
  local name=$1; shift
  local walls=() rsss=()
  for i in $(seq "$RUNS"); do
    rm -rf "$WORK/out-$name"; mkdir -p "$WORK/out-$name"
    local m
    $M "$@" >/dev/null 2>"$WORK/err-$name" || { cat "$WORK/err-$name" >&2; exit 1; }
    m=$(tail -1 "$WORK/err-$name")
    walls+=("$(echo "$m" | field wall_s)"); rsss+=("$(echo "$m" | field peak_rss_mib)")
  done
  WALL[$name]=$(printf '%s\n' "${walls[@]}" | median)
  RSS[$name]=$(printf '%s\n' "${rsss[@]}" | median)
}

run_tool auditlake $A --store "$WORK/out-auditlake" ingest "$LOG"
DISK[auditlake]=$(du_bytes "$WORK/out-auditlake")
SQL="SET preserve_insertion_order=false; COPY (SELECT *, strftime(CAST(requestReceivedTimestamp AS TIMESTAMP), '%Y-%m-%d') AS date FROM read_json('$LOG', format='newline_delimited', sample_size=-1)) TO '$WORK/out-duckdb' (FORMAT parquet, PARTITION_BY (date), OVERWRITE_OR_IGNORE);"
run_tool duckdb duckdb -c "$SQL"
DISK[duckdb]=$(du_bytes "$WORK/out-duckdb")
# DuckDB's default sampling cannot type this data (later rows have keys the sample lacked), so the
# reference above infers over the whole file. A second, cheaper setup keeps nested objects as JSON
# text, as auditlake does for bodies: reported beside it, not used for the ratios.
SQL_FLAT="${SQL/sample_size=-1/maximum_depth=1}"
SQL_FLAT="${SQL_FLAT//out-duckdb/out-duckdb_flat}"
run_tool duckdb_flat duckdb -c "$SQL_FLAT"
DISK[duckdb_flat]=$(du_bytes "$WORK/out-duckdb_flat")
run_tool gzip sh -c "gzip -6 -c '$LOG' > '$WORK/out-gzip/audit.log.gz'"
DISK[gzip]=$(stat -c %s "$WORK/out-gzip/audit.log.gz")

echo
echo "| tool | events/s | peak RSS (MiB) | bytes/event on disk | events/s vs DuckDB | RSS vs DuckDB | bytes vs DuckDB | events/s vs DuckDB flat | RSS vs DuckDB flat |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for t in auditlake duckdb duckdb_flat gzip; do
  python3 - "$t" "${WALL[$t]}" "${RSS[$t]}" "${DISK[$t]}" "${WALL[duckdb]}" "${RSS[duckdb]}" "${DISK[duckdb]}" \
    "${WALL[duckdb_flat]}" "${RSS[duckdb_flat]}" "$EVENTS" <<'PY'
import sys
t, w, r, d, wd, rd, dd, wf, rf, n = sys.argv[1], *map(float, sys.argv[2:])
eps, epsd, epsf = n / w, n / wd, n / wf
print(f"| {t} | {eps:,.0f} | {r:,.0f} | {d/n:.1f} | {eps/epsd:.2f}x | {r/rd:.2f}x | {d/dd:.2f}x | {eps/epsf:.2f}x | {r/rf:.2f}x |")
PY
done
echo
# The issue's ingest target is against DuckDB's cheapest setup: one line that says where it stands.
python3 - "${WALL[auditlake]}" "${RSS[auditlake]}" "${WALL[duckdb_flat]}" "${RSS[duckdb_flat]}" <<'PY'
import sys
w, r, wf, rf = map(float, sys.argv[1:])
print(f"auditlake vs DuckDB's cheapest setup (maximum_depth=1): {wf / w:.2f}x its events/s at {r / rf:.2f}x its peak memory")
PY
echo "duckdb: read_json(sample_size=-1) -> PARTITION_BY (date); duckdb_flat: read_json(maximum_depth=1), nested objects kept as JSON"
echo "median of $RUNS runs; $EVENTS events ($((BYTES / EVENTS)) bytes/event of JSON) over $DAYS day(s); work dir $WORK"
