"""`python -m adajudge.selftest`, run as a user would: from a directory outside the repository."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
RECORD_KEYS = {"op", "backend", "dtype", "layout", "cases", "worst_ratio", "passed"}


def _selftest(cwd: Path, *args: str, interpreter: bool, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    if interpreter:
        env["TRITON_INTERPRET"] = "1"
    assert REPOSITORY not in cwd.resolve().parents
    return subprocess.run([sys.executable, "-m", "adajudge.selftest", "--device", "cpu", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=timeout)


def test_selftest_passes_from_outside_the_repository_under_the_interpreter(tmp_path):
    done = _selftest(tmp_path, "--ops", "router_mix", "--examples", "3", "--json", "out.json", interpreter=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "out.json").read_text())
    records = report["records"]
    assert [(r["backend"], r["dtype"]) for r in records] == [
        (backend, dtype) for backend, dtypes in (("triton", 3), ("torch", 4), ("reference", 4))
        for dtype in ("float32", "bfloat16", "float16", "float64")[:dtypes]]
    assert all(RECORD_KEYS <= set(r) and r["passed"] is True and r["cases"] == 3 for r in records)
    assert all(0 <= r["worst_ratio"] <= (0.5 if r["backend"] == "reference" else 1) for r in records)
    for record in records:
        if record["backend"] == "triton":
            assert {(c["op"], c["phase"]) for c in record["opcheck"]} == {
                ("adajudge::router_mix_fwd", "forward"), ("adajudge::router_mix_bwd", "backward")}
            assert all(set(c["results"].values()) == {"ok"} for c in record["opcheck"])
        else:
            assert record["opcheck"] is None
    assert report["passed"] is True and report["complete"] is True and report["engine"] == "hypothesis"
    assert report["triton_interpret"] is True
    assert "worst err/bound" in done.stdout and "11 passed, 0 failed, 0 skipped" in done.stdout
    assert not (tmp_path / ".hypothesis").exists()  # nothing left in the user's directory but the JSON


def test_triton_rows_say_they_need_cuda_or_the_interpreter(tmp_path):
    done = _selftest(tmp_path, "--backend", "triton,torch", "--ops", "preference_loss", "--examples", "2",
                     "--json", "out.json", interpreter=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("skipped: needs CUDA or the interpreter") == 3
    records = json.loads((tmp_path / "out.json").read_text())["records"]
    triton = [r for r in records if r["backend"] == "triton"]
    assert len(triton) == 3 and all(r["status"] == "skipped" and r["passed"] is None and r["cases"] == 0 for r in triton)
    assert all(r["passed"] is True for r in records if r["backend"] == "torch")


def test_a_wrong_op_fails_the_selftest_with_status_1(tmp_path):
    script = tmp_path / "wrong_router.py"
    script.write_text(textwrap.dedent("""
        import sys
        import adajudge.ops
        from adajudge.selftest import main

        right = adajudge.ops.router_mix
        def off_by_a_percent(router_logits, view_scores, **options):
            reward, probs, entropy = right(router_logits, view_scores, **options)
            return reward * 1.01, probs, entropy
        adajudge.ops.router_mix = off_by_a_percent
        sys.exit(main(["--device", "cpu", "--backend", "torch", "--ops", "router_mix", "--dtypes", "float32",
                       "--examples", "5", "--json", "out.json"]))
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "FAIL" in done.stdout and "reward: max error" in done.stdout
    report = json.loads((tmp_path / "out.json").read_text())
    (record,) = report["records"]
    assert report["passed"] is False and record["passed"] is False and record["worst_ratio"] > 1


@pytest.mark.slow
def test_selftest_at_25_examples_passes_everywhere_under_the_interpreter(tmp_path):
    done = _selftest(tmp_path, "--examples", "25", "--json", "out.json", interpreter=True, timeout=3600)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "out.json").read_text())
    assert len(report["records"]) == 44 and report["unreached_ops"] == [] and report["passed"] is True
