"""The explanations of surviving mutants (tests/mutation/*.toml) name code that exists and say why.

`make mutation` (tools/mutation_survivors.py) matches them against the survivors; this test keeps them
honest between mutation runs: an explanation of a function that was renamed or deleted fails here at once.
"""

from __future__ import annotations

import importlib
import inspect
import tomllib
from pathlib import Path

import pytest

FILES = sorted((Path(__file__).resolve().parents[1] / "mutation").glob("*.toml"))


def _entries() -> list[tuple[str, str, str, str]]:
    found = []
    for file in FILES:
        data = tomllib.loads(file.read_text())
        assert set(data) <= {"function", "mutant"}, f"{file.name}: only [[function]] and [[mutant]] tables"
        for entry in data.get("function", []):
            found.append((file.name, entry["name"], "", entry["why"]))
        for entry in data.get("mutant", []):
            found.append((file.name, entry["function"], entry["mutated"], entry["why"]))
    return found


def _resolve(mangled: str) -> object:
    """`...planner.x__generalize` -> planner._generalize; `...policy.xǁScopeǁ__str__` -> Scope.__str__."""
    module_name, _, last = mangled.rpartition(".")
    module = importlib.import_module(module_name)
    if last.startswith("xǁ"):
        _, cls, method = last.split("ǁ")
        return getattr(getattr(module, cls), method)
    assert last.startswith("x_"), f"{mangled}: mutmut names functions x_<name>"
    return getattr(module, last[2:])


def test_there_are_explanation_files() -> None:
    assert FILES, "tests/mutation/*.toml holds the explanations of surviving mutants"


@pytest.mark.parametrize(("file", "function", "mutated", "why"), _entries())
def test_each_explanation_names_existing_code_and_says_why(
    file: str, function: str, mutated: str, why: str
) -> None:
    assert function.startswith("vmgen.domain."), f"{file}: only the domain is mutated"
    target = _resolve(function)
    assert callable(target), f"{file}: {function} is not a function"
    assert len(why.split()) >= 4, f"{file}: {function}: say why in a sentence"
    if mutated:
        # the mutated line is a changed copy of a line of the function: its first word appears there
        source = inspect.getsource(target)  # type: ignore[arg-type]
        # mutmut marks a mutated string literal with XX at both ends ("XX...XX") or changes its case:
        # compare without the marks and whatever the case
        head = mutated.replace("XX", "").split("(")[0].split()[0]
        assert head.lower() in source.lower(), (
            f"{file}: {function}: {mutated!r} does not look like a line of it"
        )
