"""Check that every mutant that survived `make mutation` is explained, and print the score.

mutmut reports survivors by generated name (`vmgen.domain.planner.x__generalize__mutmut_7`), and those
numbers shift whenever a function changes, so explanations keyed by number would go stale silently.
An explanation here names the function and the mutated line itself (the `+` line of the mutant's diff,
stripped), which stays true as long as the code it explains does; for functions whose every mutant is
text the unit tests deliberately do not restate (PowerShell scripts, messages), one entry may cover
the whole function. Explanations live in tests/mutation/*.toml, one file per domain module:

    [[function]]                                     # every survivor of this function
    name = "vmgen.domain.windows.x_preflight_script"
    why = "script text: ..."

    [[mutant]]                                       # one survivor
    function = "vmgen.domain.planner.x__generalize"
    mutated = "overdue = step.started_at is not None and now - step.started_at >= spec.timeouts.generalize"
    why = "a deadline measured to the microsecond: > and >= differ only at exactly the deadline"

Run from the staging folder `make mutation` builds (it does this at the end):
    cd .mutation && ../.venv/bin/python ../tools/mutation_survivors.py [--only vmgen.domain.planner]
Exit status 1 when a survivor is unexplained or an explanation matches no survivor (stale: delete it).
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mutmut.__main__ import SourceFileMutationData, walk_mutatable_files
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code

EXPLANATIONS = Path(__file__).resolve().parent.parent / "tests" / "mutation"
_NUMBER = re.compile(r"__mutmut_\d+$")


@dataclass(frozen=True)
class Survivor:
    name: str
    function: str
    mutated: str
    diff: str


def _key(line: str) -> str:
    """A mutated line as explanations match it: stripped, and without the XX that mutmut puts around a
    mutated string literal (a mutated empty string is written `""` in an explanation)."""
    return line.strip().replace("XX", "")


def results(only: str | None) -> tuple[Counter[str], list[Survivor]]:
    statuses: Counter[str] = Counter()
    survivors: list[Survivor] = []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, code in data.exit_code_by_key.items():
            if only and not name.startswith(only + "."):
                continue
            status = status_by_exit_code[code]
            statuses[status] += 1
            if status == "survived":
                diff = get_diff_for_mutant(name, path=path)
                added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+ ")]
                added += [line[1:].strip() for line in diff.splitlines() if line == "+"]
                survivors.append(Survivor(name, _NUMBER.sub("", name), _key(added[0] if added else ""), diff))
    return statuses, survivors


def explanations() -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    functions: dict[str, str] = {}
    mutants: dict[tuple[str, str], str] = {}
    for file in sorted(EXPLANATIONS.glob("*.toml")):
        data = tomllib.loads(file.read_text())
        for entry in data.get("function", []):
            functions[entry["name"]] = entry["why"]
        for entry in data.get("mutant", []):
            mutants[(entry["function"], _key(entry["mutated"]))] = entry["why"]
    return functions, mutants


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="a module prefix, e.g. vmgen.domain.planner")
    parser.add_argument("--show", action="store_true", help="print the diff of each unexplained survivor")
    args = parser.parse_args()
    statuses, survivors = results(args.only)
    functions, mutants = explanations()
    unexplained = [
        s for s in survivors if s.function not in functions and (s.function, s.mutated) not in mutants
    ]
    used_functions = {s.function for s in survivors}
    used_mutants = {(s.function, s.mutated) for s in survivors}
    in_scope = (lambda name: name.startswith(args.only + ".")) if args.only else (lambda name: True)
    stale = [f for f in functions if in_scope(f) and f not in used_functions]
    stale += [f"{f}: {m}" for (f, m) in mutants if in_scope(f) and (f, m) not in used_mutants]

    total = sum(statuses.values())
    killed = statuses["killed"] + statuses["caught by type check"] + statuses["timeout"]
    print(f"mutants {total}, killed {killed}, survived {statuses['survived']}", end="")
    print(f", other {total - killed - statuses['survived']}" if total - killed - statuses["survived"] else "")
    if total:
        print(f"score {100 * killed / total:.1f} %")
    print(f"survivors explained: {len(survivors) - len(unexplained)} of {len(survivors)}")
    for survivor in unexplained:
        print(
            f"UNEXPLAINED {survivor.name}\n"
            f"  function = {survivor.function!r}\n  mutated = {survivor.mutated!r}"
        )
        if args.show:
            print("\n".join("    " + line for line in survivor.diff.splitlines()))
    for entry in stale:
        print(f"STALE (matches no survivor; delete it) {entry}")
    return 1 if unexplained or stale else 0


if __name__ == "__main__":
    sys.exit(main())
