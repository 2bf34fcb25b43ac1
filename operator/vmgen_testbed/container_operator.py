"""`vmgen run` from the operator image, under podman, locked down the way the chart runs it.

Problem: the e2e suite proves the operator works as a process; users run the image. This runs the image's
entrypoint with what the chart's pod gets (uid 65532, read-only root, every capability dropped, no
privilege escalation, a small writable /tmp, the ServiceAccount's kubeconfig mounted read-only) on the host
network, where the testbed's kube-apiserver, ARM simulator and guest sandboxes are reachable.

Traps avoided:
- The kubeconfig and the CA bundle the testbed writes are root's, mode 0600: uid 65532 could not read
  them. They are copied into a folder of their own owned by that uid.
- SIGKILL to the `podman run` client leaves the container running: `kill()` and `stop()` go through
  `podman kill` / `podman stop` by the container's name, and `--rm` removes it.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

from vmgen_testbed import image
from vmgen_testbed.operator_process import OperatorProcess

__all__ = ["ContainerOperator"]

_MOUNTS = Path("/etc/vmgen")


class ContainerOperator(OperatorProcess):
    """An `OperatorProcess` whose process is `podman run <image>`: same start/kill/stop/logs surface."""

    def __init__(
        self,
        *,
        image_tag: str,
        kubeconfig: str,
        arm_endpoint: str,
        ca_bundle: str,
        authority: str,
        log_path: Path,
        operator_namespace: str = "vmgen-system",
        poll_interval: float = 0.05,
    ) -> None:
        super().__init__(
            kubeconfig=kubeconfig, arm_endpoint=arm_endpoint, ca_bundle=ca_bundle, authority=authority,
            log_path=log_path, operator_namespace=operator_namespace, poll_interval=poll_interval,
        )  # fmt: skip
        files = log_path.parent / "container-files"
        files.mkdir(mode=0o700, parents=True, exist_ok=True)
        for source, name in ((kubeconfig, "kubeconfig"), (ca_bundle, "arm-ca.pem")):
            shutil.copyfile(source, files / name)
            (files / name).chmod(0o400)
        for path in (files, files / "kubeconfig", files / "arm-ca.pem"):
            shutil.chown(path, user=image.IMAGE_UID, group=image.IMAGE_UID)
        self.name = f"vmgen-operator-{uuid.uuid4().hex[:8]}"
        uid = f"{image.IMAGE_UID}:{image.IMAGE_UID}"
        scratch = "/tmp:rw,nosuid,nodev,size=64m,mode=1777"  # the chart's emptyDir
        environment = {
            "KUBECONFIG": f"{_MOUNTS}/kubeconfig",
            "VMGEN_ARM_ENDPOINT": arm_endpoint,
            "VMGEN_CA_BUNDLE": f"{_MOUNTS}/arm-ca.pem",
            "VMGEN_AUTHORITY": authority,
            "VMGEN_POLL_INTERVAL": str(poll_interval),
            "VMGEN_OPERATOR_NAMESPACE": operator_namespace,
        }
        self.args = image.podman_run_args(
            "--name", self.name, "--network", "host", "--user", uid, "--read-only", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", "--tmpfs", scratch,
            "--volume", f"{files}:{_MOUNTS}:ro",
            *(f"--env={key}={value}" for key, value in environment.items()),
            image_tag, "--verbose", "--liveness", self.liveness_url, "--all-namespaces",
        )  # fmt: skip

    def _podman(self, *args: str) -> None:
        subprocess.run(["podman", *args, self.name], capture_output=True, check=False, timeout=60)

    def kill(self) -> None:
        if self.running:
            self._podman("kill", "--signal", "KILL")
            super().kill()

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.running:
            self._podman("stop", "--time", str(int(timeout)))
        return super().stop(timeout)
