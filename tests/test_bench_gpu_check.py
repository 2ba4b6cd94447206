"""`python -m bench.gpu_check`: the dry run's report contract, and the pieces whose failure the GPU run
could not survive (the copy detector, the time limits, the outcome log)."""
import json
import sys
import time

import pytest
import torch

from bench.gpu import process
from bench.gpu.compile_checks import GraphRecorder
from bench.gpu.steps import summarize_outcomes, variant_comparison
from bench.gpu_check import main as gpu_check
from bench.head_memory import compare

REPORT_KEYS = {"device", "dry_run", "tests", "torch_compile", "cuda_graphs", "bench", "gpu_model", "seconds", "head_memory",
               "ok", "versions", "packages", "skipped"}


class AotTarget:
    """A Triton driver stand-in that only names a compile target, so TTIR builds without a GPU."""

    def get_current_target(self):
        from triton.backends.compiler import GPUTarget

        return GPUTarget("cuda", 90, 32)


def _functional_graph(kernel):
    """The functionalized graph of one launch of `kernel(x_ptr, out_ptr, n, BLOCK)`, as Inductor sees it."""
    from torch._higher_order_ops.triton_kernel_wrap import kernel_side_table, triton_kernel_wrapper_mutation
    from torch.fx.experimental.proxy_tensor import make_fx

    def launch(x):
        out = torch.empty_like(x)
        triton_kernel_wrapper_mutation(
            kernel_idx=kernel_side_table.add_kernel(kernel),
            constant_args_idx=kernel_side_table.add_constant_args({"n": 8, "BLOCK": 8}),
            grid=[(1, 1, 1)], tma_descriptor_metadata={}, kwargs={"x_ptr": x, "out_ptr": out},
        )
        return out

    return make_fx(torch.func.functionalize(launch), tracing_mode="fake")(torch.randn(8)).graph


