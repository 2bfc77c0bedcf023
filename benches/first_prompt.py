#!/usr/bin/env python3
"""Time from starting `auditlake sql` (the REPL, in a pseudo-terminal) to its first prompt.

    benches/first_prompt.py STORE [--runs 7]
    benches/first_prompt.py --make DIR      # builds DIR/store: 90 days, 24 files per day (2160 files)

--make generates 90 days of events (auditlake gen) and ingests them in 24 slices, so that every day
holds 24 files, as a store fed by hourly ingest runs and never compacted would. The binary is
target/release/auditlake.
"""
import argparse
import os
import pty
import select
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target/release/auditlake")


def once(store):
    start = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(BIN, [BIN, "--store", store, "sql"])
    buf = b""
    while b"auditlake> " not in buf:
        ready, _, _ = select.select([fd], [], [], 30)
        if not ready:
            sys.exit(f"no prompt after 30 s; output so far: {buf!r}")
        buf += os.read(fd, 4096)
    took = time.monotonic() - start
    os.write(fd, b"\\q\n")
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass
    os.waitpid(pid, 0)
    return took


def make(d):
    os.makedirs(d, exist_ok=True)
    log = os.path.join(d, "90d.log")
    store = os.path.join(d, "store")
    subprocess.run([BIN, "gen", "--events", "1000000", "--days", "90", "--seed", "7", "--out", log], check=True)
    lines = open(log, "rb").readlines()
    # Slice i holds every 24th event from offset i, so each slice covers all 90 days.
    for i in range(24):
        part = os.path.join(d, f"slice-{i:02d}.log")
        with open(part, "wb") as f:
            f.writelines(lines[i::24])
        subprocess.run([BIN, "--store", store, "ingest", part], check=True, stdout=subprocess.DEVNULL)
        os.unlink(part)
    files = sum(len([f for f in fs if f.endswith(".parquet")]) for _, _, fs in os.walk(store))
    print(f"built {store}: {files} files")
    return store


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("store", nargs="?")
    ap.add_argument("--make", metavar="DIR")
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    store = make(a.make) if a.make else a.store
    if not store:
        ap.error("give a STORE or --make DIR")
    days = len([e for e in os.listdir(store) if e.startswith("date=")])
    files = sum(len([f for f in fs if f.endswith(".parquet")]) for _, _, fs in os.walk(store))
    t = [once(store) for _ in range(a.runs)]
    print(
        f"REPL first prompt on {store} ({days} days, {files} files): "
        f"median {statistics.median(t) * 1000:.1f} ms, max {max(t) * 1000:.1f} ms over {a.runs} runs"
    )


if __name__ == "__main__":
    main()
