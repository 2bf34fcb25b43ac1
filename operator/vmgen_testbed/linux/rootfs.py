"""The Debian root filesystem every Linux sandbox boots from, built once and cached.

Problem: each simulated VM needs a real Debian with OpenSSH, sudo and the Azure Linux Agent, but
`debootstrap` takes over a minute and 300 MB. So it runs once per recipe: the result is stored as a
zstd tarball in the testbed cache, keyed by a hash of the recipe (suite, variant, package list and the
template-prep script below), and extracted once into a directory that sandboxes use as the read-only
lower layer of their overlayfs. Changing the recipe changes the key, so a stale cache is never reused.

Traps avoided:
- Half-built caches: the build and the extraction happen in temporary directories that are renamed
  into place only when complete, under an exclusive lock, so parallel runs build once and a crash
  leaves nothing that looks finished.
- A host key shared by every VM: Azure gives each VM its own RSA key too, and a shared one let a test
  "pin the wrong keys" that were right (issue 12). The template holds no host key at all.
- Slow VM creation: an RSA 3072 key takes about a second to generate, so a pool of them is generated
  once and cached beside the rootfs (`rsa_host_key(index)`); a sandbox takes the next unused one and
  makes its fast ed25519/ecdsa keys itself. The pool grows on demand (index past its end), each key
  written to a temporary name and linked into place, so two runs racing for one index agree on it.
- debootstrap copies the build host's /etc/hostname and /etc/resolv.conf; the template drops them
  (each VM gets its own, like Azure provisioning writes them).

`python -m vmgen_testbed.linux.rootfs` ensures the rootfs (the Makefile calls this) and prints where it is.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from vmgen_testbed import paths

__all__ = [
    "PACKAGES",
    "RSA_POOL_SIZE",
    "SUITE",
    "TEMPLATE_PREP",
    "ensure_rootfs",
    "ensure_rsa_pool",
    "extract",
    "recipe_key",
    "rsa_host_key",
    "tarball_path",
]

SUITE = "bookworm"
VARIANT = "minbase"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("openssh-server", "sudo", "waagent", "iproute2")

# Runs inside the fresh debootstrap tree (chroot) before it is packed.
TEMPLATE_PREP = r"""
set -eu
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old
rm -f /var/log/*.log /var/log/apt/* /var/log/dpkg.log
# Per-VM files: provisioning writes them for each sandbox.
# Host keys too: every VM gets its own (ed25519 and ecdsa made at creation, RSA from the key pool).
rm -f /etc/hostname /etc/resolv.conf /etc/ssh/ssh_host_*
: > /etc/machine-id
# Where Debian's dhclient keeps leases (waagent's Debian osutil reads /var/lib/dhcp/dhclient.*.leases).
mkdir -p /var/lib/dhcp /var/lib/waagent /var/log/azure
"""


RSA_POOL_SIZE = 64
"""RSA host keys generated ahead (`make rootfs`): more than one test session creates sandboxes."""
RSA_BITS = 3072  # what ssh-keygen and Azure's images use

_TAR = ("tar", "--numeric-owner", "--xattrs", "--xattrs-include=*")
"""Owners by number and extended attributes kept, so the rootfs unpacks as debootstrap made it."""


def recipe_key(packages: tuple[str, ...] = PACKAGES, prep: str = TEMPLATE_PREP) -> str:
    recipe = {"suite": SUITE, "variant": VARIANT, "packages": sorted(packages), "prep": prep}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def _base() -> Path:
    base = paths.cache_dir() / "linux"
    base.mkdir(parents=True, exist_ok=True)
    return base


def tarball_path() -> Path:
    return _base() / f"debian-{SUITE}-{recipe_key()}.tar.zst"


def _lower_path() -> Path:
    return _base() / f"debian-{SUITE}-{recipe_key()}"


def _progress(message: str) -> None:
    print(f"[vmgen rootfs] {message}", flush=True)


def _require_root() -> None:
    if os.geteuid() != 0:
        raise PermissionError("building the Debian rootfs needs root (debootstrap, chroot, device nodes)")
    missing = [tool for tool in ("debootstrap", "zstd", "tar", "chroot") if shutil.which(tool) is None]
    if missing:
        raise FileNotFoundError(f"building the Debian rootfs needs {', '.join(missing)} on PATH")


def _build(tarball: Path, scratch: Path) -> None:
    """debootstrap + template prep into `scratch`, then pack it as `tarball`."""
    _require_root()
    started = time.monotonic()
    _progress(f"debootstrap {SUITE} ({VARIANT} + {', '.join(PACKAGES)}) into {scratch}; takes about 80 s")
    subprocess.run(
        [
            "debootstrap",
            f"--variant={VARIANT}",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(scratch),
            MIRROR,
        ],
        check=True,
    )
    _progress(f"debootstrap done in {time.monotonic() - started:.0f} s; preparing the template")
    subprocess.run(["chroot", str(scratch), "/bin/sh", "-c", TEMPLATE_PREP], check=True)
    _progress(f"packing {tarball.name}")
    partial = tarball.with_suffix(".partial")
    subprocess.run(
        [
            *_TAR,
            "-I",
            "zstd -T0 -3",
            "-C",
            str(scratch),
            "-cf",
            str(partial),
            ".",
        ],
        check=True,
    )
    partial.rename(tarball)
    size_mb = tarball.stat().st_size / 1e6
    _progress(f"built {tarball.name} ({size_mb:.0f} MB) in {time.monotonic() - started:.0f} s")


def extract(tarball: Path, destination: Path) -> None:
    """Unpack a rootfs tarball into `destination` (created; must not exist)."""
    destination.mkdir(parents=True)
    subprocess.run(
        [
            *_TAR,
            "-I",
            "zstd",
            "-C",
            str(destination),
            "-xf",
            str(tarball),
        ],
        check=True,
    )


def ensure_rootfs() -> Path:
    """Return the read-only lower directory of the current recipe, building/extracting it if needed."""
    lower, tarball = _lower_path(), tarball_path()
    if lower.is_dir():
        return lower
    with (_base() / "rootfs.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a parallel run may be building the same recipe right now
        if lower.is_dir():
            return lower
        scratch = lower.with_name(lower.name + ".partial")
        if scratch.exists():
            _progress(f"removing the leftover of an interrupted build: {scratch}")
            shutil.rmtree(scratch)
        if tarball.is_file():
            started = time.monotonic()
            _progress(f"extracting {tarball.name}")
            extract(tarball, scratch)
            _progress(f"extracted in {time.monotonic() - started:.1f} s")
        else:
            scratch.mkdir(parents=True)
            _build(tarball, scratch)  # the built tree is exactly what the tarball holds: no re-extraction
        scratch.rename(lower)
    return lower


def _rsa_pool_dir() -> Path:
    pool = _base() / f"rsa-host-keys-{RSA_BITS}"
    pool.mkdir(parents=True, exist_ok=True)
    return pool


def rsa_host_key(index: int) -> bytes:
    """The pool's RSA host key number `index` (OpenSSH private key format), generated on first use.

    Keys are never rewritten: a new one goes to a temporary file that is hard-linked to its final name,
    so a concurrent run that generated the same index first wins and both use its key."""
    path = _rsa_pool_dir() / f"{index:05d}.key"
    if not path.is_file():
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_bytes(pem)
        partial.chmod(0o600)
        try:
            os.link(partial, path)
        except FileExistsError:
            pass  # another run linked its key first: use that one
        finally:
            partial.unlink()
    return path.read_bytes()


def ensure_rsa_pool(size: int = RSA_POOL_SIZE) -> None:
    """Generate the missing keys of the first `size`, so sandbox creation never waits for one."""
    missing = [index for index in range(size) if not (_rsa_pool_dir() / f"{index:05d}.key").is_file()]
    if missing:
        started = time.monotonic()
        _progress(f"generating {len(missing)} RSA host keys for the sandboxes (once, about 1 s each)")
        for index in missing:
            rsa_host_key(index)
        _progress(f"RSA host keys ready in {time.monotonic() - started:.0f} s")


def main() -> int:
    started = time.monotonic()
    lower = ensure_rootfs()
    ensure_rsa_pool()
    print(f"{lower} (ready in {time.monotonic() - started:.1f} s; tarball {tarball_path()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
