#!/usr/bin/env bash
# Load on `auditlake serve` like the apiserver's webhook backend makes it (crates/cli/examples/serve_load.rs):
# EventLists of 400 events from SENDERS concurrent senders over HTTPS with a client certificate, on loopback,
# for SECONDS. Prints events/s acknowledged, p50/p99 acknowledgement latency, the server's RSS each second and
# the fsync cost. Both the server and the senders run on this machine: the figures include the senders' CPU.
#
#   benches/serve_load.sh [SECONDS] [SENDERS]      (defaults 30 and 10; SKIP_BUILD=1 to reuse the binaries)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_=${1:-30}
SENDERS=${2:-10}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release -p auditlake-cli --bin auditlake --example serve_load
fi
WORK=${WORK:-$(mktemp -d)}
echo "auditlake $(git rev-parse --short HEAD); $(nproc) cores; work dir $WORK"
# glibc's per-thread malloc arenas make the receiver's RSS grow with the threads that parse and flush
# (docs/deploy.md, "Memory"): deployed with MALLOC_ARENA_MAX=2, measured so here unless told otherwise.
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}
echo "MALLOC_ARENA_MAX=$MALLOC_ARENA_MAX"
"$TARGET/release/examples/serve_load" "$TARGET/release/auditlake" "$WORK/store" "$SECONDS_" "$SENDERS"
