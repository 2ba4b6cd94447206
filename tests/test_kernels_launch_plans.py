"""What every kernel launch would do on a GPU, read without one: the grid CUDA would be asked for, and which
tensors torch.compile's Inductor believes each kernel writes."""
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from adajudge.kernels import multiview_pool, preference_loss, router_mix
from adajudge.kernels.launch import GRID_LIMITS, record_launches
from adajudge.kernels.pool_forward import FORWARD_VARIANT_ENV, FORWARD_VARIANTS

KERNEL_MODULES = (multiview_pool, router_mix, preference_loss)
ALL_KERNELS = sorted(name for module in KERNEL_MODULES for name in vars(module) if name.endswith("_kernel"))
BEYOND_AXIS_1 = GRID_LIMITS[1] + 4465  # more rows than a grid's axis 1 (or 2) may hold


def _compile_check(*args) -> subprocess.CompletedProcess:
    """`python -m adajudge.kernels.compile_check ...` without the interpreter (it replaces the kernels)."""
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    return subprocess.run([sys.executable, "-m", "adajudge.kernels.compile_check", *args],
                          capture_output=True, text=True, env=env, timeout=600)


def test_inductor_sees_no_kernel_write_a_tensor_its_caller_passed():
    done = _compile_check("--writes-only", "--hidden-size", "64")
    rows = json.loads(done.stdout)
    assert sorted({row["kernel"] for row in rows}) == ALL_KERNELS
    variants = {row["variant"] for row in rows}
    for layout in ("padded", "packed_int32", "packed_int64"):
        for forward in ("fused", "two_phase"):
            assert {f"fwd {layout}/{forward}/bias", f"fwd {layout}/{forward}/no_bias"} <= variants
        assert {f"bwd {layout}", f"bwd {layout}/frozen_hidden"} <= variants
    assert {"fwd normbt_scalar", "fwd normbt_tensor", "fwd normbt_batch_mean", "fwd bt"} <= variants
    assert {row["dtype"] for row in rows} == {"fp32", "bf16", "fp16"}
    offenders = [(row["kernel"], row["variant"], row["dtype"], row["inputs_written"]) for row in rows if row["inputs_written"]]
    assert offenders == [] and done.returncode == 0


def test_the_mutation_analysis_does_report_a_kernel_that_writes_its_input(tmp_path):
    """The control for the test above: the same analysis (whichever of torch's two functions this torch has)
    flags a kernel that stores through its input, and only that input (not one it only reads)."""
    script = tmp_path / "control.py"  # a file: triton.jit reads a kernel's source
    script.write_text(textwrap.dedent("""
        import torch, triton, triton.language as tl
        from adajudge.kernels.compile_check import ahead_of_time, _inputs_written
        from adajudge.kernels.launch import Launch

        @triton.jit
        def scale_in_place(x, y, out, n, BLOCK: tl.constexpr):
            offs = tl.arange(0, BLOCK)
            value = tl.load(x + offs, mask=offs < n) + tl.load(y + offs, mask=offs < n)
            tl.store(out + offs, value, mask=offs < n)
            tl.store(x + offs, value * 2, mask=offs < n)

        x, y, out = torch.ones(8), torch.ones(8), torch.empty(8)
        launch = Launch(scale_in_place, (1,), {"x": x, "y": y, "out": out, "n": 8, "BLOCK": 8}, 4, 1)
        with ahead_of_time(90):
            print(_inputs_written(launch, (x, y)))
    """))
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "['x']", done.stderr[-2000:]


def _assert_grids_within_limits(launches, *, expect_beyond_axis_1: set[str]):
    for launch in launches:
        assert all(size <= limit for size, limit in zip(launch.grid, GRID_LIMITS)), (launch.name, launch.grid)
        if launch.name in expect_beyond_axis_1:
            assert launch.grid[0] > GRID_LIMITS[1], (launch.name, launch.grid)


