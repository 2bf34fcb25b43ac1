"""The operator image as users get it: built from the Dockerfile (buildah, cached by its inputs), run with
podman, it reports its version as the non-root uid, carries nothing of the build (no compilers, no
caches, no trace of the build secret), and its entrypoint, locked down like the chart's pod, takes a
Linux VM on the testbed to Ready."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import OPERATOR_NAMESPACE, World, assert_guest_deprovisioned, vm_requests
from vmgen import __version__
from vmgen_testbed import image
from vmgen_testbed.container_operator import ContainerOperator
from vmgen_testbed.operator_process import OperatorProcess

pytestmark = pytest.mark.root


@pytest.fixture(scope="session")
def image_tag() -> str:
    return image.ensure_image()


@pytest.fixture
def image_root(image_tag: str) -> Iterator[Path]:
    """The image's filesystem, mounted read-only by podman for the test."""
    mount = subprocess.run(
        ["podman", "image", "mount", image_tag], capture_output=True, text=True, check=True
    ).stdout.strip()
    yield Path(mount)
    subprocess.run(["podman", "image", "unmount", image_tag], capture_output=True, check=False)


def _in_image(image_tag: str, script: str) -> subprocess.CompletedProcess[str]:
    command = image.podman_run_args("--network", "none", "--entrypoint", "/bin/sh", image_tag, "-c", script)
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


class TestTheImage:
    def test_vmgen_reports_its_version_as_the_charts_non_root_uid(self, image_tag: str) -> None:
        result = _in_image(image_tag, "id -u; id -g; vmgen --version")

        assert result.returncode == 0, result.stderr
        assert result.stdout.split("\n")[:3] == [
            str(image.IMAGE_UID),
            str(image.IMAGE_UID),
            f"vmgen {__version__}",
        ]

    def test_its_entrypoint_is_vmgen_run(self, image_tag: str) -> None:
        config = json.loads(
            subprocess.run(
                ["podman", "image", "inspect", image_tag], capture_output=True, text=True, check=True
            ).stdout
        )[0]["Config"]

        assert config["Entrypoint"] == ["vmgen", "run"]
        assert config["User"] == f"{image.IMAGE_UID}:{image.IMAGE_UID}"
        assert not [variable for variable in config["Env"] if variable.startswith(("PIP_", "SSL_CERT"))]

    def test_the_build_secret_leaves_no_trace_in_the_image(self, image_tag: str, image_root: Path) -> None:
        found = subprocess.run(
            ["grep", "-rlF", "--no-messages", image.SECRET_MARKER, str(image_root)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        history = subprocess.run(
            ["podman", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image_tag],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip

        assert found.returncode == 1, f"files holding the build secret: {found.stdout}"
        assert not (image_root / "run/secrets/pip-ca").exists()
        assert "pip-ca" not in history.replace("--mount=type=secret,id=pip-ca", "")

    def test_the_final_stage_has_no_compilers_package_managers_or_caches(self, image_root: Path) -> None:
        for tool in ("gcc", "cc", "c++", "make", "ld"):
            assert not (image_root / "usr/bin" / tool).exists(), tool
        venv = image_root / "opt/vmgen"
        assert not list(venv.glob("bin/pip*")), "pip stayed in the operator's virtualenv"
        assert not list(venv.glob("lib/python3*/site-packages/pip")), (
            "pip stayed in the operator's virtualenv"
        )
        assert not (image_root / "root/.cache").exists()
        assert not list((image_root / "var/lib/apt/lists").glob("*_Packages"))
        assert not list((image_root / "tmp").iterdir())

    def test_a_rebuild_with_unchanged_inputs_reuses_the_image(self, image_tag: str) -> None:
        def image_id() -> str:
            return subprocess.run(
                ["podman", "image", "inspect", "--format", "{{.Id}}", image_tag],
                capture_output=True, text=True, check=True,
            ).stdout.strip()  # fmt: skip

        before = image_id()
        started = time.monotonic()
        again = image.ensure_image()

        assert again == image_tag
        assert image_id() == before
        assert time.monotonic() - started < 10, "an unchanged image was rebuilt"

    def test_the_image_tag_follows_the_base_image_and_the_sources(self, image_tag: str) -> None:
        base = image.ensure_base_image()

        assert image_tag == f"localhost/vmgen:{image.image_inputs_key(base)}"
        assert image.image_inputs_key(base + "-other") != image.image_inputs_key(base)


@pytest.fixture
def image_operator(
    world: World, operator: OperatorProcess, image_tag: str, operator_kubeconfig: Path, arm: Any
) -> Iterator[ContainerOperator]:
    """The image's operator in place of the session's: the session's is stopped (two operators would both
    act), and the next test's `world` starts it again."""
    operator.stop()
    container = ContainerOperator(
        image_tag=image_tag,
        kubeconfig=str(operator_kubeconfig),
        arm_endpoint=arm.base_url,
        ca_bundle=str(arm.ca_bundle),
        authority=arm.authority,
        log_path=operator.log_path.parent / "image-operator.log",
        operator_namespace=OPERATOR_NAMESPACE,
    )
    container.start()
    yield container
    container.stop()


def test_the_operator_from_the_image_takes_a_linux_vm_to_ready(
    world: World, image_operator: ContainerOperator, linux_vm: Any
) -> None:
    image_operator.wait_ready(timeout=60)
    world = World(
        control_plane=world.control_plane, arm=world.arm, operator=image_operator, namespace=world.namespace
    )
    vm = linux_vm()
    world.arm.clear_requests()

    world.linux_job("from-the-image", vm, host_keys=list(vm.sandbox.host_keys))
    body = world.wait_ready("from-the-image", timeout=120)

    assert body["status"]["phase"] == "Succeeded"
    assert_guest_deprovisioned(vm)
    assert world.arm.vm_state(vm.subscription_id, vm.resource_group, vm.name)["generalized"] is True
    assert [r.operation for r in vm_requests(world.arm, vm)].count("generalize") == 1
    assert "from-the-image" in image_operator.logs()
