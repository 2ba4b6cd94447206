"""The static GPU model (`python -m bench.gpu_model`, docs/gpu_model.md): its JSON records, the loop trip
counts it reads against a launch plan, and its calibration — the streaming copy predicted at the copy
bandwidth, the bad copy well below it.

The model builds real kernels, so it runs in a child process without `TRITON_INTERPRET` (which conftest
sets when there is no GPU, and which turns every `@triton.jit` into Python at import).
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.gpu_model import sass as sass_reader
from bench.gpu_model.gpus import GPUS
from bench.gpu_model.model import LIMITERS
from bench.gpu_model.records import KEYS

REPO = Path(__file__).resolve().parents[1]
COPY_BAND = (0.95, 1.0)  # docs/gpu_model.md: the streaming copy is predicted within 5 % of the copy bandwidth
BAD_COPY_AT_MOST = 0.6  # and the bad copy (4 KB in flight per SM) well below it


def _compiled_env() -> dict:
    return {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}


def _model(*args, timeout=900) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "bench.gpu_model", *args], capture_output=True, text=True,
                          env=_compiled_env(), timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


# One child process (the imports cost seconds) computes what the fast tests read: the quick subset's records
# (pooling at B16 T2048 D4096 bf16 padded, and the calibration), the side-by-side rows of a hand-made GPU bench
# results.json, and the profile of a small kernel with per-program loop bounds.
DRIVER = textwrap.dedent('''
    import json, sys, torch, triton, triton.language as tl
    from adajudge.kernels.aot import ahead_of_time
    from adajudge.kernels.launch import Launch
    from bench.gpu_model import calibration_records, records
    from bench.gpu_model.compare import compare_files
    from bench.gpu_model.profile import profile
    from bench.gpu_model.workloads import POOL_SHAPES

    @triton.jit
    def block_sum(x, t0, end, D, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):  # inlined: its loop has a call site
        total = tl.zeros([BLOCK_D], dtype=tl.float32)
        for d0 in range(0, D, BLOCK_D):
            offs_t = t0 + tl.arange(0, BLOCK_T)
            offs_d = d0 + tl.arange(0, BLOCK_D)
            tile = tl.load(x + offs_t[:, None] * D + offs_d[None, :], mask=(offs_t < end)[:, None], other=0.0)
            total += tl.sum(tile, axis=0)
        return total

    @triton.jit
    def row_sums(x, cu_seqlens, out, D, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):
        row = tl.program_id(0)
        start, end = tl.load(cu_seqlens + row), tl.load(cu_seqlens + row + 1)
        total = tl.zeros([BLOCK_D], dtype=tl.float32)
        for t0 in range(start, end, BLOCK_T):
            total += block_sum(x, t0, end, D, BLOCK_T, BLOCK_D)
        tl.store(out + row * BLOCK_D + tl.arange(0, BLOCK_D), total)

    @triton.jit
    def block_sum_while(x, t0, end, D, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):
        total = tl.zeros([BLOCK_D], dtype=tl.float32)
        d0 = 0
        while d0 < D:
            offs_t = t0 + tl.arange(0, BLOCK_T)
            offs_d = d0 + tl.arange(0, BLOCK_D)
            tile = tl.load(x + offs_t[:, None] * D + offs_d[None, :], mask=(offs_t < end)[:, None], other=0.0)
            total += tl.sum(tile, axis=0)
            d0 += BLOCK_D
        return total

    @triton.jit
    def row_sums_while(x, cu_seqlens, out, D, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):  # the kernels' while loops
        row = tl.program_id(0)
        start, end = tl.load(cu_seqlens + row), tl.load(cu_seqlens + row + 1)
        total = tl.zeros([BLOCK_D], dtype=tl.float32)
        t0 = start
        while t0 < end:
            total += block_sum_while(x, t0, end, D, BLOCK_T, BLOCK_D)
            t0 += BLOCK_T
        tl.store(out + row * BLOCK_D + tl.arange(0, BLOCK_D), total)

    def trips(kernel):
        cu = torch.tensor([0, *torch.tensor(ROW_LENGTHS).cumsum(0).tolist()], dtype=torch.int32)
        x, out = torch.empty(int(cu[-1]), 256), torch.empty(len(ROW_LENGTHS), 64)
        launch = Launch(kernel, (len(ROW_LENGTHS),), {"x": x, "cu_seqlens": cu, "out": out, "D": 256, "BLOCK_T": 8,
                                                       "BLOCK_D": 64}, 4, 1)
        with ahead_of_time(90):
            found = profile(launch)
        loops = [found.region_runs[:, i].tolist() for i, r in enumerate(found.regions) if r.loop_start is not None]
        return {"loops": loops, "notes": found.notes, "loaded": {t: v.sum(0).tolist() for t, v in found.requested.items()}}

    ROW_LENGTHS = [0, 16, 40, 200]
    quick = calibration_records() + records(ops=("multiview_pool",), dtypes=("bf16",), pool_shapes=POOL_SHAPES[:1],
                                            layouts=("padded",))
    result = {"quick": quick, "compare": compare_files([sys.argv[1]], 114, "H100 PCIe"), "trips": trips(row_sums),
              "trips_while": trips(row_sums_while)}
    with open(sys.argv[2], "w") as file:
        json.dump(result, file)
''')
ROW_LENGTHS = (0, 16, 40, 200)


def _bench_results(path: Path) -> None:
    """A GPU `python -m bench` results.json, by hand, at small shapes: pooling in three passes (eager rows too,
    which get no prediction) and one router row."""
    shape = {"B": 2, "T": 64, "D": 256}
    rows = [{"op": "multiview_pool", "variant": "", "shape": shape, "pass": p, "impl": impl, "median_ms": 0.05,
             "fraction_of_copy_bandwidth": 0.1, "pool_forward": "two_phase"}
            for p in ("forward", "backward", "full") for impl in ("eager", "adajudge")]
    rows.append({"op": "router_mix", "variant": "", "shape": {"N": 4096, "V": 3}, "pass": "forward", "impl": "adajudge",
                 "median_ms": 0.004, "fraction_of_copy_bandwidth": 0.02, "pool_forward": "two_phase"})
    path.write_text(json.dumps({"meta": {"dtype": "bfloat16", "copy_bandwidth": {"gbps": 2900.0}}, "records": rows}))


@pytest.fixture(scope="module")
def spawned(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("gpu_model")
    (folder / "driver.py").write_text(DRIVER)  # a file: triton.jit reads a kernel's source
    _bench_results(folder / "results.json")
    env = {**_compiled_env(), "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(folder / "driver.py"), str(folder / "results.json"), str(folder / "out.json")],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((folder / "out.json").read_text())


@pytest.fixture(scope="module")
def quick(spawned) -> list[dict]:
    return spawned["quick"]


def _check_schema(records: list[dict]) -> None:
    for record in records:
        assert set(KEYS) <= set(record), sorted(set(KEYS) - set(record))
        assert record["pass"] in ("forward", "backward")
        assert record["gpu"] in GPUS
        assert record["predicted_us"] > 0 and record["floor_us"] > 0
        assert record["predicted_fraction"] == pytest.approx(record["floor_us"] / record["predicted_us"])
        # a kernel's limiter is one of the model's; a pass's names its longest kernel too ("kernel: limiter")
        assert record["limiter"].split(": ")[-1] in LIMITERS


def test_every_record_has_the_stable_keys(quick):
    _check_schema(quick)
    assert not [r["notes"] for r in quick if any("matches no TTIR loop" in note for note in r["notes"])]
    assert {r["op"] for r in quick} == {"calibration", "multiview_pool"}
    assert {r["gpu"] for r in quick} == set(GPUS)


def test_a_pass_of_several_kernels_has_an_all_record_with_their_summed_time(quick):
    passes = {}
    for r in quick:
        passes.setdefault((r["op"], r["pass"], r["variant"], r["shape"], r["dtype"], r["layout"], r["gpu"]), []).append(r)
    pooling = [group for key, group in passes.items() if key[0] == "multiview_pool"]
    assert len(pooling) == 3 * len(GPUS)  # forward fused, forward two_phase, backward
    for group in pooling:
        (total,) = [r for r in group if r["kernel"] == "all"]
        parts = [r for r in group if r["kernel"] != "all"]
        assert len(parts) >= 2  # PyTorch ops a launcher runs (a zero-fill, a sum) would be parts too
        assert total["predicted_us"] == pytest.approx(sum(r["predicted_us"] for r in parts))
        assert total["dram_bytes"] == pytest.approx(sum(r["dram_bytes"] for r in parts))


def test_the_calibration_copy_is_predicted_at_the_copy_bandwidth_and_the_bad_copy_far_below(quick):
    for gpu in GPUS:
        (good,) = [r for r in quick if r["variant"] == "copy_128bit_4warps" and r["gpu"] == gpu]
        (bad,) = [r for r in quick if r["variant"] == "copy_32bit_1warp" and r["gpu"] == gpu]
        assert COPY_BAND[0] <= good["predicted_fraction"] <= COPY_BAND[1]
        assert good["limiter"] == "DRAM bandwidth" and good["streamed_128bit"] is True
        assert bad["predicted_fraction"] <= BAD_COPY_AT_MOST
        assert bad["limiter"] == "memory-level parallelism" and bad["streamed_128bit"] is False
        assert bad["bytes_in_flight_per_sm"] < bad["bytes_in_flight_needed_per_sm"] <= good["bytes_in_flight_per_sm"]


def test_hidden_is_read_with_128_bit_loads_by_every_pooling_kernel_that_streams_it(quick):
    streaming = [r for r in quick if r["op"] == "multiview_pool" and r["kernel"].endswith(("fwd_kernel", "accumulate_kernel",
                                                                                          "bwd_kernel"))]
    assert streaming
    for record in streaming:
        assert record["access_bits"]["hidden"]["load"] == [128], (record["kernel"], record["access_bits"]["hidden"])


def test_loop_trip_counts_are_evaluated_per_program_from_the_launch(spawned):
    """A kernel whose token loop runs over each packed row (bounds loaded from `cu_seqlens`, so every program
    differs) and a D loop inside it, in an inlined helper (Triton 3.9 writes the inlining into the line
    table, 3.6 does not): the model's runs per program are the exact trip counts, for `for ... in range()` loops
    and for the `while` loops the kernels use for runtime bounds (kernels/README.md), counted the same."""
    blocks = [-(-n // 8) for n in ROW_LENGTHS]  # token blocks of 8 per row
    for found in (spawned["trips"], spawned["trips_while"]):
        assert sorted(found["loops"], key=sum) == [blocks, [4 * b for b in blocks]], found  # then D = 256 by 64 inside
        assert found["notes"] == []
        assert found["loaded"]["x"][0] == sum(blocks) * 4 * 8 * 64 * 4  # every tile of every program, fp32


def test_measured_rows_of_a_gpu_bench_run_get_the_model_prediction_beside_them(spawned):
    """What `bench.gpu_check` runs after its bench step: every adajudge row of a `python -m bench` results.json
    gets the model's time on that GPU; `full` is forward + backward; eager rows get none."""
    found = {(r["op"], r["pass"]): r for r in spawned["compare"]}
    assert set(found) == {("multiview_pool", "forward"), ("multiview_pool", "backward"), ("multiview_pool", "full"),
                          ("router_mix", "forward")}
    pool = [found["multiview_pool", p] for p in ("forward", "backward", "full")]
    assert pool[2]["predicted_us"] == pytest.approx(pool[0]["predicted_us"] + pool[1]["predicted_us"])
    for row in found.values():
        assert row["predicted_us"] > 0
        assert row["predicted_over_measured"] == pytest.approx(row["predicted_us"] / row["measured_us"])


