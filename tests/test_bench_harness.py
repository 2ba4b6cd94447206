"""The benchmark harness (`python -m bench`): its output contract and the pieces its numbers rest on."""
import importlib.util
import json
import time

import pytest
import torch

from adajudge.kernels.pool_forward import FORWARD_VARIANT_ENV, FORWARD_VARIANTS
from bench.bytes_model import bytes_moved
from bench.cases import TRITON_OPS as OPS
from bench.cli import main
from bench.memory import peak_cpu
from bench.passes import PassRun
from bench.static_report import rows_for
from bench.timing import time_cpu

RECORD_FIELDS = {
    "op", "variant", "impl", "pass", "shape", "dtype", "device", "median_ms", "spread", "gbps",
    "fraction_of_copy_bandwidth", "peak_memory_bytes", "versions", "git_commit", "machine", "speedup_vs_eager",
    "speedup_vs_compile",
    "bytes_model", "warmup_s", "max_abs_diff_vs_eager",
}


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()  # the CLI sets the process's intra-op threads (--threads)
    yield
    torch.set_num_threads(threads)


def _run(tmp_path, *options) -> tuple[dict, list[dict]]:
    ops = [] if "--ops" in options else ["--ops", ",".join(OPS)]
    code = main(["--preset", "tiny", "--out", str(tmp_path), *ops, "--device", "cpu", *options])
    assert code == 0
    data = json.loads((tmp_path / "results.json").read_text())
    return data["meta"], data["records"]


def _has_rows(records, impls) -> None:
    for op in OPS:
        for impl in impls:
            for pass_ in ("forward", "backward", "full"):
                assert any(r["op"] == op and r["impl"] == impl and r["pass"] == pass_ for r in records), (op, impl, pass_)


def test_tiny_run_writes_records_table_and_plots(tmp_path, restore_threads, capsys):
    meta, records = _run(tmp_path, "--impls", "eager,adajudge", "--no-static-report", "--markdown")
    printed = capsys.readouterr().out  # a log, not a terminal: the table must come out whole
    header = next(line for line in printed.splitlines() if "median ms" in line)
    assert "× eager" in header and "× compile" in header and "peak MiB" in header
    assert "…" not in printed and all(op in printed for op in OPS)
    [first] = [line for line in printed.splitlines() if " cases × " in line]
    assert first.endswith("torch threads)")  # a sentence is one line in a log, never wrapped at 80 columns
    for record in records:
        assert RECORD_FIELDS <= set(record), RECORD_FIELDS - set(record)
        assert record["median_ms"] > 0 and record["spread"]["min_ms"] <= record["median_ms"] <= record["spread"]["max_ms"]
        assert set(record["versions"]) >= {"torch", "triton", "python"}
        assert record["device"] == "cpu" and record["dtype"] == "float32" and record["peak_memory_bytes"] > 0
        assert record["max_abs_diff_vs_eager"] < 1e-4
    _has_rows(records, ("eager", "adajudge"))
    pool = [r for r in records if r["op"] == "multiview_pool"]
    assert all(r["gbps"] > 0 and r["fraction_of_copy_bandwidth"] > 0 for r in pool)
    adajudge = [r for r in pool if r["impl"] == "adajudge"]
    assert all(r["adajudge_backend"] == "torch" for r in adajudge)
    assert all("PREDICTION" in r["prediction"]["note"] and r["prediction"]["h100_ms"] > 0 for r in adajudge)
    assert all(r["triton_static_report"] == {"available": False, "reason": "skipped (--no-static-report)",
                                             "archs": [], "rows": []} for r in adajudge)
    assert meta["copy_bandwidth"]["gbps"] > 0 and meta["machine"]["cpu_cores"] >= 1 and meta["torch_threads"] == 1
    for png in ("speedup_vs_size.png", "gbps_vs_size.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| multiview_pool | B=2 D=32 T=16 | forward | adajudge |" in (tmp_path / "results.md").read_text()
    assert all(r["speedup_vs_compile"] is None for r in records)  # no compile run here; the slow test has one


def test_without_matplotlib_a_run_writes_its_results_and_says_the_plots_are_skipped(tmp_path, restore_threads,
                                                                                     monkeypatch, capsys):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "matplotlib" else find_spec(name, *args))
    meta, records = _run(tmp_path, "--ops", "router_mix", "--impls", "eager,adajudge", "--passes", "forward",
                         "--no-static-report")
    assert records and meta["complete"] and not list(tmp_path.glob("*.png"))
    assert "plots: skipped (matplotlib missing" in capsys.readouterr().out