@pytest.mark.parametrize("variant", FORWARD_VARIANTS)
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_pooling_launch_plans_put_unbounded_rows_on_axis_0(monkeypatch, variant, packed):
    monkeypatch.setenv(FORWARD_VARIANT_ENV, variant)
    rows, dim = BEYOND_AXIS_1, 4096
    meta = dict(device="meta")
    if packed:
        hidden, cu_seqlens, max_len = torch.empty(rows * 2, dim, **meta), torch.empty(rows + 1, dtype=torch.int32, **meta), 2
    else:
        hidden, cu_seqlens, max_len = torch.empty(rows, 3, dim, **meta), None, 0
    kinds = torch.empty(hidden.shape[:-1], dtype=torch.int8, **meta)
    weight = torch.empty(dim, **meta)
    with record_launches(execute=False) as launches:
        views, *saved = multiview_pool.multiview_pool_fwd(hidden, kinds, weight, weight[0], cu_seqlens, max_len)
        multiview_pool.multiview_pool_bwd(views, hidden, kinds, saved[0], cu_seqlens, weight, *saved[1:], max_len, True)
    names = {launch.name for launch in launches}
    assert "multiview_pool_bwd_kernel" in names and ("multiview_pool_accumulate_kernel" in names) == (variant == "two_phase")
    # The backward runs a fixed number of programs, and the dw_a reduction one per D tile.
    grid_bound = names - {"multiview_pool_bwd_kernel", "multiview_pool_dw_kernel"}
    _assert_grids_within_limits(launches, expect_beyond_axis_1=grid_bound)


def test_router_and_loss_launch_plans_put_rows_on_axis_0():
    rows = (BEYOND_AXIS_1 + 1) * max(router_mix.BLOCK_B, preference_loss.BLOCK_N)
    x = torch.empty(rows, 3, device="meta")
    pairs = torch.empty(rows, device="meta")
    representations = torch.empty(rows, 8, device="meta")
    with record_launches(execute=False) as launches:
        reward, probs, entropy, log_probs = router_mix.router_mix_fwd(x, x, 1.0)
        router_mix.router_mix_bwd(reward, probs, entropy, probs, log_probs, x, 1.0)
        preference_loss.preference_loss_fwd(pairs, pairs, None, None, representations, representations, None, None,
                                            1.0, 0.0, 0.0, 1e-6)
    _assert_grids_within_limits(launches, expect_beyond_axis_1={"router_mix_fwd_kernel", "router_mix_bwd_kernel",
                                                                "preference_loss_fwd_kernel"})
    distance = [launch for launch in launches if launch.name == "preference_loss_distance_kernel"]
    assert len(distance) == 1 and distance[0].grid[0] <= preference_loss.MAX_PARTIALS


def test_a_launch_takes_no_build_option_that_torch_compile_would_drop():
    """Inductor keeps num_warps and num_stages of a user kernel's launch and drops maxnreg: a launch that sets
    anything but kernel parameters is refused, so compiled graphs run the builds the compile check makes."""
    from adajudge.kernels.launch import launch

    with pytest.raises(TypeError, match=r"expected parameters of router_mix_fwd_kernel, got \['maxnreg'\]"):
        launch(router_mix.router_mix_fwd_kernel, (1,), num_warps=4, maxnreg=128)


def test_a_grid_cuda_would_refuse_raises_before_any_launch():
    from adajudge.kernels.launch import launch

    with pytest.raises(ValueError, match="grid: expected axis 1 <= 65535"):
        launch(router_mix.router_mix_fwd_kernel, (1, GRID_LIMITS[1] + 1), num_warps=4)


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1", reason="the kernels are compiled here: no interpreter")
def test_an_ahead_of_time_build_of_an_interpreted_kernel_says_to_unset_the_interpreter():
    """The compile check and bench.gpu_model build real cubins; under TRITON_INTERPRET=1 nothing is built, and
    the build says why instead of failing later on a missing compilation."""
    from adajudge.kernels.aot import build

    with record_launches(execute=False) as launches:
        router_mix.router_mix_triton(torch.randn(2, 3), torch.randn(2, 3), 1.0)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1.*builds no cubin"):
        build(launches[0])


def test_allow_spills_lists_spilled_builds_and_still_fails_on_a_write_or_a_build_error(monkeypatch, capsys):
    from adajudge.kernels import compile_check

    row = {"kernel": "k", "op": "op", "variant": "v", "arch": "sm_90", "hidden_size": 64, "dtype": "fp32",
           "registers": 40, "stack_bytes": 0, "shared_bytes": 0, "spills": 0, "build": "b", "inputs_written": [],
           "ok": True, "error": ""}
    spilled = row | {"build": "c", "stack_bytes": 8, "spills": 2, "ok": False}
    written = row | {"build": "d", "inputs_written": ["hidden"], "ok": False}
    broken = row | {"build": None, "registers": None, "ok": False, "error": "CompilationError: x"}
    for rows, strict, allowed in (([row, spilled], 1, 0), ([row, spilled, written], 1, 1), ([spilled, broken], 1, 1)):
        monkeypatch.setattr(compile_check, "compile_rows", lambda *args, rows=rows: rows)
        assert compile_check.main([]) == strict
        assert compile_check.main(["--allow-spills"]) == allowed
    assert "SPILLS (allowed by --allow-spills)" in capsys.readouterr().out