def test_graph_recorder_flags_a_kernel_that_writes_its_input_and_only_that(monkeypatch):
    triton = pytest.importorskip("triton")
    import triton.language as tl
    from triton.runtime.jit import JITFunction  # not triton.jit: the suite may run under TRITON_INTERPRET=1

    @JITFunction
    def doubles(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
        offsets = tl.arange(0, BLOCK)
        mask = offsets < n
        tl.store(out_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) * 2, mask=mask)

    @JITFunction
    def doubles_and_rewrites_input(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
        offsets = tl.arange(0, BLOCK)
        mask = offsets < n
        x = tl.load(x_ptr + offsets, mask=mask)
        tl.store(out_ptr + offsets, x * 2, mask=mask)
        tl.store(x_ptr + offsets, x, mask=mask)

    monkeypatch.setattr(triton.runtime.driver, "_active", AotTarget())
    recorder = GraphRecorder()
    recorder(_functional_graph(doubles))
    recorder(_functional_graph(doubles_and_rewrites_input))
    clean, writer = recorder.graphs
    assert clean == {"triton_kernels": ["doubles"], "input_copies": []}
    assert writer["triton_kernels"] == ["doubles_and_rewrites_input"]
    assert {c["by"] for c in writer["input_copies"]} == {"doubles_and_rewrites_input(x_ptr=...)", "copy_ into the input"}
    assert all(c["shape"] == [8] for c in writer["input_copies"])


def test_parallel_children_are_killed_at_the_limit_and_late_jobs_not_started(tmp_path):
    log = tmp_path / "log"
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    start = time.perf_counter()
    done = process.run_parallel([("a", sleep), ("b", [sys.executable, "-c", "print('hi')"]), ("c", sleep)],
                                parallel=2, limit_s=3, log=log, env={}, cwd=tmp_path)
    assert time.perf_counter() - start < 20
    assert done["a"].timed_out and not done["b"].timed_out and done["b"].returncode == 0
    assert "hi" in done["b"].tail
    assert done["c"] is None or done["c"].timed_out  # started after b ended, then cut at the same deadline


def test_outcome_log_counts_what_finished_before_a_kill(tmp_path):
    path = tmp_path / "outcomes.jsonl"
    events = [
        {"event": "collected", "count": 5},
        {"event": "report", "nodeid": "t::a", "when": "call", "outcome": "passed", "duration": 1, "message": None},
        {"event": "report", "nodeid": "t::b", "when": "call", "outcome": "failed", "duration": 1, "message": "E  boom"},
        {"event": "report", "nodeid": "t::c", "when": "setup", "outcome": "skipped", "duration": 0, "message": "Skipped: no GPU"},
    ]
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    summary = summarize_outcomes(path)
    assert (summary["passed"], summary["failed"], summary["skipped"], summary["not_run"]) == (1, 1, 1, 2)
    assert not summary["finished"] and summary["failures"][0]["test"] == "t::b"


def test_variant_comparison_pairs_the_pooling_rows_of_both_variants():
    def run(variant, ms):
        rows = [{"op": "multiview_pool", "impl": "adajudge", "shape": {"B": 8}, "pass": "forward", "median_ms": ms,
                 "gbps": 1.0, "fraction_of_copy_bandwidth": 0.5},
                {"op": "router_mix", "impl": "adajudge", "shape": {"N": 8}, "pass": "forward", "median_ms": 1.0}]
        return {"name": "pooling", "pool_forward": variant, "rows": rows}

    (entry,) = variant_comparison([run("fused", 2.0), run("two_phase", 1.0)])
    assert entry["shape"] == {"B": 8} and entry["two_phase_over_fused_time"] == 0.5


def test_head_memory_reports_both_calls_and_their_ratio():
    row = compare({"B": 2, "T": 32, "D": 32}, num_blocks=0, mode="train_all", device=torch.device("cpu"), rounds=1)
    assert row["hidden_bytes"] == 2 * 32 * 32 * 2
    for call in ("bf16", "upcast"):
        assert row[call]["peak_memory_bytes"] > 0 and row[call]["median_ms"] > 0
    assert row["peak_ratio"] == row["bf16"]["peak_memory_bytes"] / row["upcast"]["peak_memory_bytes"]


def test_gpu_run_without_a_gpu_is_refused_clearly(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the real run would start")
    with pytest.raises(SystemExit, match="--dry-run"):
        gpu_check(["--out", str(tmp_path)])


@pytest.mark.slow
def test_dry_run_reports_every_step_ok_or_skipped_with_a_reason(tmp_path):
    """The whole dry run (about 3-4 minutes on a 2-core CPU): what CI can check of the one-call GPU run."""
    code = gpu_check(["--dry-run", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert REPORT_KEYS <= set(report), REPORT_KEYS - set(report)
    assert report["dry_run"] is True and report["device"]["type"] == "cpu"
    for step in report["steps"]:
        status = report[step]["status"]
        assert status == "ok" or (status == "skipped" and report[step]["reason"]), (step, report[step].get("reason"))
    assert code == 0 and report["ok"] is True
    assert report["tests"]["passed"] > 0 and report["tests"]["failed"] == 0
    selftest = report["tests"]["selftest"]
    assert selftest["status"] == "ok" and selftest["rows"] == 11 and selftest["failed"] == []  # router_mix's rows
    assert {c["name"] for c in report["torch_compile"]["checks"]} >= {"pool_loss_padded", "head_no_blocks", "head"}
    assert all(c["mode"] == "direct" for c in report["cuda_graphs"]["cases"] if c["status"] != "skipped")
    runs = report["bench"]["runs"]
    assert {(r["name"], r["pool_forward"]) for r in runs} == {(n, v) for n in ("pooling", "quick")
                                                               for v in ("fused", "two_phase")}
    assert all(row["pool_forward"] == r["pool_forward"] for r in runs for row in r["rows"])
    assert report["bench"]["pool_forward_comparison"]
    assert report["seconds"]["total"] < report["budget_s"]
    assert "# adajudge GPU check: ok" in (tmp_path / "gpu_check.md").read_text()
