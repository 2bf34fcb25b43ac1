"""The shape the design promises, kept true: small modules, short functions, no test doubles shipped."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from vmgen_testbed.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "operator" / "vmgen"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_of_the_operator_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n for p in _modules() if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


def test_no_function_of_the_operator_is_over_60_lines() -> None:
    long: dict[str, int] = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PACKAGE)}:{node.name}"] = length
    assert long == {}


def test_the_workflow_class_is_only_the_pass_loop() -> None:
    tree = ast.parse((PACKAGE / "workflow.py").read_text())
    (workflow,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Workflow"]
    methods = {n.name for n in workflow.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    assert methods == {
        "__init__",
        "status",
        "run_pass",
        "_attempt",
        "_azure_credentials",
        "_compute",
        "aclose",
        "release",
        "clean_up",
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a clean copy of the sources (an in-tree build/ directory would leak old files in)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "operator", source / "operator", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("vmgen-*.whl")
    return built


def test_the_shipped_wheel_holds_the_operator_and_no_test_doubles_or_testbed(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "vmgen/workflow.py" in names and "vmgen/steps/prepare_linux.py" in names
    assert [n for n in names if "fake" in n.lower() or n.startswith(("vmgen_testbed/", "tests/"))] == []
