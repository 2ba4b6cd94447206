"""The self-test's outputs: the table printed at the end and the JSON file."""
import importlib.metadata
import json
import os
import platform
from pathlib import Path

import torch
from rich.table import Table

from adajudge.selftest.rows import Row

SCHEMA = "adajudge-selftest/1"
FAILURE_LINES = 14  # of each failing row's reason, under the table


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(device: torch.device) -> dict:
    """Device, versions and the interpreter switch, for the JSON and the table's title."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        name = f"{props.name} (sm_{props.major}{props.minor})"
    else:
        name = platform.processor() or platform.machine()
    return {
        "device": {"type": device.type, "name": name},
        "triton_interpret": os.environ.get("TRITON_INTERPRET", "0") == "1",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     **{package: _version(package) for package in ("adajudge", "triton", "hypothesis")}},
    }


def _ratio(row: Row) -> str:
    if row.worst_ratio is None:
        return "—"
    return "∞" if row.worst_ratio == float("inf") else f"{row.worst_ratio:.3f}"


def _opcheck(row: Row) -> str:
    if row.opcheck is None:
        return "—"
    passed = sum(all(verdict == "ok" for verdict in call["results"].values()) for call in row.opcheck)
    return f"{passed}/{len(row.opcheck)} ops ok"


def _result(row: Row) -> str:
    if row.status == "skipped":
        return f"skipped: {row.reason}"
    return "[green]pass[/]" if row.status == "passed" else "[bold red]FAIL[/]"


def table(rows: list[Row], title: str) -> Table:
    """One line per row: op, backend, dtype, layout, cases, worst error / bound, opcheck, result."""
    out = Table(title=title)
    for column, justify in (("op", "left"), ("backend", "left"), ("dtype", "left"), ("layout", "left"),
                            ("cases", "right"), ("worst err/bound", "right"), ("opcheck", "right"), ("result", "left")):
        out.add_column(column, justify=justify)
    for row in rows:
        out.add_row(row.op, row.backend, row.dtype_name, row.layout, str(row.cases) if row.status != "skipped" else "—",
                    _ratio(row), _opcheck(row), _result(row))
    return out


def failures(rows: list[Row]) -> list[str]:
    """The first lines of each failed row's reason."""
    return [f"{row.label}:\n  " + "\n  ".join((row.reason or "").splitlines()[:FAILURE_LINES])
            for row in rows if row.status == "failed"]


def write_json(path: Path, *, rows: list[Row], unreached: list[str], meta: dict) -> None:
    """`{schema, ..., complete, passed, unreached_ops, records: [one per row]}`, written atomically; rows not
    run yet have status "pending"."""
    report = {"schema": SCHEMA, **meta, "unreached_ops": unreached,
              "passed": meta.get("complete", True) and not unreached and all(row.status != "failed" for row in rows),
              "records": [row.record() for row in rows]}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(partial, path)
