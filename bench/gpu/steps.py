"""The steps of `python -m bench.gpu_check`. Each runs child processes under a hard time limit and returns
a dict with `status` ("ok", "failed", "timed_out" or "skipped"), `reason` when not ok, and its details.

- `tests`: `python -m adajudge.selftest` (every op × backend × dtype × layout against the reference, and
  `torch.library.opcheck` on the custom ops; run from the runs folder, as a user without the repository
  would), then pytest on the op, kernel and head test files (the compiled kernels on a GPU; a dry run runs
  one op's self-test rows and tests under the Triton interpreter). Outcomes come from the self-test's JSON
  and `bench.gpu.pytest_log`, so a run cut at its limit still reports what passed and failed.
- `torch_compile`: `bench.gpu.compile_checks`, one process per check (in parallel on a big host).
- `cuda_graphs`: `bench.gpu.cudagraph_checks`.
- `head_memory`: `bench.head_memory`.
- `bench`: `python -m bench` for `BENCH_RUNS`, once per pooling forward variant, with the run's measured
  copy bandwidth; each run stops starting cases at its soft limit and is killed at its hard limit, and
  keeps what it measured (`results.json` is written after every case).
- `gpu_model`: the static model's prediction beside every adajudge row the bench step measured
  (`python -m bench.gpu_model --compare`; skipped in a dry run).
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from adajudge.kernels.pool_forward import FORWARD_VARIANTS
from bench.gpu import process

# The self-test's arguments and its share of the tests step's time (it runs first, pytest gets the rest).
# On a GPU the self-test's time is mostly Triton compiles (one per new specialisation): 8 cases per row reach
# ~200, estimated at 30-50 s (docs/testing.md).
SELFTEST_ARGUMENTS = ["--device", "cuda", "--examples", "8"]
DRY_RUN_SELFTEST_ARGUMENTS = ["--device", "cpu", "--ops", "router_mix", "--examples", "3"]
SELFTEST_SHARE = 0.5
TEST_FILES = ("tests/test_ops_*.py", "tests/test_kernels_*.py", "tests/test_nn_heads.py", "tests/test_nn_refinement.py")
DRY_RUN_TEST_FILES = ("tests/test_ops_router_mix.py",)
PER_TEST_TIMEOUT_S = 300  # with pytest-timeout installed: one hung test does not take the whole step
MESSAGE_CHARS = 1500
# (name, pooling forward variant, arguments on a GPU, arguments in a dry run); in priority order: the last
# run gets whatever time the others leave. `quick` runs every op once (fused variant) and the pooling op
# again with the other variant.
BENCH_RUNS = (
    ("pooling", "fused", ["--preset", "pooling", "--ops", "multiview_pool"], ["--preset", "tiny", "--ops", "multiview_pool"]),
    ("pooling", "two_phase", ["--preset", "pooling", "--ops", "multiview_pool"], ["--preset", "tiny", "--ops", "multiview_pool"]),
    ("quick", "two_phase", ["--quick", "--ops", "multiview_pool"], ["--preset", "tiny", "--ops", "multiview_pool"]),
    ("quick", "fused", ["--quick"], ["--preset", "tiny"]),
)
BENCH_SHARES = (25, 25, 40, 75)
BENCH_TAIL_S = 30.0  # after the soft limit: the case in flight, the closing copy bandwidth, plots, writing
DRY_RUN_IMPLS = "eager,adajudge"  # Inductor on a 2-core CPU takes minutes per op


@dataclass
class Context:
    out: Path  # --out: gpu_check.json, gpu_check.md, gpu_check.log
    runs: Path  # per-run files (pytest outcomes, worker results, bench results and plots)
    log: Path
    repo: Path
    dry_run: bool
    env: dict
    parallel: int  # torch_compile checks at once: a quarter of the cores on a GPU host (Inductor's compile
    # workers use the rest), every core in a dry run

    def worker(self, step: str, result: Path, *extra: str) -> list[str]:
        dry = ["--dry-run"] if self.dry_run else []
        return [sys.executable, "-m", "bench.gpu.worker", step, "--result", str(result), *extra, *dry]


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _crashed(finished: process.Finished, what: str) -> dict:
    if finished.timed_out:
        return {"status": "timed_out", "reason": f"{what} ran out of its {finished.seconds:.0f} s"}
    return {"status": "failed", "reason": f"{what} exited with {finished.returncode}", "output_tail": finished.tail}


def _overall(statuses: list[str]) -> str:
    if "failed" in statuses:
        return "failed"
    if "timed_out" in statuses or "not_started" in statuses:
        return "timed_out"
    return "ok"


# ----- tests


def test_files(repo: Path, dry_run: bool) -> list[str]:
    patterns = DRY_RUN_TEST_FILES if dry_run else TEST_FILES
    return sorted({str(path.relative_to(repo)) for pattern in patterns for path in repo.glob(pattern)})


def _pytest_command(ctx: Context, files: list[str], outcomes: Path) -> list[str]:
    command = [sys.executable, "-m", "pytest", *files, "-q", "-p", "no:cacheprovider",
               "-p", "bench.gpu.pytest_log", "--gpu-check-log", str(outcomes)]
    if not ctx.dry_run and importlib.util.find_spec("xdist") is not None:
        command += ["-n", str(max(1, min(8, (os.cpu_count() or 2) // 2)))]
    if importlib.util.find_spec("pytest_timeout") is not None:
        command += ["--timeout", str(PER_TEST_TIMEOUT_S)]
    return command


def summarize_outcomes(path: Path) -> dict:
    """Counts, failures and skips from a `bench.gpu.pytest_log` file."""
    counts = Counter(passed=0, failed=0, skipped=0, errors=0)
    failures, skips, collected, exitstatus = [], Counter(), None, None
    lines = path.read_text().splitlines() if path.exists() else []
    for line in lines:
        event = json.loads(line)
        if event["event"] == "collected":
            collected = max(collected or 0, event["count"])
        elif event["event"] == "finished":
            exitstatus = event["exitstatus"]
        elif event["outcome"] == "skipped":
            counts["skipped"] += 1
            skips[(event["message"] or "skipped").strip()[-200:]] += 1
        elif event["outcome"] == "failed":
            counts["failed" if event["when"] == "call" else "errors"] += 1
            failures.append({"test": event["nodeid"], "when": event["when"],
                             "message": (event["message"] or "")[-MESSAGE_CHARS:]})
        elif event["when"] == "call":
            counts["passed"] += 1
    done = counts["passed"] + counts["failed"] + counts["skipped"]
    return {**counts, "collected": collected, "not_run": None if collected is None else max(0, collected - done),
            "finished": exitstatus is not None, "exitstatus": exitstatus, "failures": failures,
            "skip_reasons": [{"reason": reason, "count": n} for reason, n in skips.most_common()]}


def selftest(ctx: Context, limit_s: float) -> dict:
    """`python -m adajudge.selftest ... --json runs/selftest.json`, from the runs folder."""
    out = ctx.runs / "selftest.json"
    out.unlink(missing_ok=True)
    arguments = DRY_RUN_SELFTEST_ARGUMENTS if ctx.dry_run else SELFTEST_ARGUMENTS
    command = [sys.executable, "-m", "adajudge.selftest", *arguments, "--json", str(out)]
    finished = process.run("selftest", command, limit_s=limit_s, log=ctx.log, env=ctx.env, cwd=ctx.runs)
    report = _read_json(out)  # rewritten after every row
    summary = {"command": " ".join(["python", *command[1:]]), "seconds": finished.seconds}
    if report is None:
        return {**summary, **_crashed(finished, "the self-test")}
    records = report["records"]
    failed = [f"{r['op']} {r['backend']} {r['dtype']} {r['layout']}" for r in records if r["status"] == "failed"]
    summary.update(rows=len(records), passed=sum(r["status"] == "passed" for r in records), failed=failed,
                   skipped=sum(r["status"] == "skipped" for r in records), unreached_ops=report["unreached_ops"],
                   worst_ratio=max((r["worst_ratio"] for r in records if r["worst_ratio"] is not None), default=None),
                   records=records)
    if finished.timed_out:
        ran = sum(r["status"] != "pending" for r in records)
        return {**summary, "status": "timed_out", "reason": f"the self-test ran out of its {limit_s:.0f} s after "
                                                            f"{ran} of {len(records)} rows ({len(failed)} failed)"}
    if not report["passed"] or finished.returncode != 0:
        reason = f"{len(failed)} rows failed ({'; '.join(failed[:5])})" + (
            f", unreached ops {report['unreached_ops']}" if report["unreached_ops"] else "")
        return {**summary, "status": "failed", "reason": reason, "output_tail": finished.tail}
    return {**summary, "status": "ok"}


def tests(ctx: Context, limit_s: float) -> dict:
    started = time.perf_counter()
    checked = selftest(ctx, limit_s * SELFTEST_SHARE)
    result = _pytest(ctx, limit_s - (time.perf_counter() - started))
    result["selftest"] = checked
    if checked["status"] != "ok":
        status = "failed" if "failed" in (checked["status"], result["status"]) else "timed_out"
        reasons = [f"self-test: {checked['reason']}", *([result["reason"]] if result.get("reason") else [])]
        result.update(status=status, reason="; ".join(reasons))
    return result


def _pytest(ctx: Context, limit_s: float) -> dict:
    files = test_files(ctx.repo, ctx.dry_run)
    outcomes = ctx.runs / "tests.jsonl"
    outcomes.unlink(missing_ok=True)
    command = _pytest_command(ctx, files, outcomes)
    finished = process.run("tests", command, limit_s=limit_s, log=ctx.log, env=ctx.env, cwd=ctx.repo)
    summary = {"files": files, "command": " ".join(command[1:]), **summarize_outcomes(outcomes)}
    if finished.timed_out:
        return {**summary, "status": "timed_out",
                "reason": f"pytest ran out of its {limit_s:.0f} s after {summary['passed']} passed, {summary['failed']} failed"}
    if summary["failed"] or summary["errors"] or finished.returncode != 0:
        reason = f"{summary['failed']} failed, {summary['errors']} errors, pytest exit status {finished.returncode}"
        return {**summary, "status": "failed", "reason": reason, "output_tail": finished.tail}
    return {**summary, "status": "ok"}


# ----- torch.compile, CUDA graphs, head memory (workers)


def torch_compile(ctx: Context, limit_s: float) -> dict:
    from bench.gpu.compile_checks import CHECKS

    results = {name: ctx.runs / f"torch_compile-{name}.json" for name in CHECKS}
    for path in results.values():
        path.unlink(missing_ok=True)
    jobs = [(f"torch_compile {name}", ctx.worker("torch_compile", path, "--check", name)) for name, path in results.items()]
    done = process.run_parallel(jobs, parallel=ctx.parallel, limit_s=limit_s, log=ctx.log, env=ctx.env, cwd=ctx.repo)
    checks = []
    for (job, _), (name, path) in zip(jobs, results.items()):
        finished, result = done[job], _read_json(path)
        if finished is None:
            checks.append({"name": name, "status": "not_started", "reason": "the step's time limit came first"})
        elif result is None or finished.timed_out:
            checks.append({"name": name, **(result or {}), **_crashed(finished, f"check {name}")})
        else:
            checks.append(result)
    status = _overall([c["status"] for c in checks])
    summary = {"status": status, "checks": checks}
    if status != "ok":
        summary["reason"] = "; ".join(f"{c['name']}: {c.get('reason', c['status'])}"
                                      for c in checks if c["status"] not in ("ok", "skipped"))
    return summary


def cuda_graphs(ctx: Context, limit_s: float) -> dict:
    path = ctx.runs / "cuda_graphs.json"
    path.unlink(missing_ok=True)
    finished = process.run("cuda_graphs", ctx.worker("cuda_graphs", path), limit_s=limit_s, log=ctx.log, env=ctx.env,
                           cwd=ctx.repo)
    cases = (_read_json(path) or {}).get("cases", [])
    summary = {"cases": cases}
    if finished.timed_out or finished.returncode != 0:
        return {**summary, **_crashed(finished, "the CUDA-graph worker")}
    status = _overall([c["status"] for c in cases])
    if status != "ok":
        bad = [f"{c['op']}[{c['variant']}] {c['pass']}: {c['reason']}" for c in cases if c["status"] not in ("ok", "skipped")]
        return {**summary, "status": status, "reason": "; ".join(bad)}
    if ctx.dry_run:
        return {**summary, "status": "skipped",
                "reason": "no CUDA device in a dry run, so no graph was captured; the capture/refill/replay/compare "
                          "harness ran with direct calls instead (mode 'direct'), and every case matched"}
    return {**summary, "status": "ok"}


def head_memory(ctx: Context, limit_s: float) -> dict:
    path = ctx.runs / "head_memory.json"
    path.unlink(missing_ok=True)
    finished = process.run("head_memory", ctx.worker("head_memory", path), limit_s=limit_s, log=ctx.log, env=ctx.env,
                           cwd=ctx.repo)
    result = _read_json(path)  # written once, complete, at the worker's end
    if result is None:
        return _crashed(finished, "the head memory worker")
    return {**result, "status": "ok"}


# ----- bench


def _bench_rows(records: list[dict]) -> list[dict]:
    keys = ("op", "variant", "shape", "pass", "impl", "median_ms", "gbps", "fraction_of_copy_bandwidth",
            "speedup_vs_eager", "peak_memory_bytes", "max_abs_diff_vs_eager", "timer", "adajudge_backend", "pool_forward")
    rows = []
    for record in records:
        row = {key: record.get(key) for key in keys}
        row["iqr_ms"] = record["spread"]["iqr_ms"]
        compiled = [r for r in records if r["impl"] == "compile" and r["op"] == record["op"] and r["variant"] == record["variant"]
                    and r["shape"] == record["shape"] and r["pass"] == record["pass"]]
        row["speedup_vs_compile"] = compiled[0]["median_ms"] / record["median_ms"] if compiled else None
        rows.append(row)
    return rows


def _bench_run(ctx: Context, name: str, variant: str, arguments: list[str], limit_s: float) -> dict:
    out = ctx.runs / f"bench-{name}-{variant}"
    (out / "results.json").unlink(missing_ok=True)
    device = ["--device", "cpu", "--impls", DRY_RUN_IMPLS] if ctx.dry_run else ["--device", "cuda"]
    soft = max(1.0, limit_s - BENCH_TAIL_S)
    command = [sys.executable, "-m", "bench", *arguments, *device, "--no-static-report", "--pool-forward", variant,
               "--time-limit-s", f"{soft:.0f}", "--out", str(out)]
    finished = process.run(f"bench {name} {variant}", command, limit_s=limit_s, log=ctx.log, env=ctx.env, cwd=ctx.repo)
    data = _read_json(out / "results.json")
    run = {"name": name, "pool_forward": variant, "command": " ".join(["python", *command[1:]]), "seconds": finished.seconds,
           "limit_s": limit_s}
    if data is not None:
        meta = data["meta"]
        run.update(complete=meta.get("complete"), preset=meta["preset"], dtype=meta["dtype"], impls=meta["impls"],
                   copy_bandwidth_gbps=meta["copy_bandwidth"]["gbps"], copy_bandwidth=meta["copy_bandwidth"],
                   machine=meta["machine_description"], not_run=meta.get("not_run", []), omitted=meta["omitted"],
                   rows=_bench_rows(data["records"]))
    if finished.timed_out or finished.returncode != 0 or data is None:
        return {**run, **_crashed(finished, f"python -m bench ({name}, {variant})")}
    if run["not_run"]:
        return {**run, "status": "timed_out", "reason": f"{len(run['not_run'])} cases not started before the soft limit"}
    return {**run, "status": "ok"}


def variant_comparison(runs: list[dict]) -> list[dict]:
    """`multiview_pool` with `backend="auto"` per (preset, shape, pass) under both forward variants."""
    by_key: dict[tuple, dict] = {}
    for run in runs:
        for row in run.get("rows", []):
            if row["op"] == "multiview_pool" and row["impl"] == "adajudge":
                key = (run["name"], json.dumps(row["shape"], sort_keys=True), row["pass"])
                by_key.setdefault(key, {})[run["pool_forward"]] = row
    table = []
    for (preset, shape, pass_), rows in by_key.items():
        if all(v in rows for v in FORWARD_VARIANTS):
            entry = {"preset": preset, "shape": json.loads(shape), "pass": pass_}
            for v in FORWARD_VARIANTS:
                entry[v] = {k: rows[v][k] for k in ("median_ms", "gbps", "fraction_of_copy_bandwidth")}
            entry["two_phase_over_fused_time"] = rows["two_phase"]["median_ms"] / rows["fused"]["median_ms"]
            table.append(entry)
    return table


def bench(ctx: Context, limit_s: float) -> dict:
    deadline = time.perf_counter() + limit_s
    runs = []
    for index, (name, variant, gpu_arguments, dry_arguments) in enumerate(BENCH_RUNS):
        left = deadline - time.perf_counter()
        share = left * BENCH_SHARES[index] / sum(BENCH_SHARES[index:])
        if share < 5:
            runs.append({"name": name, "pool_forward": variant, "status": "not_started",
                         "reason": "the step's time limit came first"})
            continue
        runs.append(_bench_run(ctx, name, variant, dry_arguments if ctx.dry_run else gpu_arguments, share))
    status = _overall([r["status"] for r in runs])
    summary = {"status": status, "runs": runs, "pool_forward_comparison": variant_comparison(runs)}
    if status != "ok":
        summary["reason"] = "; ".join(f"{r['name']} {r['pool_forward']}: {r['reason']}" for r in runs if r["status"] != "ok")
    return summary


# ----- the static model beside the measurements


def gpu_model(ctx: Context, limit_s: float) -> dict:
    """`python -m bench.gpu_model --compare` on the bench step's results: the model's predicted time for every
    adajudge row measured, on this GPU's SM count and the copy bandwidth each run measured."""
    results = sorted(ctx.runs.glob("bench-*/results.json"))
    if ctx.dry_run:
        return {"status": "skipped", "reason": "a dry run measures no GPU time to set predictions beside"}
    if not results:
        return {"status": "skipped", "reason": "no bench results to compare with (the bench step did not run)"}
    import torch

    props = torch.cuda.get_device_properties(0)
    path = ctx.runs / "gpu_model_comparison.json"
    path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "bench.gpu_model", "--compare", *map(str, results), "--multiprocessors",
               str(props.multi_processor_count), "--device-name", props.name, "--arch", f"{props.major}{props.minor}",
               "--json", str(path)]
    finished = process.run("gpu_model", command, limit_s=limit_s, log=ctx.log, env=ctx.env, cwd=ctx.repo)
    rows = _read_json(path)
    if finished.timed_out or finished.returncode != 0 or rows is None:
        return _crashed(finished, "python -m bench.gpu_model --compare")
    return {"status": "ok", "rows": rows, "command": " ".join(["python", *command[1:]])}


STEPS = {"tests": tests, "torch_compile": torch_compile, "cuda_graphs": cuda_graphs, "head_memory": head_memory, "bench": bench,
         "gpu_model": gpu_model}
SHARES_S = {"tests": 150, "torch_compile": 100, "cuda_graphs": 40, "head_memory": 25, "bench": 165,  # of the 480 s budget
            "gpu_model": 20}
