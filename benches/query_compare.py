#!/usr/bin/env python3
"""Questions over a store, side by side in one run: `auditlake sql -c` (whole process, as a user
runs it) against `duckdb -c` reading the same Parquet files with hive partitioning, and jq over the
raw log when one is given. Prints a Markdown table of median wall times and ratios.

    benches/query_compare.py STORE [--log RAW.jsonl] [--runs 5] [--hour 2026-03-19T10] [--day 2026-03-19]

The auditlake binary is target/release/auditlake (build it first); duckdb comes from
`pip install duckdb-cli`.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd, runs):
    times = []
    for _ in range(runs):
        start = time.monotonic()
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if p.returncode != 0:
            sys.exit(f"failed: {cmd}\n{p.stderr.decode()}")
        times.append(time.monotonic() - start)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("--log")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--hour", default="2026-03-19T10")
    ap.add_argument("--day", default="2026-03-19")
    ap.add_argument("--jq-runs", type=int, default=1)
    a = ap.parse_args()
    al = os.path.join(ROOT, "target/release/auditlake")
    h0 = f"{a.hour}:00:00Z"
    h1 = f"{a.hour[:11]}{int(a.hour[11:13]) + 1:02d}:00:00Z"
    d0 = f"{a.day}T00:00:00Z"
    d1 = f"{a.day}T23:59:59.999999Z"
    queries = {
        "secrets since T": (
            f"SELECT user_name, verb, name, namespace FROM audit_events WHERE resource = 'secrets' AND ts > '{d0}'",
            f'select(.objectRef.resource == "secrets" and .requestReceivedTimestamp > "{d0}") | {{user: .user.username, verb: .verb, secret: .objectRef.name, ns: .objectRef.namespace}}',
        ),
        "403s": (
            "SELECT user_name, verb, resource FROM audit_events WHERE response_code = 403",
            'select(.responseStatus.code == 403) | {user: .user.username, verb: .verb, resource: .objectRef.resource}',
        ),
        "pod exec": (
            "SELECT user_name, name, namespace FROM audit_events WHERE resource = 'pods' AND subresource = 'exec'",
            'select(.objectRef.resource == "pods" and .objectRef.subresource == "exec") | {user: .user.username, pod: .objectRef.name, ns: .objectRef.namespace}',
        ),
        "RBAC changes": (
            "SELECT * FROM audit_events WHERE api_group = 'rbac.authorization.k8s.io' AND verb NOT IN ('get', 'list', 'watch')",
            'select(.objectRef.apiGroup == "rbac.authorization.k8s.io" and .verb != "get" and .verb != "list" and .verb != "watch")',
        ),
        "top users": (
            "SELECT user_name, count(*) AS n FROM audit_events GROUP BY user_name ORDER BY n DESC LIMIT 10",
            None,
        ),
        "one hour": (
            f"SELECT verb, count(*) FROM audit_events WHERE ts >= '{h0}' AND ts < '{h1}' GROUP BY verb",
            None,
        ),
        "one day": (
            f"SELECT user_name, count(*) FROM audit_events WHERE ts BETWEEN '{d0}' AND '{d1}' AND resource = 'secrets' GROUP BY user_name",
            None,
        ),
    }
    glob = os.path.join(os.path.abspath(a.store), "*", "*.parquet")
    view = f"CREATE VIEW audit_events AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true);"
    print("| question | auditlake (s) | DuckDB over Parquet (s) | auditlake vs DuckDB | jq over JSON (s) | auditlake vs jq |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (sql, jqf) in queries.items():
        t_al = timed([al, "--store", a.store, "sql", "--format", "csv", "-c", sql], a.runs)
        t_dd = timed(["duckdb", "-csv", "-c", view + sql], a.runs)
        jq_cell, jq_ratio = "", ""
        if a.log and jqf:
            t_jq = timed(["jq", "-c", jqf, a.log], a.jq_runs)
            jq_cell, jq_ratio = f"{t_jq:.2f}", f"{t_jq / t_al:.0f}x faster"
        ratio = t_dd / t_al
        verdict = f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"
        print(f"| {name} | {t_al:.3f} | {t_dd:.3f} | {verdict} | {jq_cell} | {jq_ratio} |", flush=True)
    print(f"\nmedian of {a.runs} whole-process runs each; store {a.store}")


if __name__ == "__main__":
    main()