@pytest.mark.slow
def test_tiny_run_with_compile_and_static_report(tmp_path, restore_threads):
    """Minutes on a busy 2-core CPU: Inductor compiles every case, Triton builds the kernels for sm_80/90."""
    meta, records = _run(tmp_path)
    _has_rows(records, ("eager", "compile", "adajudge"))
    assert all(r["max_abs_diff_vs_eager"] < 1e-4 for r in records)
    for record in records:
        compiled = next(r for r in records if r["impl"] == "compile" and
                        (r["op"], r["variant"], r["shape"], r["pass"]) ==
                        (record["op"], record["variant"], record["shape"], record["pass"]))
        assert record["speedup_vs_compile"] == pytest.approx(compiled["median_ms"] / record["median_ms"])
    assert meta["static_report"]["available"], meta["static_report"]["reason"]
    pool = [r for r in records if r["op"] == "multiview_pool" and r["impl"] == "adajudge" and r["shape"]["T"] == 16]
    assert pool and all(r["triton_static_report"]["rows"] for r in pool)
    assert all(row["arch"] in ("sm_80", "sm_90") and "registers" in row
               for r in pool for row in r["triton_static_report"]["rows"])


def test_unknown_op_is_refused():
    with pytest.raises(SystemExit):
        main(["--ops", "softmax", "--out", "unused"])


def test_bytes_model_counts_each_tensor_once():
    shape = {"B": 2, "T": 3, "D": 4}
    # forward: hidden 2·3·4·4 + two int64 masks 2·2·3·8 + w_a, b_a 5·4 + views 2·4·4·4
    forward = bytes_moved("multiview_pool", "", shape, torch.float32, torch.int64, "forward")
    assert forward == 96 + 96 + 20 + 128
    # backward: hidden read + dH written, masks, w_a and b_a read + their grads written, upstream grad read
    backward = bytes_moved("multiview_pool", "", shape, torch.float32, torch.int64, "backward")
    assert backward == 192 + 96 + 40 + 128
    assert bytes_moved("multiview_pool", "", shape, torch.float32, torch.int64, "full") == forward + backward
    half = bytes_moved("multiview_pool", "", shape, torch.bfloat16, torch.int64, "forward")
    assert half == 48 + 96 + 10 + 64
    assert bytes_moved("adajudge_head", "", shape, torch.float32, torch.int64, "full") is None
    with pytest.raises(ValueError, match="pass_"):
        bytes_moved("router_mix", "", {"N": 4, "V": 3}, torch.float32, torch.int64, "sideways")


def test_cpu_peak_memory_sees_the_high_water_mark_of_tensors():
    def allocate():
        a = torch.empty(4_000_000, dtype=torch.uint8)
        b = torch.empty(2_000_000, dtype=torch.uint8)
        del a
        c = torch.empty(3_000_000, dtype=torch.uint8)
        return b, c

    live = torch.empty(50_000_000, dtype=torch.uint8)  # allocated before: not part of the peak
    assert 6_000_000 <= peak_cpu(allocate) < 6_100_000
    kept = []
    peak_cpu(lambda: kept.append(torch.empty(8_000_000, dtype=torch.uint8)))  # freed after profiling
    kept.clear()
    assert 6_000_000 <= peak_cpu(allocate) < 6_100_000  # earlier sessions do not shift the count
    del live


