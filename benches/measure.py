#!/usr/bin/env python3
"""Runs a command; prints its wall time (s) and peak RSS (MiB) as JSON on the last line of stderr.

Usage: measure.py CMD [ARGS...]   (the command's own output passes through)
"""
import json
import resource
import subprocess
import sys
import time

start = time.monotonic()
proc = subprocess.run(sys.argv[1:])
wall = time.monotonic() - start
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"wall_s": round(wall, 3), "peak_rss_mib": round(peak_kib / 1024, 1), "rc": proc.returncode}), file=sys.stderr)
sys.exit(proc.returncode)
