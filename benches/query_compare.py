#!/usr/bin/env python3
"""Questions over a store, side by side in one run. Each question is asked of:

- auditlake: `auditlake sql -c` (the whole process, as a user runs it);
- DuckDB over the same Parquet files (`read_parquet(..., hive_partitioning = true)`);
- DuckDB over the raw JSON log (`read_json` with the columns the questions use), with --log;
- jq over the raw JSON log, with --log: the seed's filters, run on the first --jq-lines lines of the
  log and scaled by (lines in the log / lines read), since jq's time is linear in its input.

The SQL is the same text for auditlake and both DuckDB rows: for DuckDB, `audit_events` is a view
with auditlake's column names, and the compliance control is auditlake's own view file
(sql/compliance/...), with the `audit_requests` view it reads. Each figure is the median of --runs
whole-process runs (--json-runs and --jq-runs for the slow ones); auditlake's and DuckDB's row counts are compared on the first run and a
mismatch stops the script.

    benches/query_compare.py STORE [--log RAW.jsonl] [--runs 5] [--hour 2026-03-19T10] [--day 2026-03-19]

The auditlake binary is target/release/auditlake, or $CARGO_TARGET_DIR/release/auditlake (build it first); duckdb comes from
`pip install duckdb-cli`, jq from `apt-get install jq`.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTROL = "sql/compliance/pci-dss/pci_10_2_1_4_invalid_access.sql"


def run(cmd, capture=False):
    start = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE if capture else subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = time.monotonic() - start
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)[:300]}\n{p.stderr.decode()}")
    return took, (p.stdout if capture else None)


def timed(cmd, runs):
    """Median wall time, and the number of output lines of the first run."""
    took, out = run(cmd, capture=True)
    times = [took] + [run(cmd)[0] for _ in range(runs - 1)]
    return statistics.median(times), out.count(b"\n")


def view_sql(path):
    """A shipped view file without its comment header, for DuckDB."""
    text = open(os.path.join(ROOT, path)).read()
    return "\n".join(l for l in text.splitlines() if not l.startswith("--")).strip()


def ratio(other, ours):
    r = other / ours
    return f"{r:.2f}x faster" if r >= 1 else f"{1 / r:.2f}x slower"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("--log", help="the raw JSON-lines log the store was ingested from")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json-runs", type=int, help="runs of DuckDB over the raw JSON (default: --runs)")
    ap.add_argument("--jq-runs", type=int, help="runs of jq (default: --runs)")
    ap.add_argument("--jq-lines", type=int, default=1_000_000, help="jq reads this many lines, scaled")
    ap.add_argument("--hour", default="2026-03-19T10")
    ap.add_argument("--day", default="2026-03-19")
    a = ap.parse_args()
    a.json_runs = a.json_runs or a.runs
    a.jq_runs = a.jq_runs or a.runs
    al = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release/auditlake")
    h0 = f"{a.hour}:00:00Z"
    h1 = f"{a.hour[:11]}{int(a.hour[11:13]) + 1:02d}:00:00Z"
    d0 = f"{a.day}T00:00:00Z"
    d1 = f"{a.day}T23:59:59.999999Z"
    control_view = re.search(r"CREATE VIEW (\w+)", view_sql(CONTROL)).group(1)
    requests = (
        '(.stage == null or .stage == "ResponseComplete" or .stage == "Panic"'
        ' or (.stage == "ResponseStarted" and .responseStatus.code == 401))'
    )
    # name: (SQL, jq arguments after `jq -c`)
    questions = {
        "secrets since T": (
            f"SELECT user_name, verb, name, namespace FROM audit_events WHERE resource = 'secrets' AND ts > '{d0}'",
            [f'select(.objectRef.resource == "secrets" and .requestReceivedTimestamp > "{d0}") | {{user: .user.username, verb: .verb, secret: .objectRef.name, ns: .objectRef.namespace}}'],
        ),
        "403s": (
            "SELECT user_name, verb, resource FROM audit_events WHERE response_code = 403",
            ['select(.responseStatus.code == 403) | {user: .user.username, verb: .verb, resource: .objectRef.resource}'],
        ),
        "pod exec": (
            "SELECT user_name, name, namespace FROM audit_events WHERE resource = 'pods' AND subresource = 'exec'",
            ['select(.objectRef.resource == "pods" and .objectRef.subresource == "exec") | {user: .user.username, pod: .objectRef.name, ns: .objectRef.namespace}'],
        ),
        "RBAC changes": (
            "SELECT * FROM audit_events WHERE api_group = 'rbac.authorization.k8s.io' AND verb NOT IN ('get', 'list', 'watch')",
            ['select(.objectRef.apiGroup == "rbac.authorization.k8s.io" and .verb != "get" and .verb != "list" and .verb != "watch")'],
        ),
        "top users": (
            "SELECT user_name, count(*) AS n FROM audit_events GROUP BY user_name ORDER BY n DESC LIMIT 10",
            ["-n", 'reduce inputs as $e ({}; .[$e.user.username // ""] += 1) | to_entries | sort_by(-.value) | .[:10]'],
        ),
        f"control PCI 10.2.1.4 ({control_view})": (
            f"SELECT * FROM {control_view}",
            [
                f"select({requests} and (.responseStatus.code == 401 or (.responseStatus.code == 403"
                ' and ((.annotations // {})["authorization.k8s.io/decision"] // "forbid") != "allow")))'
                " | {ts: .requestReceivedTimestamp, id: .auditID, user: .user.username, verb: .verb, code: .responseStatus.code}"
            ],
        ),
        "one hour": (
            f"SELECT verb, count(*) AS n FROM audit_events WHERE ts >= '{h0}' AND ts < '{h1}' GROUP BY verb",
            ["-n", f'[inputs | select(.requestReceivedTimestamp >= "{h0}" and .requestReceivedTimestamp < "{h1}") | .verb] | group_by(.) | map({{verb: .[0], n: length}})'],
        ),
        "one day": (
            f"SELECT user_name, count(*) AS n FROM audit_events WHERE ts BETWEEN '{d0}' AND '{d1}' AND resource = 'secrets' GROUP BY user_name",
            ["-n", f'[inputs | select(.requestReceivedTimestamp >= "{d0}" and .requestReceivedTimestamp <= "{d1}" and .objectRef.resource == "secrets") | .user.username] | group_by(.) | map({{user: .[0], n: length}})'],
        ),
    }
    views = view_sql("sql/views/audit_requests.sql") + ";\n" + view_sql(CONTROL) + ";\n"
    glob = os.path.join(os.path.abspath(a.store), "date=*", "*.parquet")
    duck_parquet = f"CREATE VIEW audit_events AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true);\n" + views
    duck_json = None
    jq_input, jq_scale = None, 1.0
    if a.log:
        columns = (
            "{auditID: 'VARCHAR', stage: 'VARCHAR', level: 'VARCHAR', verb: 'VARCHAR', requestURI: 'VARCHAR',"
            " user: 'STRUCT(username VARCHAR, groups VARCHAR[])', sourceIPs: 'VARCHAR[]',"
            " objectRef: 'STRUCT(resource VARCHAR, subresource VARCHAR, namespace VARCHAR, name VARCHAR, apiGroup VARCHAR)',"
            " responseStatus: 'STRUCT(code INTEGER, message VARCHAR)', annotations: 'MAP(VARCHAR, VARCHAR)',"
            " requestReceivedTimestamp: 'TIMESTAMPTZ'}"
        )
        duck_json = (
            "CREATE VIEW audit_events AS SELECT requestReceivedTimestamp AS ts, auditID AS audit_id, stage, level, verb,"
            " requestURI AS request_uri, \"user\".username AS user_name, \"user\".groups AS user_groups,"
            " sourceIPs AS source_ips, objectRef.resource AS resource, objectRef.subresource AS subresource,"
            " objectRef.namespace AS namespace, objectRef.name AS name, objectRef.apiGroup AS api_group,"
            " responseStatus.code AS response_code, responseStatus.message AS response_message,"
            " annotations['authorization.k8s.io/decision'] AS authz_decision,"
            " annotations['authorization.k8s.io/reason'] AS authz_reason, NULL::VARCHAR AS cluster"
            f" FROM read_json('{os.path.abspath(a.log)}', format = 'newline_delimited', columns = {columns});\n"
            + views
        )
        total = int(subprocess.run(["wc", "-l", a.log], capture_output=True, check=True).stdout.split()[0])
        if total > a.jq_lines:
            tmp = tempfile.NamedTemporaryFile(prefix="jq-subset-", suffix=".jsonl", delete=False)
            with open(a.log, "rb") as src:
                for _ in range(a.jq_lines):
                    tmp.write(src.readline())
            tmp.close()
            jq_input, jq_scale = tmp.name, total / a.jq_lines
        else:
            jq_input = a.log
    print(
        "| question | rows | auditlake (s) | DuckDB over Parquet (s) | auditlake vs DuckDB/Parquet"
        " | DuckDB over JSON (s) | auditlake vs DuckDB/JSON | jq over JSON (s) | auditlake vs jq |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, (sql, jq_args) in questions.items():
        t_al, rows_al = timed([al, "--store", a.store, "sql", "--format", "csv", "-c", sql], a.runs)
        t_dd, rows_dd = timed(["duckdb", "-csv", "-c", duck_parquet + sql], a.runs)
        if rows_al != rows_dd:
            sys.exit(f"{name}: auditlake returned {rows_al - 1} rows, DuckDB {rows_dd - 1}")
        cells = [f"{rows_al - 1:,}", f"{t_al:.3f}", f"{t_dd:.3f}", ratio(t_dd, t_al)]
        if duck_json:
            t_dj, rows_dj = timed(["duckdb", "-csv", "-c", duck_json + sql], a.json_runs)
            if rows_dj != rows_al:
                sys.exit(f"{name}: auditlake returned {rows_al - 1} rows, DuckDB over JSON {rows_dj - 1}")
            t_jq = timed(["jq", "-c", *jq_args, jq_input], a.jq_runs)[0] * jq_scale
            cells += [f"{t_dj:.2f}", ratio(t_dj, t_al), f"{t_jq:.1f}", f"{t_jq / t_al:,.0f}x faster"]
        else:
            cells += ["", "", "", ""]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print(f"\nmedian of {a.runs} whole-process runs each (DuckDB over JSON: {a.json_runs}, jq: {a.jq_runs}); store {a.store}")
    if jq_input and jq_scale != 1.0:
        print(f"jq read the first {a.jq_lines:,} lines of {a.log} and its times are scaled by {jq_scale:.2f}")
        os.unlink(jq_input)


if __name__ == "__main__":
    main()
