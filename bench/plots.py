"""PNG plots (matplotlib, Agg backend): speed-up over eager vs size, and GB/s vs size.

One panel per op; x is the op's main input in bytes (log scale), so a T sweep and a D sweep of the same
op share an axis. Colour = implementation, line style = pass, marker = sweep. GB/s panels carry the run's
measured copy bandwidth as a dotted line. The compute-bound head has no bytes model and appears in the
speed-up plot only. One shared legend and a fixed layout keep plotting to a second or two.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

IMPL_COLOR = {"eager": "tab:gray", "compile": "tab:blue", "adajudge": "tab:red"}
PASS_STYLE = {"forward": "-", "backward": "--", "full": ":"}
SWEEP_MARKER = {"T": "o", "N": "o", "D": "s"}


def _op_name(record: dict) -> str:
    return f"{record['op']}[{record['variant']}]" if record["variant"] else record["op"]


def _lines(records, op, value):
    """{(impl, pass, sweep): ([x], [y])} for one panel, each sorted by size."""
    lines: dict[tuple, list] = {}
    for r in records:
        if _op_name(r) == op and value(r) is not None:
            lines.setdefault((r["impl"], r["pass"], r["sweep"]), []).append((r["input_bytes"], value(r)))
    return {key: tuple(zip(*sorted(points))) for key, points in lines.items()}


def _legend(fig, records, reference_label) -> None:
    impls = [i for i in IMPL_COLOR if any(r["impl"] == i for r in records)]
    passes = [p for p in PASS_STYLE if any(r["pass"] == p for r in records)]
    sweeps = list(dict.fromkeys(r["sweep"] for r in records))
    handles = [Line2D([], [], color=IMPL_COLOR[i], label=i) for i in impls]
    handles += [Line2D([], [], color="black", linestyle=PASS_STYLE[p], label=p) for p in passes]
    handles += [Line2D([], [], color="black", marker=SWEEP_MARKER.get(s, "o"), linestyle="", label=f"{s} sweep") for s in sweeps]
    handles.append(Line2D([], [], color="black", linestyle=(0, (1, 3)), label=reference_label))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False)


def _figure(records, value, ylabel, title, path: Path, reference: tuple[float, str], skip_impls=()) -> Path | None:
    records = [r for r in records if value(r) is not None and r["impl"] not in skip_impls]
    ops = list(dict.fromkeys(_op_name(r) for r in records))
    if not ops:
        return None
    cols = min(3, len(ops))
    rows = math.ceil(len(ops) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.2 * rows + 0.6), squeeze=False)
    for ax, op in zip(axes.flat, ops):
        for (impl, pass_, sweep), (xs, ys) in _lines(records, op, value).items():
            ax.plot(xs, ys, color=IMPL_COLOR[impl], linestyle=PASS_STYLE[pass_], marker=SWEEP_MARKER.get(sweep, "o"),
                    markersize=4)
        ax.axhline(reference[0], color="black", linestyle=(0, (1, 3)), linewidth=1)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(op, fontsize=9)
        ax.set_xlabel("main input (bytes)", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(ops):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    _legend(fig, records, reference[1])
    fig.subplots_adjust(left=0.07, right=0.98, top=0.88 if rows == 1 else 0.92, bottom=0.2 if rows == 1 else 0.12,
                        wspace=0.3, hspace=0.45)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_plots(meta: dict, records: list[dict], out: Path) -> list[Path]:
    """`speedup_vs_size.png` and (when any op has a bytes model) `gbps_vs_size.png` under `out`."""
    device = "GPU" if meta["device"] == "cuda" else "CPU"
    where = f"{device} figures: {meta['machine_description']}, {meta['dtype']}"
    copy_gbps = meta["copy_bandwidth"]["gbps"]
    written = [
        _figure(records, lambda r: r["speedup_vs_eager"], "speed-up over eager (×)",
                f"Speed-up over eager PyTorch vs size — {where}", out / "speedup_vs_size.png",
                reference=(1.0, "eager = 1"), skip_impls=("eager",)),
        _figure(records, lambda r: r["gbps"], "GB/s (bytes model / time)", f"Effective bandwidth vs size — {where}",
                out / "gbps_vs_size.png", reference=(copy_gbps, f"measured copy {copy_gbps:.1f} GB/s")),
    ]
    return [p for p in written if p is not None]
