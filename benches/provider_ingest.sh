#!/usr/bin/env bash
# Ingest speed of each managed provider's envelope beside the apiserver's own format, in one run:
# the same generated events as native JSON lines, as EKS subscription DATA_MESSAGEs (50 events per
# document, as CloudWatch Logs batches them), as AKS PT1H.json records (the event a JSON string),
# and as GKE LogEntries (mapped, no inner event). Prints a Markdown table with ratios to native.
#
#   benches/provider_ingest.sh [EVENTS]      (default 1000000 events over 1 day)
#
# PROFILE=dev measures the test build (opt-level 1) instead of building a release binary; the
# ratios between formats are what this is for.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
RUNS=${RUNS:-3}
PROFILE=${PROFILE:-release}
WORK=${WORK:-$(mktemp -d /tmp/auditlake-providers.XXXXXX)}
if [ "$PROFILE" = release ]; then
  [ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin auditlake >&2
  A=${CARGO_TARGET_DIR:-$PWD/target}/release/auditlake
else
  [ -n "${SKIP_BUILD:-}" ] || cargo build --bin auditlake >&2
  A=${CARGO_TARGET_DIR:-$PWD/target}/debug/auditlake
fi
M="python3 $PWD/benches/measure.py"
LOG=$WORK/k8s.log
[ -f "$LOG" ] || $A gen --events "$EVENTS" --days 1 --seed 42 --end 2026-03-20T00:00:00Z --out "$LOG"

python3 - "$WORK" <<'EOF'
import json, sys, os
work = sys.argv[1]
def compact(v): return json.dumps(v, separators=(",", ":"))
def grpc(code):
    return {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 503: 14, 504: 4}.get(code, 0 if 100 <= code < 400 else 2)
def gke(e, i):
    o = e.get("objectRef") or {}
    path = (e.get("requestURI") or "/").split("?")[0]
    verb = e.get("verb", "get")
    if o.get("resource") and (path.startswith("/api/") or path.startswith("/apis/")):
        rn = "core/" + path[5:] if path.startswith("/api/") else path[6:]
        g = o.get("apiGroup") or "core"
        g = ".".join(reversed(g.removesuffix(".k8s.io").split("."))) if g != "core" else g
        m = f"io.k8s.{g}.{o.get('apiVersion', 'v1')}.{o['resource']}" + (f".{o['subresource']}" if o.get("subresource") else "") + f".{verb}"
    else:
        rn, m = path.lstrip("/"), f"io.k8s.{verb}"
    rs = e.get("responseStatus") or {}
    p = {"@type": "type.googleapis.com/google.cloud.audit.AuditLog",
         "authenticationInfo": {"principalEmail": (e.get("user") or {}).get("username")},
         "methodName": m, "resourceName": rn, "serviceName": "k8s.io",
         "requestMetadata": {"callerIp": (e.get("sourceIPs") or [None])[0], "callerSuppliedUserAgent": e.get("userAgent")},
         "status": {"code": grpc(rs.get("code", 200))}}
    for a, b in (("requestObject", "request"), ("responseObject", "response")):
        if a in e: p[b] = e[a]
    out = {"protoPayload": p, "insertId": f"ins-{i}",
           "operation": {"id": e.get("auditID"), "producer": "k8s.io", "first": True, "last": True},
           "resource": {"type": "k8s_cluster", "labels": {"cluster_name": "bench", "location": "europe-west1", "project_id": "p"}},
           "timestamp": e.get("requestReceivedTimestamp") or e.get("stageTimestamp"),
           "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity"}
    if isinstance(e.get("annotations"), dict): out["labels"] = e["annotations"]
    return out
rid = "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/BENCH"
with open(f"{work}/k8s.log") as src, open(f"{work}/eks.jsonl", "w") as eks, \
     open(f"{work}/aks.json", "w") as aks, open(f"{work}/gke.json", "w") as gk:
    batch = []
    def flush():
        eks.write(compact({"messageType": "DATA_MESSAGE", "owner": "111122223333", "logGroup": "/aws/eks/bench/cluster",
                           "logStream": "kube-apiserver-audit-0123456789abcdef", "subscriptionFilters": ["audit"],
                           "logEvents": [{"id": str(j), "timestamp": 1, "message": m} for j, m in enumerate(batch)]}) + "\n")
        batch.clear()
    for i, line in enumerate(src):
        line = line.rstrip("\n")
        if not line: continue
        batch.append(line)
        if len(batch) == 50: flush()
        aks.write(compact({"category": "kube-audit", "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
                           "resourceId": rid, "time": "2026-03-19T00:00:00.0000000Z",
                           "properties": {"log": line + "\n", "pod": "kube-apiserver-0", "stream": "stdout"}}) + "\n")
        gk.write(compact(gke(json.loads(line), i)) + "\n")
    if batch: flush()
EOF

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }
declare -A WALL RSS BYTES
for f in k8s:k8s.log eks:eks.jsonl aks:aks.json gke:gke.json; do
  name=${f%%:*}; file=$WORK/${f#*:}
  BYTES[$name]=$(stat -c %s "$file")
  walls=(); rsss=()
  for i in $(seq "$RUNS"); do
    rm -rf "$WORK/store-$name"
    $M $A --store "$WORK/store-$name" ingest --format "$name" --cluster bench "$file" >/dev/null 2>"$WORK/err-$name" || { cat "$WORK/err-$name" >&2; exit 1; }
    m=$(tail -1 "$WORK/err-$name")
    walls+=("$(echo "$m" | field wall_s)"); rsss+=("$(echo "$m" | field peak_rss_mib)")
  done
  WALL[$name]=$(printf '%s\n' "${walls[@]}" | median)
  RSS[$name]=$(printf '%s\n' "${rsss[@]}" | median)
done
echo
echo "$EVENTS events, $(nproc) cores, $PROFILE build, median of $RUNS"
echo
echo "| format | input MB | wall s | events/s | peak RSS MiB | events/s vs k8s |"
echo "|---|---:|---:|---:|---:|---:|"
for t in k8s eks aks gke; do
  python3 -c "
n=$EVENTS; w=${WALL[$t]}; base=${WALL[k8s]}
print(f'| $t | {${BYTES[$t]}/1e6:.0f} | {w:.2f} | {n/w:,.0f} | ${RSS[$t]} | {base/w:.2f}x |')"
done
