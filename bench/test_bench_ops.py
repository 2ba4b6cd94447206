"""pytest-benchmark entry: `pytest bench/ --benchmark-only` (add `--benchmark-json FILE` to keep results).

Every op (and preference-loss variant) at one small size, for each implementation (eager, compile,
adajudge) and pass (forward, backward, full); one benchmark group per op and pass, so pytest-benchmark's
table puts the three implementations side by side. Warm-up (compilation included) runs before timing;
the backward's forward runs untimed in `pedantic`'s setup. On CPU the tests use one intra-op thread
(see `python -m bench --help`, `--threads`). `python -m bench` is the full harness.
"""
import pytest
import torch

from bench.cases import IMPLS, Case, build_workload
from bench.passes import PASSES, make_pass, reset_grads
from bench.sweeps import sweep_points

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
DTYPE = torch.bfloat16 if DEVICE.type == "cuda" else torch.float32


def _first_point_per_op() -> list[Case]:
    cases, seen = [], set()
    for op, variant, sweep, shape in sweep_points("tiny", DEVICE.type):
        if (op, variant) not in seen:
            seen.add((op, variant))
            cases.append(Case(op, variant, sweep, shape, DTYPE, DEVICE))
    return cases


CASES = _first_point_per_op()


@pytest.fixture(scope="module", autouse=True)
def one_cpu_thread():
    threads = torch.get_num_threads()
    if DEVICE.type == "cpu":
        torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def workloads():
    built = {}

    def get(case: Case):
        if case.label not in built:
            built[case.label] = build_workload(case)
        return built[case.label]

    return get


def _synchronized(fn):
    if DEVICE.type != "cuda":
        return fn

    def run():
        fn()
        torch.cuda.synchronize(DEVICE)

    return run


@pytest.mark.parametrize("pass_", PASSES)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.label.replace(" ", "-"))
def test_op(benchmark, workloads, case, impl, pass_):
    workload = workloads(case)
    run = make_pass(workload.calls[impl], workload.leaves[impl], pass_)
    run.once()  # warm-up: compiles on first use, never timed
    benchmark.group = f"{case.label} {pass_}"
    benchmark.extra_info.update(impl=impl, bytes_model=case.bytes_moved(pass_), device=DEVICE.type, dtype=str(DTYPE))
    fn = _synchronized(run.fn)
    if run.setup is None:

        def call():
            reset_grads(run.leaves)
            fn()

        benchmark(call)
    else:

        def setup():
            reset_grads(run.leaves)
            run.setup()

        benchmark.pedantic(fn, setup=setup, rounds=20, warmup_rounds=1)
