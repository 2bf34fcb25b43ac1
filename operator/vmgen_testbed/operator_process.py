"""Run the real `vmgen run` command as a separate process against the testbed, like a user would.

e2e tests, the demo and the benchmarks need the operator exactly as it ships: its own process, its own
event loop, configured only through the documented environment variables. Tests kill it with SIGKILL to
prove that it resumes from status; its log is kept in a file so tests can search it for secrets.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path


class OperatorProcess:
    """One `vmgen run` process; `start()` again after `kill()` is a restart with the same log file."""

    def __init__(
        self,
        *,
        kubeconfig: str,
        arm_endpoint: str,
        ca_bundle: str,
        authority: str,
        log_path: Path,
        namespaces: Sequence[str] = (),
        operator_namespace: str = "vmgen-system",
        poll_interval: float = 0.05,
        extra_env: Mapping[str, str] | None = None,
        metrics: bool = False,
        leader_election: bool = False,
        lease_duration: float = 3.0,
        pod_name: str | None = None,
        identity_namespaces: Sequence[str] = (),
    ) -> None:
        self.log_path = log_path
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("VMGEN_", "AZURE_"))},
            "KUBECONFIG": kubeconfig,
            "VMGEN_ARM_ENDPOINT": arm_endpoint,
            "VMGEN_CA_BUNDLE": ca_bundle,
            "VMGEN_AUTHORITY": authority,
            "VMGEN_POLL_INTERVAL": str(poll_interval),
            "VMGEN_OPERATOR_NAMESPACE": operator_namespace,
            "PYTHONUNBUFFERED": "1",
            # Leader election is off unless a test asks for it (tests/e2e/test_high_availability.py):
            # the SIGKILL tests restart one process and should not wait for its old Lease to expire.
            "VMGEN_LEADER_ELECTION": "true" if leader_election else "false",
            "VMGEN_LEASE_DURATION": str(lease_duration),
            **({"POD_NAME": pod_name} if pod_name else {}),
            **({"VMGEN_IDENTITY_NAMESPACES": ",".join(identity_namespaces)} if identity_namespaces else {}),
            **(extra_env or {}),
        }
        self.liveness_url = f"http://127.0.0.1:{_free_port()}/healthz"
        self.metrics_url: str | None = None
        if metrics:
            port = _free_port()
            self.env["VMGEN_METRICS_PORT"] = str(port)
            self.metrics_url = f"http://127.0.0.1:{port}/metrics"
        self.args = [sys.executable, "-m", "vmgen.cli", "run", "--verbose", "--liveness", self.liveness_url]
        if namespaces:
            for namespace in namespaces:
                self.args += ["--namespace", namespace]
        else:
            self.args.append("--all-namespaces")
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        if self.running:
            raise RuntimeError("the operator is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n=== vmgen run (start #{self.starts + 1}) ===\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.starts += 1

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the operator was never started")
        return self._process.pid

    def kill(self) -> None:
        """SIGKILL, no goodbye: what a node failure or an OOM kill looks like to the workflow."""
        if self._process is not None and self.running:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self._process is None:
            return None
        if self.running:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=10)
        return self._process.returncode

    def logs(self, *, since: int = 0) -> str:
        """What the process wrote (across restarts), from byte offset `since` (see `log_offset`)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace")

    def log_offset(self) -> int:
        """Where the log ends now: pass it to `logs(since=...)` to read only what a test caused."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def wait_ready(self, *, timeout: float = 60.0) -> float:
        """Wait until kopf's liveness endpoint answers (the operator has started); returns the seconds."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if not self.running:
                raise RuntimeError(f"the operator exited while starting:\n{self.logs()[-3000:]}")
            try:
                with urllib.request.urlopen(self.liveness_url, timeout=1) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"the operator was not live within {timeout}s:\n{self.logs()[-3000:]}")

    def scrape(self) -> str:
        """The Prometheus text the operator serves on its metrics port right now."""
        if self.metrics_url is None:
            raise RuntimeError("the operator was started without metrics")
        deadline = time.monotonic() + 30  # the endpoint opens once the start-up checks have passed
        while True:
            try:
                with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
                    text: str = response.read().decode()
                return text
            except (urllib.error.URLError, ConnectionError):
                if not self.running or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def __enter__(self) -> OperatorProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_LISTEN_PORTS = range(20000, 32000)
"""Below Linux's ephemeral range (32768-60999): a port picked there and bound a moment later by the
operator can be taken meanwhile by any outgoing connection's local port (seen when tests run side by side)."""


def _free_port() -> int:
    for port in random.sample(_LISTEN_PORTS, 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000 on 127.0.0.1")
