"""Benchmark: cold start of the testbed control plane (etcd + kube-apiserver, fresh PKI) to `/readyz`.

Every run starts from an empty etcd and new certificates, as each test session does; stop time is
reported too because session teardown pays it. Binaries are built (once) before the first run.
Usage (after `make binaries`): .venv/bin/python benchmarks/bench_control_plane.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from vmgen_testbed.binaries import ensure_binaries
from vmgen_testbed.kube import ControlPlane


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    binaries = ensure_binaries()
    starts, stops = [], []
    for run in range(1, args.runs + 1):
        with ControlPlane(binaries=binaries) as plane:
            starts.append(plane.startup_seconds)
            stopping = time.monotonic()
        stops.append(time.monotonic() - stopping)
        print(f"run {run}: start to /readyz {starts[-1]:.2f} s, stop {stops[-1]:.2f} s", flush=True)
    print(
        f"control plane start: min {min(starts):.2f} s, median {statistics.median(starts):.2f} s "
        f"over {len(starts)} runs; stop: median {statistics.median(stops):.2f} s"
    )


if __name__ == "__main__":
    main()