@pytest.mark.slow
def test_the_full_model_covers_every_kernel_shape_dtype_layout_and_gpu(tmp_path):
    """The CI stage: `python -m bench.gpu_model --json PATH` over every preset (minutes on a cold cache)."""
    from bench.gpu_model.workloads import DEFAULT_DTYPES, LAYOUTS, POOL_SHAPES

    path = tmp_path / "model.json"
    _model("--json", str(path), timeout=3000)
    records = json.loads(path.read_text())
    _check_schema(records)
    assert not [(r["kernel"], r["shape"], r["dtype"]) for r in records if any("matches no TTIR loop" in n for n in r["notes"])]
    pooling = {(r["pass"], r["variant"], r["shape"], r["dtype"], r["layout"], r["gpu"]) for r in records
               if r["op"] == "multiview_pool" and r["kernel"] == "all"}
    shapes = [" ".join(f"{k}{v}" for k, v in shape.items()) for shape in POOL_SHAPES]
    expected = {(p, v, s, d, lay, g) for p, v in (("forward", "fused"), ("forward", "two_phase"), ("backward", ""))
                for s in shapes for d in DEFAULT_DTYPES for lay in LAYOUTS for g in GPUS}
    assert pooling == expected
    assert {(r["op"], r["variant"]) for r in records if r["op"] != "multiview_pool"} >= {
        ("router_mix", ""), ("preference_loss", "focal"), ("preference_loss", "normbt"), ("preference_loss", "normbt_ema")}
    normbt_small = [r for r in records if r["variant"] == "normbt" and r["shape"] == "N32 D4096"]
    assert {r["kernel"] for r in normbt_small} == {"preference_loss_distance_kernel", "preference_loss_fwd_kernel", "all"}


