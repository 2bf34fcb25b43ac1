"""`python -m vmgen_testbed up` serves a described, working testbed until SIGTERM, then leaves nothing."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.testbed.kube.processes import processes_mentioning
from vmgen_testbed.__main__ import wait_until_up
from vmgen_testbed.binaries import ensure_binaries


def test_up_describes_a_reachable_testbed_and_tears_it_down_on_sigterm(tmp_path: Path) -> None:
    state, log = tmp_path / "state", tmp_path / "up.log"
    with log.open("w") as sink:  # a file, not a pipe: a leaked child holding a pipe would hang the test
        process = subprocess.Popen(
            [sys.executable, "-m", "vmgen_testbed", "up", "--state-dir", str(state), "--linux-vms", "1"],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        try:
            wait_until_up(state / "testbed.json", process, timeout=300)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError(f"{exc}:\n{log.read_text()}") from None
        testbed = json.loads((state / "testbed.json").read_text())

        assert set(testbed) == {"kubeconfig", "arm", "vms"}
        assert set(testbed["arm"]) == {
            "baseUrl", "caBundle", "authority", "tenantId", "clientId", "clientSecret", "control",
        }  # fmt: skip
        [vm] = testbed["vms"]
        assert set(vm) == {
            "subscriptionId", "resourceGroup", "name", "osType", "host", "port", "username",
            "privateKeyPath", "hostKeys", "rootfs",
        }  # fmt: skip
        assert (vm["name"], vm["resourceGroup"], vm["osType"]) == ("vm-linux-01", "rg-vmgen-testbed", "Linux")
        kubectl = [str(ensure_binaries().kubectl), "--kubeconfig", testbed["kubeconfig"]]
        namespaces = subprocess.run(
            [*kubectl, "get", "namespace", "default", "-o", "name"], capture_output=True
        )
        assert namespaces.stdout.strip() == b"namespace/default", namespaces.stderr
        arm = testbed["arm"]
        discovery = f"{arm['authority'].rstrip('/')}/{arm['tenantId']}/v2.0/.well-known/openid-configuration"
        tls = ssl.create_default_context(cafile=arm["caBundle"])
        with urllib.request.urlopen(discovery, context=tls, timeout=10) as response:
            assert response.status == 200
        with socket.create_connection((vm["host"], vm["port"]), timeout=10) as ssh:
            assert ssh.recv(64).startswith(b"SSH-2.0-")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)

    output = log.read_text()
    assert process.returncode == 0, output
    assert f"testbed ready: {state / 'testbed.json'}" in output
    assert not Path(testbed["kubeconfig"]).exists()
    assert not (state / "testbed.json").exists()
    assert processes_mentioning(str(state)) == []
