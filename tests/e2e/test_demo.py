"""`make demo` is the README's first command: it must work and tell the whole story."""

from __future__ import annotations

import subprocess
import sys

from vmgen_testbed.paths import REPO_ROOT


def test_the_demo_takes_one_vm_to_ready_and_shows_what_deprovision_removed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vmgen_testbed.demo"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Ready" in out and "after apply" in out
    assert "phase=Succeeded" in out
    assert "SSH host keys /etc/ssh/ssh_host_*        removed" in out
    assert '"generalized": true' in out and '"powerState": "deallocated"' in out
    assert "testbed torn down" in out


def test_the_windows_demo_takes_one_vm_per_transport_to_ready() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vmgen_testbed.demo_windows"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "web2-golden Ready" in out and "app-golden Ready" in out
    assert "/quit /mode:vm` (WinRM)" in out and "/shutdown /mode:vm` (RunCommand)" in out
    assert out.count('"generalized": true') == 2 and out.count('"powerState": "deallocated"') == 2
    assert "testbed torn down" in out
