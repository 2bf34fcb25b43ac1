"""How long Linux guest sandboxes take: rootfs build/extract, per-VM create, deprovision, teardown.

Run as root from the repository: `.venv/bin/python benchmarks/bench_sandboxes.py [--vms 10]`.
The target is <= 0.5 s per VM create once the rootfs is cached. The extraction is measured into a
scratch directory (the cache is not touched); the build is measured only when the cache is cold.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vmgen_testbed.linux import rootfs
from vmgen_testbed.linux.sandbox import LinuxSandbox, SandboxHost


def timed(label: str, samples: list[float]) -> str:
    return (
        f"{label}: median {statistics.median(samples):.3f} s, min {min(samples):.3f} s, "
        f"max {max(samples):.3f} s (n={len(samples)})"
    )


async def deprovision(sandbox: LinuxSandbox) -> float:
    started = time.monotonic()
    key = sandbox.private_key_path
    process = await asyncio.create_subprocess_exec(
        "ssh",
        "-i",
        str(key),
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={key.parent / 'known_hosts'}",
        f"{sandbox.username}@{sandbox.ip}",
        "sudo waagent -deprovision+user -force",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"deprovision of {sandbox.name} failed: {stderr.decode()}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vms", type=int, default=10, help="sandboxes created one after another")
    parser.add_argument("--parallel", type=int, default=8, help="sandboxes created at once")
    args = parser.parse_args()

    cold = not rootfs.tarball_path().is_file()
    started = time.monotonic()
    rootfs.ensure_rootfs()
    print(f"rootfs {'build (cold cache)' if cold else 'ensure (cached)'}: {time.monotonic() - started:.2f} s")
    tarball = rootfs.tarball_path()
    with tempfile.TemporaryDirectory(prefix="vmgen-bench-") as scratch:
        started = time.monotonic()
        rootfs.extract(tarball, Path(scratch) / "rootfs")
        print(
            f"rootfs extract ({tarball.stat().st_size / 1e6:.0f} MB zstd tarball): "
            f"{time.monotonic() - started:.2f} s"
        )
        shutil.rmtree(Path(scratch) / "rootfs")

        with SandboxHost(Path(scratch) / "state") as host:
            creates, destroys = [], []
            for index in range(args.vms):
                started = time.monotonic()
                sandbox = host.create(f"seq-{index}")
                creates.append(time.monotonic() - started)
                started = time.monotonic()
                host.destroy(sandbox)
                destroys.append(time.monotonic() - started)
            print(timed("create, one at a time (until sshd listens)", creates))
            print(timed("destroy, one at a time", destroys))

            started = time.monotonic()
            with ThreadPoolExecutor(args.parallel) as pool:
                batch = list(pool.map(lambda i: host.create(f"par-{i}"), range(args.parallel)))
            print(f"create {args.parallel} in parallel: {time.monotonic() - started:.3f} s wall")
            for sandbox in batch:
                (sandbox.private_key_path.parent / "known_hosts").write_text(
                    "".join(f"{sandbox.ip} {key}\n" for key in sandbox.host_keys)
                )

            async def deprovision_all() -> list[float]:
                return list(await asyncio.gather(*(deprovision(s) for s in batch)))

            started = time.monotonic()
            durations = asyncio.run(deprovision_all())
            print(
                f"deprovision {len(batch)} in parallel over SSH: {time.monotonic() - started:.2f} s wall; "
                + timed("each", durations)
            )
            started = time.monotonic()
            host.close()
            print(f"teardown of {len(batch)}: {time.monotonic() - started:.3f} s")


if __name__ == "__main__":
    main()
