"""Tables and the plot of the model's records, and their section of bench/RESULTS.md.

Everything written here is labelled **predicted by the static model**: no figure of it was measured.
"""
from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

SECTION = "## GPU speed predicted by the static model (`python -m bench.gpu_model`)"
PREDICTED = "**predicted by the static model**, never measured"


def _pass_key(record: dict) -> tuple:
    return record["op"], record["pass"], record["variant"], record["shape"], record["dtype"], record["layout"]


def pass_rows(records: list[dict]) -> list[dict]:
    """One record per pass and GPU: its `all` record, or its only kernel's."""
    kernels: dict[tuple, list[dict]] = {}
    for record in records:
        kernels.setdefault((*_pass_key(record), record["gpu"]), []).append(record)
    return [next((r for r in group if r["kernel"] == "all"), group[0]) for group in kernels.values()]


def _kb(value) -> str:
    return "–" if value is None else f"{value / 1024:.0f}"


def _bits(record: dict) -> str:
    """Widths in bits of the record's global accesses to the pass's streamed tensors."""
    streamed = record["streamed_tensors"]
    widths = sorted({bit for tensor, kinds in record["access_bits"].items() if tensor in streamed
                     for bits in kinds.values() for bit in bits})
    return "/".join(map(str, widths)) or "–"


def _occupancy(record: dict) -> str:
    return "–" if record["ctas_per_sm"] is None else f"{record['ctas_per_sm']} · {record['warps_per_sm']}"


def _per_gpu(records: list[dict], key) -> dict:
    grouped: dict[tuple, dict] = {}
    for record in records:
        grouped.setdefault(key(record), {})[record["gpu"]] = record
    return grouped


