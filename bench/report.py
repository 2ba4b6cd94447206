"""Write and show results: `results.json`, a rich table on the terminal (whole in a log too: no cell is cut),
and a markdown table. Both tables give each implementation's time as a ratio to eager PyTorch and to
`torch.compile` of the same reference, measured in the same run."""
from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from adajudge.tables import print_note
from adajudge.tables import print_table as print_whole_table

SCHEMA = "adajudge-bench/1"
COLUMNS = ("op", "shape", "pass", "impl", "median ms", "IQR ms", "× eager", "× compile", "GB/s", "% copy BW",
           "peak MiB")


def write_json(path: Path, meta: dict, records: list[dict]) -> None:
    path.write_text(json.dumps({"schema": SCHEMA, "meta": meta, "records": records}, indent=1) + "\n")


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def row_cells(record: dict) -> tuple[str, ...]:
    op = f"{record['op']}[{record['variant']}]" if record["variant"] else record["op"]
    shape = " ".join(f"{k}={v}" for k, v in record["shape"].items())
    spread = record["spread"]
    fraction = record.get("fraction_of_copy_bandwidth")
    return (
        op,
        shape,
        record["pass"],
        record["impl"],
        _fmt(record["median_ms"], ".3f"),
        f"{spread['q25_ms']:.3f}–{spread['q75_ms']:.3f}",
        _fmt(record["speedup_vs_eager"], ".2f"),
        _fmt(record.get("speedup_vs_compile"), ".2f"),
        _fmt(record["gbps"], ".2f"),
        _fmt(None if fraction is None else 100 * fraction, ".0f"),
        _fmt(record["peak_memory_bytes"] / 2**20, ".2f"),
    )


def headline(meta: dict) -> list[str]:
    device = meta["device"]
    kind = "GPU figures" if device == "cuda" else "CPU figures (not GPU)"
    bandwidth = meta["copy_bandwidth"]
    git = meta["git"]
    commit = "no commit yet" if git["commit"] is None else git["commit"][:12] + (" (dirty)" if git["dirty"] else "")
    load = meta["machine"].get("load_average")
    return [
        f"{kind}: {meta['machine_description']}; {meta['dtype']}; preset {meta['preset']}",
        f"command: `{meta['command']}`; commit {commit}; torch {meta['versions']['torch']}, "
        f"triton {meta['versions']['triton']}, python {meta['versions']['python']}",
        f"copy bandwidth (measured in this run, best of clone/copy_): start {bandwidth['start']['gbps']:.1f} GB/s, "
        f"end {bandwidth['end']['gbps']:.1f} GB/s; load average at start {load}",
    ]


def print_table(meta: dict, records: list[dict], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title="adajudge benchmarks")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("op", "shape", "pass", "impl") else "right")
    for line in headline(meta):
        print_note(console, line)
    keys = [(r["op"], r["variant"], str(r["shape"]), r["pass"]) for r in records]
    for index, record in enumerate(records):
        last_of_group = index + 1 == len(records) or keys[index + 1] != keys[index]
        table.add_row(*row_cells(record), end_section=last_of_group)
    print_whole_table(console, table)


def markdown(meta: dict, records: list[dict]) -> str:
    """A README-ready markdown table, headed by what ran where."""
    lines = [f"_{line}_  " for line in headline(meta)]
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row_cells(record)) + " |" for record in records]
    return "\n".join(lines) + "\n"
