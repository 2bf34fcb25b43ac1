"""The pinned `helm` binary, and the vmgen chart rendered by it for the testbed's control plane.

The chart tests render the chart to check it; the e2e suite renders it to run the operator with exactly
the RBAC the chart grants. Both need the same helm and the same render, so they live here.

Traps avoided:
- helm is not part of the Kubernetes build: it is built once with `go install` from the Go module proxy
  into `cache_dir()/bin-helm-<version>/` (staged, then renamed, so an interrupted build is never taken
  for a cached one).
- Parallel runs on a machine with a cold cache (several checkouts, one shared VMGEN_CACHE_DIR) would each
  compile helm at once: the build holds an exclusive lock and re-checks for the binary after taking it.
- Helm built this way reports Kubernetes v1.20 as its default target, which the chart's kubeVersion
  refuses: `render_chart` passes the testbed's own kube-apiserver version as `--kube-version`.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from vmgen_testbed.binaries import KUBE_MODULE, TOOLS_DIR, pinned_version
from vmgen_testbed.paths import REPO_ROOT, cache_dir

__all__ = ["CHART_DIR", "HELM_VERSION", "ensure_helm", "operator_kubeconfig", "render_chart"]

RBAC_KINDS = frozenset({"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"})
HELM_VERSION = "v3.22.0"
HELM_MODULE = "helm.sh/helm/v3/cmd/helm"
CHART_DIR = REPO_ROOT / "charts" / "vmgen"


def ensure_helm() -> Path:
    """The pinned helm binary, built with `go install` the first time (about two minutes)."""
    target = cache_dir() / f"bin-helm-{HELM_VERSION}"
    binary = target / "helm"
    if os.access(binary, os.X_OK):
        return binary
    with (cache_dir() / ".bin-helm.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs on one machine build helm once
        if os.access(binary, os.X_OK):
            return binary
        _build_helm(target)
    return binary


def _build_helm(target: Path) -> None:
    go = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    if go is None:
        raise AssertionError("`go` is needed to build helm (the chart is rendered with it)")
    print(
        f"[vmgen binaries] building helm {HELM_VERSION} (about 2 min with a cold Go cache, once) ...",
        flush=True,
    )
    staging = Path(tempfile.mkdtemp(prefix=f".bin-helm-{HELM_VERSION}.", dir=cache_dir()))
    try:
        subprocess.run(
            [go, "install", f"{HELM_MODULE}@{HELM_VERSION}"],
            env={**os.environ, "GOBIN": str(staging), "GOFLAGS": "-trimpath"},
            check=True,
        )
        staging.chmod(0o755)  # mkdtemp made it private
        shutil.rmtree(target, ignore_errors=True)  # a leftover without the binary
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def render_chart(*, release: str, namespace: str, values: Sequence[str] = ()) -> list[dict[str, Any]]:
    """`helm template` of charts/vmgen as objects (the CRDs too, unless crds.install=false); `values` are
    extra helm arguments."""
    command = [
        str(ensure_helm()), "template", release, str(CHART_DIR), "--namespace", namespace,
        "--kube-version", pinned_version(TOOLS_DIR / "kube", KUBE_MODULE), *values,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssertionError(f"helm template failed: {result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def operator_kubeconfig(*, kubectl: Path, kubeconfig: Path, namespace: str, out: Path) -> Path:
    """Apply the chart's ServiceAccount and RBAC (all namespaces) with the admin `kubeconfig`, and write
    to `out` a kubeconfig that authenticates as that ServiceAccount (a TokenRequest token): the operator
    then runs with exactly the permissions a user's install grants it."""

    def admin(*args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [str(kubectl), "--kubeconfig", str(kubeconfig), *args],
            input=stdin, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    rbac = [doc for doc in render_chart(release="vmgen", namespace=namespace) if doc["kind"] in RBAC_KINDS]
    if {doc["kind"] for doc in rbac} != RBAC_KINDS:
        raise AssertionError(f"the chart rendered {[doc['kind'] for doc in rbac]}, not {sorted(RBAC_KINDS)}")
    admin("apply", "-f", "-", stdin=yaml.safe_dump_all(rbac))
    (account,) = [doc["metadata"]["name"] for doc in rbac if doc["kind"] == "ServiceAccount"]
    token = admin("create", "token", account, "-n", namespace, "--duration=24h").strip()
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"] = [{"name": account, "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = account
    out.touch(mode=0o600)
    out.write_text(yaml.safe_dump(config))
    return out


if __name__ == "__main__":
    print(f"[vmgen binaries] ready: {ensure_helm()}")