def pass_table(records: list[dict], gpus: list[str]) -> str:
    """Markdown: one row per pass, each GPU's floor, predicted time, share of copy bandwidth and limiter."""
    header = "| op | pass | variant | shape | dtype | layout | " + " | ".join(
        f"{g} floor µs | {g} predicted µs | {g} % copy BW | {g} limiter" for g in gpus) + " |"
    lines = [header, "|" + "---|" * (6 + 4 * len(gpus))]
    for key, by_gpu in _per_gpu(pass_rows(records), _pass_key).items():
        op, pass_, variant, shape, dtype, layout = key
        variant = f"{variant} (default)" if variant and by_gpu[gpus[0]]["default"] and op == "multiview_pool" else variant
        cells = []
        for g in gpus:
            r = by_gpu[g]
            cells += [f"{r['floor_us']:.1f}", f"{r['predicted_us']:.1f}", f"{100 * r['predicted_fraction']:.0f}", r["limiter"]]
        lines.append(f"| {op} | {pass_} | {variant or '–'} | {shape} | {dtype} | {layout} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def kernel_table(records: list[dict], gpus: list[str]) -> str:
    """Markdown: one row per kernel (PyTorch ops included), the SASS figures and each GPU's prediction."""
    header = ("| op | pass | variant | kernel | shape | dtype | layout | regs | spills | CTAs · warps / SM "
              "| streamed access bits | in flight KB / SM | barriers / KB | smem instr / KB | " +
              " | ".join(f"{g} µs | {g} limiter" for g in gpus) + " |")
    lines = [header, "|" + "---|" * (14 + 2 * len(gpus))]
    rows = [r for r in records if r["kernel"] != "all"]
    for key, by_gpu in _per_gpu(rows, lambda r: (*_pass_key(r), r["kernel"])).items():
        op, pass_, variant, shape, dtype, layout, kernel = key
        r = by_gpu[gpus[0]]
        cells = [op, pass_, variant or "–", kernel.removeprefix("multiview_pool_").removeprefix("preference_loss_")
                 .removeprefix("router_mix_"), shape, dtype, layout, "–" if r["registers"] is None else str(r["registers"]),
                 "–" if r["spills"] is None else str(r["spills"]), _occupancy(r), _bits(r) if r["registers"] is not None else "–",
                 _kb(r["bytes_in_flight_per_sm"]), f"{r['barriers_per_kb']:.2f}", f"{r['shared_instructions_per_kb']:.1f}"]
        for g in gpus:
            cells += [f"{by_gpu[g]['predicted_us']:.1f}", by_gpu[g]["limiter"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def text_table(records: list[dict]) -> str:
    """The terminal table: every kernel and pass on every GPU; the share of copy bandwidth on pass rows."""

    def share(record):
        return f"{100 * record['predicted_fraction']:.0f}" if id(record) in passes else "·"

    passes = {id(r) for r in pass_rows(records)}
    lines = [f"{'op':15s} {'pass':8s} {'variant':18s} {'kernel':34s} {'shape':17s} {'dtype':5s} {'layout':6s} {'gpu':4s} "
             f"{'regs':>4s} {'spill':>5s} {'CTA·w':>6s} {'bits':>7s} {'KB fly':>6s} {'bar/KB':>7s} {'smem/KB':>7s} "
             f"{'µs':>9s} {'floor':>8s} {'%copy':>5s}  limiter"]
    for r in records:
        regs = "–" if r["registers"] is None else str(r["registers"])
        spills = "–" if r["spills"] is None else str(r["spills"])
        lines.append(
            f"{r['op']:15s} {r['pass']:8s} {r['variant'] or '–':18s} {r['kernel']:34s} {r['shape']:17s} {r['dtype']:5s} "
            f"{r['layout']:6s} {r['gpu']:4s} {regs:>4s} {spills:>5s} {_occupancy(r):>6s} {_bits(r):>7s} "
            f"{_kb(r['bytes_in_flight_per_sm']):>6s} {r['barriers_per_kb']:7.2f} {r['shared_instructions_per_kb']:7.1f} "
            f"{r['predicted_us']:9.1f} {r['floor_us']:8.1f} {share(r):>5s}  {r['limiter']}")
    return "\n".join(lines)


def plot(records: list[dict], path: Path, title: str) -> Path:
    """Predicted share of copy bandwidth of the pooling passes, one panel per GPU, one bar per pass."""
    pooling = [r for r in pass_rows(records) if r["op"] == "multiview_pool"]
    gpus = list(dict.fromkeys(r["gpu"] for r in pooling))
    groups = list(dict.fromkeys((r["shape"], r["dtype"], r["layout"]) for r in pooling))
    series = list(dict.fromkeys((r["pass"], r["variant"]) for r in pooling))
    fig, axes = plt.subplots(len(gpus), 1, figsize=(max(8.0, 0.75 * len(groups) + 2), 3.2 * len(gpus) + 0.8), squeeze=False)
    width = 0.8 / max(1, len(series))
    for ax, gpu in zip(axes[:, 0], gpus):
        by_key = {(r["shape"], r["dtype"], r["layout"], r["pass"], r["variant"]): r for r in pooling if r["gpu"] == gpu}
        for index, (pass_, variant) in enumerate(series):
            values = [100 * by_key[(*g, pass_, variant)]["predicted_fraction"] if (*g, pass_, variant) in by_key else 0
                      for g in groups]
            ax.bar([i + (index - (len(series) - 1) / 2) * width for i in range(len(groups))], values, width,
                   label=f"{pass_} {variant}".strip())
        ax.axhline(80, color="black", linestyle=":", linewidth=1)
        ax.set_ylim(0, 105)
        ax.set_ylabel(f"{gpu}: % of copy BW", fontsize=8)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([f"{s}\n{d} {lay}" for s, d, lay in groups], fontsize=6)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=len(series), loc="upper right")
    fig.suptitle(f"{title} — predicted by the static model, not measured", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def targets(records: list[dict]) -> list[str]:
    """Issue 17's goals, read off the records: pooling passes at ≥ 80 % of copy bandwidth, and NormBT's
    distance + loss at N = 32, D = 4096 under 10 % of the default pooling forward at B16 T2048 D4096."""
    lines = []
    rows = pass_rows(records)
    for gpu in dict.fromkeys(r["gpu"] for r in rows):
        pooling = [r for r in rows if r["gpu"] == gpu and r["op"] == "multiview_pool" and r["default"]]
        if pooling:
            met = sum(r["predicted_fraction"] >= 0.8 for r in pooling)
            worst = min(pooling, key=lambda r: r["predicted_fraction"])
            lines.append(f"{gpu}: {met} of {len(pooling)} default pooling passes at >= 80 % of copy bandwidth; lowest "
                         f"{100 * worst['predicted_fraction']:.0f} % ({worst['pass']} {worst['shape']} {worst['dtype']} "
                         f"{worst['layout']})")
        for dtype in dict.fromkeys(r["dtype"] for r in rows):
            loss = [r for r in rows if r["gpu"] == gpu and r["dtype"] == dtype and r["variant"] == "normbt"
                    and r["shape"] == "N32 D4096"]
            forward = [r for r in rows if r["gpu"] == gpu and r["dtype"] == dtype and r["op"] == "multiview_pool"
                       and r["pass"] == "forward" and r["default"] and r["shape"] == "B16 T2048 D4096"
                       and r["layout"] == "padded"]
            if loss and forward:
                ratio = loss[0]["predicted_us"] / forward[0]["predicted_us"]
                lines.append(f"{gpu} {dtype}: NormBT distance + loss at N32 D4096 = {100 * ratio:.0f} % of the pooling "
                             f"forward at B16 T2048 D4096 ({loss[0]['predicted_us']:.1f} / {forward[0]['predicted_us']:.1f} µs)")
    return lines


def section_body(command: str, where: str, anchors: list[dict], found: list[dict], gpus: list[str], image: str) -> str:
    """The markdown of one run in bench/RESULTS.md: command, calibration, goals, plot, pass and kernel tables."""
    good, bad = (", ".join(f"{100 * r['predicted_fraction']:.0f} % on {r['gpu']}" for r in anchors if r["variant"] == name)
                 for name in ("copy_128bit_4warps", "copy_32bit_1warp"))
    goals = "\n".join(f"- {line}" for line in targets(found))
    return (f"`{command}` ({where}). Calibration: the streaming copy is predicted at {good} of the copy bandwidth, "
            f"the bad copy at {bad}.\n\n{goals}\n\n![predicted share of copy bandwidth]({image})\n\n#### Passes\n\n"
            f"{pass_table(found, gpus)}\n\n#### Kernels\n\n{kernel_table(found, gpus)}")


def write_section(results_md: Path, label: str, body: str) -> None:
    """Put `body` under `### <label>` in the model's section of `results_md`, replacing an earlier subsection
    with that label and keeping the others (a `before` table stays when an `after` one is added)."""
    text = results_md.read_text() if results_md.exists() else ""
    intro = (f"{SECTION}\n\nEvery figure in this section is {PREDICTED}: read from the sm_90 SASS of each launch "
             "and the launch plan for the GPU (docs/gpu_model.md gives the equations, the calibration and how far to "
             "trust them). Measured GPU figures come only from `python -m bench.gpu_check`.\n")
    if SECTION not in text:
        text = text.rstrip("\n") + "\n\n" + intro + "\n"
    start = text.index(SECTION)
    following = re.search(r"^## ", text[start + len(SECTION):], flags=re.M)
    end = start + len(SECTION) + following.start() if following else len(text)
    section = text[start:end]
    subsections = re.split(r"(?=^### )", section, flags=re.M)
    head, parts = subsections[0], subsections[1:]
    new = f"### {label}\n\n{body.strip()}\n\n"
    parts = [new if part.startswith(f"### {label}\n") else part for part in parts]
    if new not in parts:
        parts.append(new)
    results_md.write_text(text[:start] + head + "".join(parts).rstrip("\n") + "\n" + ("\n" + text[end:] if text[end:] else ""))
