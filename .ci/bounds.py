"""Declared bounds = tested bounds: every lower bound in pyproject.toml against the versions CI's environments hold.

    python .ci/bounds.py floor=PATH/TO/floor/python latest=PATH/TO/latest/python

For each requirement (dependencies and extras) prints its lower bound and the version each environment holds.
A bound passes when some environment holds exactly that version. It fails when it is missing, when it is an
upper bound (none is needed today; one that a tested failure needs goes in with its reason and this check
with it), or when the floor environment (pinned by .ci/floor.txt) holds the package at another version. A
package only the latest environment holds (TRL, datasets, gguf, ruff) is resolved afresh every run, so a newer
release leaves its bound untested without any change here: that is reported, not failed.
Exit status 1 on any failure.
"""
import json
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
VERSIONS = """
import importlib.metadata, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pass
print(json.dumps(found))
"""


def requirements() -> list[tuple[str, Requirement]]:
    """`(where, requirement)` for every requirement of pyproject.toml but the extras' references to adajudge."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    found = [("dependencies", Requirement(text)) for text in project["dependencies"]]
    for extra, texts in project["optional-dependencies"].items():
        found += [(f"[{extra}]", Requirement(text)) for text in texts if Requirement(text).name != project["name"]]
    return found


def installed(python: str, names: list[str]) -> dict[str, Version]:
    done = subprocess.run([python, "-c", VERSIONS, *names], capture_output=True, text=True, check=True)
    return {name: Version(Version(version).base_version) for name, version in json.loads(done.stdout).items()}


def main(argv: list[str]) -> int:
    envs = dict(arg.split("=", 1) for arg in argv)
    reqs = requirements()
    names = sorted({req.name for _, req in reqs})
    versions = {env: installed(python, names) for env, python in envs.items()}
    bounded = {req.name for _, req in reqs if any(spec.operator == ">=" for spec in req.specifier)}
    failures = 0
    print(f"{'requirement':40s} {'where':14s} " + " ".join(f"{env:>12s}" for env in envs) + "  status")
    for where, req in reqs:
        lower = [Version(spec.version) for spec in req.specifier if spec.operator == ">="]
        upper = [str(spec) for spec in req.specifier if spec.operator in ("<", "<=", "==", "~=", "!=")]
        held = {env: versions[env].get(req.name) for env in envs}
        if upper:
            status, failed = f"FAIL: {', '.join(upper)} (no upper bound without a tested failure)", True
        elif not lower:
            status, failed = ("ok: no bound here (bounded elsewhere)", False) if req.name in bounded else \
                ("FAIL: no lower bound", True)
        elif any(version == lower[0] for version in held.values()):
            status = "ok: tested in " + ", ".join(env for env, version in held.items() if version == lower[0])
            failed = False
        elif held.get("floor") is not None:
            status, failed = f"FAIL: the floor holds {held['floor']}", True
        else:
            status, failed = "untested today: the latest resolution moved on", False
        failures += failed
        cells = " ".join(f"{str(held[env] or '-'):>12s}" for env in envs)
        print(f"{str(req):40s} {where:14s} {cells}  {status}")
    print(f"{len(reqs)} requirements, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