def test_interleaved_cpu_timer_reports_each_run_median_and_spread():
    runs = {"short": PassRun(lambda: time.sleep(0.002), []), "long": PassRun(lambda: time.sleep(0.006), [])}
    timings = time_cpu(runs, rounds=5, min_sample_s=0.0)
    assert len(timings["short"].samples_ms) == 5
    assert 2.0 <= timings["short"].median_ms < timings["long"].median_ms
    spread = timings["long"].spread()
    assert spread["min_ms"] <= spread["q25_ms"] <= spread["q75_ms"] <= spread["max_ms"]


def test_setup_is_left_out_of_the_timed_call():
    run = PassRun(lambda: time.sleep(0.001), [], setup=lambda: time.sleep(0.02))
    assert time_cpu({"run": run}, rounds=3, min_sample_s=0.0)["run"].median_ms < 15


def test_static_report_rows_are_matched_by_kernel_pass_size_and_dtype():
    row = lambda kernel, size, dtype="fp32", arch="sm_90": {"kernel": kernel, "hidden_size": size, "dtype": dtype, "arch": arch}
    rows = [
        row("multiview_pool_fwd", 64), row("multiview_pool_combine", 64), row("multiview_pool_bwd", 64),
        row("multiview_pool_fwd", 128), row("multiview_pool_fwd", 64, "bf16"),
        row("router_mix_fwd", 64), row("router_mix_fwd", 128), row("router_mix_bwd", 64),
    ]
    report = {"rows": rows}
    assert rows_for(report, "multiview_pool", "forward", 64, torch.float32) == rows[:2]
    assert rows_for(report, "multiview_pool", "backward", 64, torch.float32) == [rows[2]]
    assert rows_for(report, "multiview_pool", "full", 64, torch.float32) == rows[:3]
    assert rows_for(report, "multiview_pool", "forward", 64, torch.bfloat16) == [rows[4]]
    assert rows_for(report, "router_mix", "forward", None, torch.float32) == [rows[5]]


def test_static_report_rows_with_op_and_variant_are_matched_by_them_not_by_kernel_names():
    row = lambda kernel, op, variant: {"kernel": kernel, "op": op, "variant": variant, "hidden_size": 64, "dtype": "fp32",
                                       "arch": "sm_90"}
    rows = [row("pool_a_kernel", "multiview_pool", "fwd padded/fused/bias"), row("pool_b_kernel", "multiview_pool", "bwd padded"),
            row("mix_kernel", "router_mix", "fwd"), row("mix_kernel", "router_mix", "fwd")]
    report = {"rows": rows}
    assert rows_for(report, "multiview_pool", "forward", 64, torch.float32) == [rows[0]]
    assert rows_for(report, "multiview_pool", "backward", 64, torch.float32) == [rows[1]]
    assert rows_for(report, "router_mix", "full", None, torch.float32) == [rows[2]]

def test_pool_forward_variant_labels_every_record_and_time_limit_lists_cases_not_started(tmp_path, restore_threads, monkeypatch):
    # The CLI sets it for the process; setenv (unlike delenv of an unset name) has the original restored after the test.
    monkeypatch.setenv(FORWARD_VARIANT_ENV, FORWARD_VARIANTS[0])
    options = ["--ops", "multiview_pool", "--impls", "eager", "--passes", "forward", "--no-static-report"]
    meta, records = _run(tmp_path, *options, "--pool-forward", "two_phase")
    assert meta["pool_forward"] == "two_phase" and meta["complete"] and meta["not_run"] == []
    assert records and all(r["pool_forward"] == "two_phase" for r in records)
    meta, records = _run(tmp_path, *options, "--time-limit-s", "1e-6")
    assert records == [] and [item["case"] for item in meta["not_run"]] == ["multiview_pool B=2 D=32 T=16",
                                                                            "multiview_pool B=2 D=32 T=64"]