# SASS of a load issued before a loop and first used after it (a packed row's start, read for the last token's
# address after the merge loop); `{body}` is the loop's first instruction.
LOAD_ACROSS_A_LOOP = """
        /*0000*/                   LDG.E R2, desc[UR4][R4.64] ;
.L_x_0:
        /*0010*/                   {body} ;
        /*0020*/                   FADD R7, R6, R7 ;
        /*0030*/              @P0 BRA `(.L_x_0) ;
        /*0040*/                   IADD3 R3, R2, R3, RZ ;
        /*0050*/                   EXIT ;
"""


def test_a_load_used_after_a_loop_that_waits_on_its_own_loads_is_counted_across_it():
    """docs/gpu_model.md: such a batch overlaps the loop's first wait (the model takes that wait off its
    latency); a loop that loads nothing hides only its issue, which the batch does not count."""
    waiting = sass_reader.parse(LOAD_ACROSS_A_LOOP.format(body="LDG.E R6, desc[UR4][R8.64]"))
    outside, loop = waiting.regions()
    (batch,) = outside.load_batches()
    assert batch.across is loop.loop and batch.instructions_before_use == 0
    (own,) = loop.load_batches()
    assert own.across is None and own.instructions_before_use == 0
    computing = sass_reader.parse(LOAD_ACROSS_A_LOOP.format(body="MOV R6, R9"))
    (batch,) = computing.regions()[0].load_batches()
    assert batch.across is None and batch.instructions_before_use == 0
