"""The markdown summary of a `gpu_check.json` report: one status line per step, then the figures."""
from __future__ import annotations

MAX_LISTED = 20


def _mib(nbytes) -> str:
    return "–" if nbytes is None else f"{nbytes / 2**20:.2f}"


def _num(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _status_lines(report: dict) -> list[str]:
    lines = ["| step | status | seconds | note |", "|---|---|---|---|"]
    for name in report["steps"]:
        step = report[name]
        note = (step.get("reason") or "").replace("|", "/").replace("\n", " ")
        lines.append(f"| {name} | {step['status']} | {_num(step.get('seconds'), '.0f')} | {note[:300]} |")
    return lines


def _selftest(step: dict) -> list[str]:
    checked = step.get("selftest") or {}
    if "rows" not in checked:
        return []
    return [f"**self-test** (`{checked['command']}`): {checked['passed']} rows passed, {len(checked['failed'])} failed, "
            f"{checked['skipped']} skipped; worst error / bound {_num(checked['worst_ratio'], '.3f')}"
            + "".join(f"\n- FAILED {row}" for row in checked["failed"][:MAX_LISTED])]


def _tests(step: dict) -> list[str]:
    if "passed" not in step:
        return _selftest(step)
    lines = [*_selftest(step),
             f"**tests**: {step['passed']} passed, {step['failed']} failed, {step['errors']} errors, {step['skipped']} skipped"
             f" of {step['collected']} collected ({', '.join(step['files'])})"]
    lines += [f"- FAILED `{f['test']}` ({f['when']}): "
              f"{f['message'].strip().splitlines()[-1][:200] if f['message'].strip() else ''}"
              for f in step["failures"][:MAX_LISTED]]
    return lines


def _torch_compile(step: dict) -> list[str]:
    checks = step.get("checks", [])
    if not checks:
        return []
    lines = ["**torch.compile (Inductor, fullgraph=True)**", "",
             "| check | status | matches eager (worst |diff|) | copies of hidden | writes to inputs "
             "| forward peak over eager / hidden | kernels seen |",
             "|---|---|---|---|---|---|---|"]
    for c in checks:
        worst = c.get("worst") or {}
        lines.append(
            f"| {c['name']} | {c['status']} | {c.get('values_match_eager', '–')} ({_num(worst.get('max_abs_diff'), '.2g')}) "
            f"| {len(c['hidden_copies']) if 'hidden_copies' in c else '–'} "
            f"| {len(c['input_writes']) if 'input_writes' in c else '–'} "
            f"| {_num(c.get('forward_extra_over_hidden'), '.3f')} | {len(c.get('triton_kernels', []))} |"
        )
    return lines


def _cuda_graphs(step: dict) -> list[str]:
    cases = step.get("cases", [])
    if not cases:
        return []
    lines = ["**CUDA graphs** (capture, refill, replay vs eager)", "",
             "| op | pass | mode | status | equal |", "|---|---|---|---|---|"]
    for c in cases:
        op = f"{c['op']}[{c['variant']}]" if c["variant"] else c["op"]
        lines.append(f"| {op} | {c['pass']} | {c.get('mode', '–')} | {c['status']} | {c.get('equal_to_eager', '–')} |")
    return lines


def _head_memory(step: dict) -> list[str]:
    rows = step.get("rows", [])
    if not rows:
        return []
    lines = ["**AdaJudgeHead on bf16 hidden** (fp32 head): pooled in bf16 vs upcast first", "",
             "| num_blocks | shape | mode | bf16 peak MiB | upcast peak MiB | peak ratio | bf16 ms | upcast ms |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        shape = " ".join(f"{k}={v}" for k, v in r["shape"].items())
        lines.append(f"| {r['num_blocks']} | {shape} | {r['mode']} "
                     f"| {_mib(r['bf16']['peak_memory_bytes'])} | {_mib(r['upcast']['peak_memory_bytes'])} "
                     f"| {r['peak_ratio']:.2f} | {r['bf16']['median_ms']:.3f} | {r['upcast']['median_ms']:.3f} |")
    return lines


def _bench(step: dict) -> list[str]:
    lines = []
    for run in step.get("runs", []):
        head = f"**bench {run['name']}, pool forward {run['pool_forward']}**: {run['status']}"
        if "copy_bandwidth_gbps" not in run:
            lines += [head, ""]
            continue
        lines += [f"{head}; copy bandwidth {run['copy_bandwidth_gbps']:.1f} GB/s; {run['dtype']}; `{run['command']}`", "",
                  "| op | shape | pass | impl | median ms | GB/s | % copy BW | × eager | × compile |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in run["rows"]:
            op = f"{r['op']}[{r['variant']}]" if r["variant"] else r["op"]
            shape = " ".join(f"{k}={v}" for k, v in r["shape"].items())
            fraction = None if r["fraction_of_copy_bandwidth"] is None else 100 * r["fraction_of_copy_bandwidth"]
            lines.append(f"| {op} | {shape} | {r['pass']} | {r['impl']} | {r['median_ms']:.4f} | {_num(r['gbps'], '.1f')} "
                         f"| {_num(fraction, '.0f')} | {_num(r['speedup_vs_eager'], '.2f')} "
                         f"| {_num(r['speedup_vs_compile'], '.2f')} |")
        lines.append("")
    comparison = step.get("pool_forward_comparison", [])
    if comparison:
        lines += ["**multiview_pool, backend=auto: fused vs two_phase forward**", "",
                  "| preset | shape | pass | fused ms | two_phase ms | two_phase / fused |", "|---|---|---|---|---|---|"]
        for c in comparison:
            shape = " ".join(f"{k}={v}" for k, v in c["shape"].items())
            lines.append(f"| {c['preset']} | {shape} | {c['pass']} | {c['fused']['median_ms']:.4f} "
                         f"| {c['two_phase']['median_ms']:.4f} | {c['two_phase_over_fused_time']:.2f} |")
    return lines


def _gpu_model(step: dict) -> list[str]:
    rows = step.get("rows", [])
    if not rows:
        return []
    lines = ["**measured vs predicted by the static model** (`python -m bench.gpu_model --compare`, this GPU's SMs "
             "and measured copy bandwidth)", "",
             "| op | shape | pass | pool forward | measured µs | predicted µs | predicted / measured | limiter (predicted) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        op = f"{r['op']}[{r['variant']}]" if r["variant"] else r["op"]
        shape = " ".join(f"{k}={v}" for k, v in r["shape"].items())
        lines.append(f"| {op} | {shape} | {r['pass']} | {r['pool_forward'] or '–'} | {r['measured_us']:.1f} "
                     f"| {r['predicted_us']:.1f} | {r['predicted_over_measured']:.2f} | {r['limiter']} |")
    return lines


def markdown(report: dict) -> str:
    device = report["device"]
    kind = ("DRY RUN (CPU, toy sizes: no GPU figure)" if report["dry_run"]
            else f"GPU: {device['name']} ({device.get('capability')})")
    versions = report["versions"]
    lines = [
        f"# adajudge GPU check: {'ok' if report['ok'] else 'NOT ok'}",
        "",
        f"{kind}; host {device.get('host', device['name'])}; torch {versions['torch']}, triton {versions['triton']}, "
        f"CUDA {versions['cuda']}, python {versions['python']}; commit {(report['git']['commit'] or 'none')[:12]}; "
        f"{report['seconds'].get('total', 0):.0f} s of a {report['budget_s']:.0f} s budget; `{report['command']}`",
        "",
        *_status_lines(report),
    ]
    for section in (_tests(report["tests"]), _torch_compile(report["torch_compile"]), _cuda_graphs(report["cuda_graphs"]),
                    _head_memory(report["head_memory"]), _bench(report["bench"]), _gpu_model(report.get("gpu_model", {}))):
        if section:
            lines += ["", *section]
    return "\n".join(lines) + "\n"
