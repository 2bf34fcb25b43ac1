"""Build, once, the kube-apiserver, kubectl and etcd the testbed runs, from their pinned Go modules.

The versions are the ones pinned in `tools/kube/go.mod` (k8s.io/kubernetes) and `tools/etcd/go.mod`
(go.etcd.io/etcd/server/v3); the binaries land in `cache_dir()/bin-kube-<ver>/` and
`cache_dir()/bin-etcd-<ver>/`, so bumping a pin builds a new set and a second `make test` reuses the
first. Traps avoided:
- An interrupted build must never leave a half-written binary that later runs look like a cache hit:
  we build into a temporary folder beside the target and rename the whole folder into place.
- Two processes building at once (two `make` runs, pytest-xdist) would race on that rename: a file
  lock serialises them, and the second finds the first one's result.
- `go build` of k8s.io/kubernetes leaves the version at `v0.0.0-master` unless the version variables
  are stamped with `-X` (what kubernetes' hack/lib/version.sh does); kubectl and clients then report
  a nonsense server version, so we stamp them.
- VCS stamping fails when the module sits inside a repository git refuses to read (other owner):
  `-buildvcs=false`.

Run `python -m vmgen_testbed.binaries` to build or check them.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vmgen_testbed.paths import REPO_ROOT, cache_dir

__all__ = ["Binaries", "BuildError", "ensure_binaries", "pinned_version"]

TOOLS_DIR = REPO_ROOT / "tools"
KUBE_MODULE = "k8s.io/kubernetes"
ETCD_MODULE = "go.etcd.io/etcd/server/v3"


class BuildError(RuntimeError):
    """Go is missing, a pin cannot be read, or `go build` failed."""


@dataclass(frozen=True)
class Binaries:
    kube_apiserver: Path
    kubectl: Path
    etcd: Path


@dataclass(frozen=True)
class _Recipe:
    """One `go build` producing a folder of binaries."""

    name: str  # folder prefix in the cache: bin-<name>-<version>
    module_dir: Path
    module: str
    outputs: dict[str, str]  # binary name -> main package
    first_build: str  # how long a build with a cold Go cache takes, for the progress line
    stamped_version_packages: tuple[str, ...] = ()


_KUBE = _Recipe(
    name="kube",
    module_dir=TOOLS_DIR / "kube",
    module=KUBE_MODULE,
    outputs={"kube-apiserver": f"{KUBE_MODULE}/cmd/kube-apiserver", "kubectl": f"{KUBE_MODULE}/cmd/kubectl"},
    first_build="about 5 min on 2 cores",
    stamped_version_packages=("k8s.io/client-go/pkg/version", "k8s.io/component-base/version"),
)
_ETCD = _Recipe(
    name="etcd",
    module_dir=TOOLS_DIR / "etcd",
    module=ETCD_MODULE,
    outputs={"etcd": ETCD_MODULE},  # named by `-o`: go would call it "server"
    first_build="about 1 min",
)


def pinned_version(module_dir: Path, module: str) -> str:
    """The version `module` is required at in `module_dir/go.mod` (single-line or block form)."""
    text = (module_dir / "go.mod").read_text()
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, flags=re.MULTILINE)
    if match is None:
        raise BuildError(f"{module_dir / 'go.mod'} does not require {module}")
    return match.group(1)


def ensure_binaries() -> Binaries:
    """Return the pinned binaries, building the ones missing from the cache (progress on stderr)."""
    kube = _ensure(_KUBE)
    etcd = _ensure(_ETCD)
    return Binaries(kube_apiserver=kube / "kube-apiserver", kubectl=kube / "kubectl", etcd=etcd / "etcd")


def _ensure(recipe: _Recipe) -> Path:
    version = pinned_version(recipe.module_dir, recipe.module)
    target = cache_dir() / f"bin-{recipe.name}-{version}"
    if _complete(target, recipe.outputs):
        return target
    with _lock(cache_dir() / f".bin-{recipe.name}.lock"):
        if _complete(target, recipe.outputs):  # another process built it while we waited
            return target
        _build(recipe, version=version, target=target)
    return target


def _complete(folder: Path, outputs: Iterable[str]) -> bool:
    return all(os.access(folder / name, os.X_OK) for name in outputs)


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(recipe: _Recipe, *, version: str, target: Path) -> None:
    go = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    if go is None:
        raise BuildError("`go` not found on PATH (nor /usr/local/go/bin): install Go to build the testbed")
    staging = Path(tempfile.mkdtemp(prefix=f".bin-{recipe.name}-{version}.", dir=target.parent))
    started = time.monotonic()
    try:
        staging.chmod(0o755)
        for output, package in recipe.outputs.items():
            _progress(f"building {output} {version} ({recipe.first_build} with a cold Go cache, once) ...")
            command = [
                go, "build", "-trimpath", "-buildvcs=false",
                f"-ldflags={_ldflags(recipe, version)}", "-o", str(staging / output), package,
            ]  # fmt: skip
            result = subprocess.run(command, cwd=recipe.module_dir, check=False)
            if result.returncode != 0:
                raise BuildError(f"`{' '.join(command)}` failed with exit code {result.returncode}")
        if target.exists():  # an incomplete leftover (a binary deleted by hand)
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _progress(
        f"built {', '.join(recipe.outputs)} {version} in {time.monotonic() - started:.0f} s -> {target}"
    )


def _ldflags(recipe: _Recipe, version: str) -> str:
    flags = ["-s", "-w"]
    major, minor = version.removeprefix("v").split(".")[:2]
    values = {"gitVersion": version, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean"}
    for package in recipe.stamped_version_packages:
        flags += [f"-X {package}.{key}={value}" for key, value in values.items()]
    return " ".join(flags)


def _progress(message: str) -> None:
    print(f"[vmgen binaries] {message}", file=sys.stderr, flush=True)


def main() -> None:
    try:
        binaries = ensure_binaries()
    except BuildError as error:
        _progress(f"error: {error}")
        raise SystemExit(1) from None
    for path in (binaries.kube_apiserver, binaries.kubectl, binaries.etcd):
        _progress(f"ready: {path}")


if __name__ == "__main__":
    main()
