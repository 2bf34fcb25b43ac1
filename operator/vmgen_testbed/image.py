"""The vmgen container image, built from the repository's Dockerfile on a machine with no registry.

Problem: users run vmgen from its image, so tests must run that image too. This machine has no Docker
engine and cannot pull from any registry; Debian's buildah and podman work as root. So:
- the Dockerfile's base image (the `PYTHON_IMAGE` build arg, by default the official slim Python image on
  bookworm) is stood in by one made here: `debootstrap --variant=minbase` bookworm with python3 and
  python3-venv, packed as a zstd tarball in the testbed cache (keyed by its recipe, like the guest rootfs)
  and imported with `buildah from scratch` + `buildah commit` as `localhost/vmgen-base:<recipe key>`;
- the operator image is tagged `localhost/vmgen:<inputs key>`, a hash of everything the build reads (the
  Dockerfile, the build context the .dockerignore lets in, the base image's key): when that tag exists,
  nothing is rebuilt, and when any input changes, the new key builds a new image.

Traps avoided:
- The TLS-intercepting proxy: pip in the build must trust the machine's CA bundle. It goes in as a build
  secret (`--secret id=pip-ca`), which exists only while one RUN runs and reaches no layer. The bundle
  handed in starts with `SECRET_MARKER`, so a test can prove that nothing of it is left in the image.
- Half-built caches: the base tarball is written under a temporary name and renamed; builds take an
  exclusive lock, so parallel runs build once.
- `buildah bud` defaults (an OCI runtime for RUN, a registry pull of the base): `--isolation chroot` and
  `--pull=never` make the build use only what is here.
- podman needs `--runtime runc` (Debian's runc) and explicit ulimits on this machine: `podman_run_args`
  puts them on every command line.

`python -m vmgen_testbed.image` ensures the image (the Makefile calls it) and prints its tag, size and the
cold or warm build time.
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
from collections.abc import Iterator
from pathlib import Path

from vmgen_testbed import paths
from vmgen_testbed.linux import rootfs

__all__ = [
    "BASE_PACKAGES",
    "IMAGE_UID",
    "SECRET_MARKER",
    "ensure_base_image",
    "ensure_image",
    "image_inputs_key",
    "image_size",
    "podman_run_args",
]

IMAGE_REPOSITORY = "localhost/vmgen"
BASE_REPOSITORY = "localhost/vmgen-base"
IMAGE_UID = 65532
"""The chart's runAsUser (charts/vmgen/templates/deployment.yaml) and the Dockerfile's USER."""
BASE_PACKAGES = ("python3", "python3-venv")
SECRET_MARKER = "# vmgen build secret: pip's CA bundle, must not reach the image"

# Runs inside the fresh debootstrap tree before it is packed: what the official slim image also leaves out.
BASE_PREP = r"""
set -eu
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old
rm -f /var/log/*.log /var/log/apt/* /var/log/dpkg.log /etc/hostname /etc/resolv.conf
: > /etc/machine-id
"""

_PODMAN_FLAGS = ("--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
"""What podman needs on these machines (Debian's runc; its default ulimits are refused)."""


def _progress(message: str) -> None:
    print(f"[vmgen image] {message}", flush=True)


def _base_dir() -> Path:
    base = paths.cache_dir() / "image"
    base.mkdir(parents=True, exist_ok=True)
    return base


def _require_tools() -> None:
    if os.geteuid() != 0:
        raise PermissionError("building the vmgen image needs root (debootstrap, buildah, podman)")
    missing = [
        tool for tool in ("debootstrap", "zstd", "buildah", "podman", "runc") if not shutil.which(tool)
    ]
    if missing:
        raise FileNotFoundError(f"building the vmgen image needs {', '.join(missing)} on PATH (make testbed)")


def base_recipe_key() -> str:
    recipe = {
        "suite": rootfs.SUITE,
        "variant": "minbase",
        "packages": sorted(BASE_PACKAGES),
        "prep": BASE_PREP,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def _image_exists(tag: str) -> bool:
    result = subprocess.run(["buildah", "inspect", "--type", "image", tag], capture_output=True, check=False)
    return result.returncode == 0


def _build_base_tarball(tarball: Path) -> None:
    scratch = tarball.with_name(tarball.name + ".tree")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    started = time.monotonic()
    try:
        _progress(f"debootstrap {rootfs.SUITE} minbase + {', '.join(BASE_PACKAGES)}; takes about a minute")
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", rootfs.SUITE,
             str(scratch), rootfs.MIRROR],
            check=True,
        )  # fmt: skip
        subprocess.run(["chroot", str(scratch), "/bin/sh", "-c", BASE_PREP], check=True)
        partial = tarball.with_suffix(".partial")
        subprocess.run(
            ["tar", "--numeric-owner", "-I", "zstd -T0 -3", "-C", str(scratch), "-cf", str(partial), "."],
            check=True,
        )
        partial.rename(tarball)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _progress(
        f"built {tarball.name} ({tarball.stat().st_size / 1e6:.0f} MB) in {time.monotonic() - started:.0f} s"
    )


def _import_base(tarball: Path, tag: str) -> None:
    """`buildah from scratch`, unpack the tarball into its mount, commit it as `tag`."""
    container = subprocess.run(
        ["buildah", "from", "scratch"], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        mount = subprocess.run(
            ["buildah", "mount", container], capture_output=True, text=True, check=True
        ).stdout.strip()
        subprocess.run(["tar", "--numeric-owner", "-I", "zstd", "-C", mount, "-xf", str(tarball)], check=True)
        subprocess.run(
            ["buildah", "config", "--cmd", "python3", "--env", "LANG=C.UTF-8", container], check=True
        )
        subprocess.run(
            ["buildah", "commit", "--quiet", "--rm", container, tag], check=True, capture_output=True
        )
    except BaseException:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
        raise


def ensure_base_image() -> str:
    """The local stand-in for the official slim Python image, built and imported if missing."""
    _require_tools()
    key = base_recipe_key()
    tag = f"{BASE_REPOSITORY}:{key}"
    if _image_exists(tag):
        return tag
    tarball = _base_dir() / f"base-{rootfs.SUITE}-{key}.tar.zst"
    with (_base_dir() / "base.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _image_exists(tag):
            return tag
        if not tarball.is_file():
            _build_base_tarball(tarball)
        _progress(f"importing {tarball.name} as {tag}")
        _import_base(tarball, tag)
    return tag


def _context_files() -> Iterator[Path]:
    """The files the Dockerfile can read: what .dockerignore lets into the build context."""
    root = paths.REPO_ROOT
    for top in ("pyproject.toml", "README.md", "crds", "operator/vmgen"):
        path = root / top
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for candidate in candidates:
            if "__pycache__" not in candidate.parts and candidate.suffix != ".pyc":
                yield candidate


def image_inputs_key(base_tag: str) -> str:
    digest = hashlib.sha256(base_tag.encode())
    for path in [paths.REPO_ROOT / "Dockerfile", paths.REPO_ROOT / ".dockerignore", *_context_files()]:
        digest.update(str(path.relative_to(paths.REPO_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _pip_ca_bundle() -> Path:
    """The machine's trust store (which trusts the intercepting proxy), marked for the leak test."""
    system = Path("/etc/ssl/certs/ca-certificates.crt")
    bundle = _base_dir() / "pip-ca.pem"
    bundle.write_text(f"{SECRET_MARKER}\n{system.read_text()}")
    bundle.chmod(0o600)
    return bundle


def ensure_image() -> str:
    """The operator image for the current sources: `localhost/vmgen:<inputs key>`, built if missing."""
    base = ensure_base_image()
    tag = f"{IMAGE_REPOSITORY}:{image_inputs_key(base)}"
    if _image_exists(tag):
        return tag
    with (_base_dir() / "image.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _image_exists(tag):
            return tag
        started = time.monotonic()
        _progress(f"buildah bud {tag} (pip installs the operator's dependencies: a few minutes)")
        subprocess.run(
            ["buildah", "bud", "--isolation", "chroot", "--pull=never", "--layers=false",
             "--build-arg", f"PYTHON_IMAGE={base}", "--secret", f"id=pip-ca,src={_pip_ca_bundle()}",
             "--tag", tag, "--file", str(paths.REPO_ROOT / "Dockerfile"), str(paths.REPO_ROOT)],
            check=True,
        )  # fmt: skip
        _progress(f"built {tag} in {time.monotonic() - started:.0f} s")
    return tag


def image_size(tag: str) -> int:
    """Bytes of the image's unpacked layers."""
    out = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Size}}", tag],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.strip())


def podman_run_args(*extra: str) -> list[str]:
    """`podman run --rm` with the flags this machine needs, then `extra` (options, image, command)."""
    return ["podman", "run", "--rm", *_PODMAN_FLAGS, *extra]


def main() -> int:
    started = time.monotonic()
    tag = ensure_image()
    print(f"{tag} ({image_size(tag) / 1e6:.0f} MB; ready in {time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
