"""The cached Debian template: keyed by its recipe, prepared once, never written by a sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmgen_testbed.linux import rootfs
from vmgen_testbed.linux.sandbox import SandboxHost

pytestmark = pytest.mark.root


def test_the_cache_key_changes_with_the_package_list_or_the_prep_script() -> None:
    key = rootfs.recipe_key()

    assert rootfs.recipe_key(packages=(*rootfs.PACKAGES, "curl")) != key
    assert rootfs.recipe_key(prep=rootfs.TEMPLATE_PREP + "true\n") != key
    assert rootfs.recipe_key(packages=tuple(reversed(rootfs.PACKAGES))) == key
    assert key in rootfs.tarball_path().name and rootfs.tarball_path().is_file()


def test_the_template_leaves_host_keys_and_other_per_vm_files_out(linux_rootfs: Path) -> None:
    assert list((linux_rootfs / "etc/ssh").glob("ssh_host_*")) == []
    assert list((linux_rootfs / "var/lib/apt/lists").iterdir()) == []
    assert not (linux_rootfs / "etc/hostname").exists() and not (linux_rootfs / "etc/resolv.conf").exists()
    assert (linux_rootfs / "usr/sbin/waagent").is_file() and (linux_rootfs / "usr/sbin/sshd").is_file()


async def test_a_sandbox_writes_to_its_own_layer_never_to_the_template_or_another_vm(
    linux_rootfs: Path, sandboxes: SandboxHost
) -> None:
    first, second = sandboxes.create("layer-a"), sandboxes.create("layer-b")
    try:
        script = "echo mine > /etc/motd-vmgen; rm /usr/sbin/waagent"
        result = await first.run_script(script, shell="bash", timeout=30)

        assert result.exit_code == 0
        assert (first.rootfs / "etc/motd-vmgen").read_text() == "mine\n"
        assert not (first.rootfs / "usr/sbin/waagent").exists()
        for untouched in (second.rootfs, linux_rootfs):
            assert not (untouched / "etc/motd-vmgen").exists()
            assert (untouched / "usr/sbin/waagent").exists()
    finally:
        sandboxes.destroy(first)
        sandboxes.destroy(second)
