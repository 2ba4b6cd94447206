"""The testing kit (`adajudge.testing`): check_op accepts the library's ops and catches wrong ones with a
message that names the view, the packed case and the shrunk input; docs/testing.md's worked example runs;
the strategies draw what their docstrings promise; the kit works without hypothesis."""
import functools
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from adajudge import ops
from adajudge.testing import CheckFailure, check_op
from adajudge.testing.cases import MASK_DTYPES, OP_SPECS
from adajudge.testing.choices import SeededChoices
from adajudge.testing.tolerance import compare, overflow_threshold
from adajudge.views import View

DOCS = Path(__file__).resolve().parents[1] / "docs" / "testing.md"
WORKED_EXAMPLE = "## Worked example: your own pooling function"


def test_every_public_op_has_a_spec():
    assert tuple(OP_SPECS) == ops.OPS


def test_check_op_accepts_multiview_pool():
    results = check_op(ops.multiview_pool, "multiview_pool", examples=8)
    assert [(str(r.dtype), r.layout) for r in results] == [
        (str(dtype), layout) for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64)
        for layout in ("padded", "packed")]
    assert all(r.cases == 8 and 0 <= r.worst_ratio <= 1 and r.engine == "hypothesis" for r in results)


@pytest.mark.slow
def test_check_op_accepts_multiview_pool_at_its_defaults():
    results = check_op(ops.multiview_pool, "multiview_pool")
    assert len(results) == 8 and all(r.cases == 100 for r in results)


def _scaled_view(view: View, factor: float):
    """`ops.multiview_pool` with one view multiplied by `factor`."""

    def pool(*args, **kwargs):
        views = ops.multiview_pool(*args, **kwargs)
        scale = torch.ones(views.shape[1], dtype=views.dtype, device=views.device)
        scale[view] = factor
        return views * scale[:, None]

    return pool


@pytest.mark.parametrize("view", list(View), ids=lambda v: v.name.lower())
def test_a_relative_error_of_1e_3_in_one_view_fails_naming_that_view(view):
    with pytest.raises(CheckFailure) as caught:
        check_op(_scaled_view(view, 1 + 1e-3), "multiview_pool", dtypes=[torch.float32], examples=50)
    message = str(caught.value)
    assert f"view '{view.name.lower()}'" in message and "check_op('multiview_pool') failed" in message
    assert caught.value.comparison.name == "views" and caught.value.comparison.index[1] == view


def test_a_function_ignoring_cu_seqlens_fails_on_the_packed_case():
    def pool(hidden, attention_mask, response_mask=None, *, attn_weight, attn_bias=None, cu_seqlens=None, max_seqlen=None):
        if hidden.ndim == 2:  # the packed rows read as one sequence
            hidden, attention_mask = hidden[None], attention_mask[None]
            response_mask = None if response_mask is None else response_mask[None]
        return ops.multiview_pool(hidden, attention_mask, response_mask, attn_weight=attn_weight, attn_bias=attn_bias)

    with pytest.raises(CheckFailure) as caught:
        check_op(pool, "multiview_pool", dtypes=[torch.float32], examples=50)
    assert caught.value.case.layout == "packed"
    message = str(caught.value)
    assert "layout 'packed'" in message and "cu_seqlens = [" in message
    assert caught.value.case.inputs["cu_seqlens"].numel() <= 3  # shrunk to at most two rows


def test_a_gradient_error_is_named_by_its_input():
    def pool(*args, **kwargs):
        views = ops.multiview_pool(*args, **kwargs)
        return views.detach() + (views - views.detach()) * 1.01  # right values, gradients 1 % off

    with pytest.raises(CheckFailure, match=r"d_(hidden|attn_weight|attn_bias): max error"):
        check_op(pool, "multiview_pool", dtypes=[torch.float32], examples=30)


def test_a_function_that_raises_is_a_failure_with_the_case():
    def router(router_logits, view_scores, *, temperature=1.0):
        if router_logits.shape[0] > 3:
            raise RuntimeError("my kernel: too many rows")
        return ops.router_mix(router_logits, view_scores, temperature=temperature)

    with pytest.raises(CheckFailure, match=r"(?s)the function raised RuntimeError: my kernel.*router_logits = \[4, 1\]"):
        check_op(router, "router_mix", dtypes=[torch.float32], examples=50)


def test_wrong_output_dtype_and_missing_gradient_are_failures():
    def fp32_views(*args, **kwargs):
        return ops.multiview_pool(*args, **kwargs).float()

    with pytest.raises(CheckFailure, match=r"views: dtype torch.float32, expected torch.bfloat16"):
        check_op(fp32_views, "multiview_pool", dtypes=[torch.bfloat16], examples=5)

    def loss_without_gradient(*args, **kwargs):
        return ops.preference_loss(*args, **kwargs).detach()

    with pytest.raises(CheckFailure, match="gradient presence differs"):
        check_op(loss_without_gradient, "preference_loss", dtypes=[torch.float32], examples=5)


def test_values_past_the_dtype_range_must_be_the_rounded_infinity():
    """fp16 overflows at 65,520 (65,504 plus half an ulp): an fp64 value there must come out as the ±inf it
    rounds to, and nothing else passes; below it, an infinity is a failure as before. The overflowing
    elements stay out of the bound, so the in-range error is judged at its own scale."""
    expected = torch.tensor([1.0, -1.3e5, 65520.0, 65519.0], dtype=torch.float64)
    inf = float("inf")
    rounded = torch.tensor([1.0, -inf, inf, 65504.0], dtype=torch.float16)
    verdict = compare("x", rounded, expected, rounded, dtype=torch.float16)
    assert verdict.passed and verdict.bound == pytest.approx(2 * 15 + 1e-3 * 65519)
    assert overflow_threshold(torch.float16) == 65520.0 and overflow_threshold(torch.float64) == inf
    for wrong, problem in [((1.0, -65504.0, inf, 65504.0), "lie past torch.float16's range"),
                           ((1.0, inf, inf, 65504.0), "lie past torch.float16's range"),
                           ((1.0, -inf, float("nan"), 65504.0), "are \\[nan\\], expected \\[inf\\]"),
                           ((1.0, -inf, inf, inf), "non-finite values at \\[\\[3\\]\\]")]:
        verdict = compare("x", torch.tensor(wrong, dtype=torch.float16), expected, rounded, dtype=torch.float16)
        assert not verdict.passed and re.search(problem, verdict.problem), (wrong, verdict.problem)
    off = compare("x", torch.tensor([128.0, -inf, inf, 65504.0], dtype=torch.float16), expected, rounded,
                  dtype=torch.float16)
    assert not off.passed and off.index == (0,) and off.error == 127.0  # an infinite reference error would excuse it


def test_check_op_rejects_unknown_ops_and_dtypes():
    with pytest.raises(ValueError, match="op: expected one of"):
        check_op(ops.router_mix, "router")
    with pytest.raises(ValueError, match="dtypes"):
        check_op(ops.router_mix, "router_mix", dtypes=[torch.int32])


# ----- docs/testing.md's worked example


def _worked_example_blocks() -> list[str]:
    text = DOCS.read_text()
    section = text[text.index(WORKED_EXAMPLE):]
    section = section[: section.index("\n## ", len(WORKED_EXAMPLE))]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _definitions() -> dict:
    """The worked example's definitions (the blocks that define functions), executed as the page shows them."""
    namespace: dict = {}
    for block in _worked_example_blocks():
        if "\ndef " in "\n" + block:
            exec(compile(block, str(DOCS), "exec"), namespace)
    return namespace


def test_worked_example_pooling_passes_and_the_slip_is_shrunk_to_one_padding_token():
    example = _definitions()
    for result in check_op(example["my_multiview_pool"], "multiview_pool", examples=10):
        assert result.cases == 10 and result.worst_ratio <= 1
    with pytest.raises(CheckFailure) as caught:
        check_op(example["my_pool_with_a_slip"], "multiview_pool", dtypes=[torch.float32])
    failure = caught.value
    assert "view 'mean'" in str(failure)
    case = failure.case
    assert case.layout == "padded" and case.inputs["response_mask"] is None
    assert case.inputs["attention_mask"].tolist() == [[1, 0]]  # one real token, one padding token
    assert case.inputs["hidden"].shape == (1, 2, 1)
    torch.testing.assert_close(failure.case.call(example["my_pool_with_a_slip"])[0, View.MEAN],
                               case.inputs["hidden"][0, 0] / 2)  # the padding token counted


@pytest.mark.slow
def test_worked_example_runs_as_written():
    namespace: dict = {}
    for block in _worked_example_blocks():
        exec(compile(block, str(DOCS), "exec"), namespace)


# ----- the strategies draw what they promise


def _drawn(op, layout, dtype=torch.float32, count=400):
    spec = OP_SPECS[op]
    return [spec.build(SeededChoices(f"coverage/{op}/{layout}/{i}"), dtype, layout) for i in range(count)]


def test_pooling_cases_cover_padding_sides_empty_views_strides_and_mask_dtypes():
    padded = _drawn("multiview_pool", "padded")

    def rows(case):
        attention = case.inputs["attention_mask"].bool()
        response = attention if case.inputs["response_mask"] is None else attention & case.inputs["response_mask"].bool()
        return zip(attention, response)

    row_list = [row for case in padded for row in rows(case)]
    assert any(a[0] and not a[-1] for a, _ in row_list)  # right padding
    assert any(a[-1] and not a[0] for a, _ in row_list)  # left padding
    assert any(a.any() and not r.any() for a, r in row_list)  # an empty response
    assert any(r.any() and (r == a).all() for a, r in row_list)  # an empty prompt
    assert any(not a.any() for a, _ in row_list)  # a row of padding only
    assert {case.inputs["attention_mask"].dtype for case in padded} == set(MASK_DTYPES)
    assert any(case.inputs["response_mask"] is None for case in padded)
    assert any(not case.inputs["hidden"].is_contiguous() and case.inputs["hidden"].stride(-1) == 1 for case in padded)
    assert any(case.inputs["hidden"].stride(-1) == 2 for case in padded)
    assert any(not case.inputs["attention_mask"].is_contiguous() for case in padded)
    assert any(case.inputs["attn_weight"].stride(0) == 2 for case in padded)
    assert any(not case.grad_outputs[0].is_contiguous() for case in padded)
    assert any("hidden" not in case.differentiable for case in padded)  # a frozen backbone
    outliers = _drawn("multiview_pool", "padded", torch.bfloat16, count=40)  # hidden ×100 (bf16 and fp16 only)
    assert any((case.inputs["hidden"][case.inputs["attention_mask"].bool()].abs() > 100).any() for case in outliers)
    assert {None, (), (1,)} == {None if c.inputs["attn_bias"] is None else tuple(c.inputs["attn_bias"].shape) for c in padded}
    padding = [c.inputs["hidden"][~c.inputs["attention_mask"].bool()] for c in padded]
    assert any(p.isnan().any() for p in padding) and any(p.isinf().any() for p in padding)  # tokens no view may read


def test_packed_cases_cover_empty_rows_all_empty_packs_and_max_seqlen():
    packed = _drawn("multiview_pool", "packed")
    lengths = [(c.inputs["cu_seqlens"][1:] - c.inputs["cu_seqlens"][:-1]).tolist() for c in packed]
    assert any(0 in row_lengths and max(row_lengths) > 0 for row_lengths in lengths)
    assert any(max(row_lengths) == 0 for row_lengths in lengths)
    assert {c.inputs["cu_seqlens"].dtype for c in packed} == {torch.int32, torch.int64}
    assert any(c.inputs["cu_seqlens"].stride(0) == 2 for c in packed)
    longest = [max(row_lengths) for row_lengths in lengths]
    assert {c.inputs["max_seqlen"] is None for c in packed} == {True, False}
    assert any(c.inputs["max_seqlen"] is not None and c.inputs["max_seqlen"] > m for c, m in zip(packed, longest))
    assert any(not c.inputs["attention_mask"].bool().all() for c in packed)  # holes in packed rows


def test_strided_gaps_hold_nan():
    case = next(c for c in _drawn("multiview_pool", "padded") if c.inputs["hidden"].stride(-1) == 2)
    hidden = case.inputs["hidden"]
    buffer = torch.as_strided(hidden, (hidden.numel() * 2,), (1,), hidden.storage_offset())
    assert buffer[1::2].isnan().all() and not hidden.isnan().any()


def test_a_case_moves_to_another_device_with_its_strides():
    """`Case.to` keeps every input's strides (a strided view stays strided on the GPU): checked on the meta
    device here, where nothing is copied but the layout is."""
    for case in _drawn("multiview_pool", "packed", count=40) + _drawn("preference_loss", "dense", count=40):
        moved = case.to("meta")
        for name, value in case.inputs.items():
            if isinstance(value, torch.Tensor):
                assert moved.inputs[name].device.type == "meta" and moved.inputs[name].stride() == value.stride(), name


def test_router_and_loss_cases_cover_saturation_normbt_and_reductions():
    router = _drawn("router_mix", "dense", count=100)
    assert any(c.inputs["router_logits"].abs().max() > 200 for c in router)
    assert any(not c.inputs["router_logits"].is_contiguous() for c in router)
    loss = _drawn("preference_loss", "dense", count=200)
    assert {c.inputs["reduction"] for c in loss} == {"mean", "sum", "none"}
    scales = {type(c.inputs["norm_scale"]).__name__ for c in loss if c.inputs["chosen_repr"] is not None}
    assert scales == {"NoneType", "float", "Tensor"}
    assert any(c.inputs["chosen"].stride(0) == 2 for c in loss)
    assert any(c.inputs["margin"] is not None and c.inputs["weights"] is not None for c in loss)
    assert any(c.inputs["chosen_repr"] is not None and (c.inputs["chosen_repr"] == c.inputs["rejected_repr"]).all(1).any()
               for c in loss)  # a duplicated pair
    empty = {c.inputs["reduction"] for c in loss if c.inputs["chosen"].numel() == 0}
    assert empty and empty <= {"sum", "none"}  # no pairs, where the op allows it


def test_every_dtype_and_layout_builds_valid_input():
    """The public ops' validation accepts every drawn case, in every dtype."""
    for op, spec in OP_SPECS.items():
        for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
            for layout in spec.layouts:
                for case in _drawn(op, layout, dtype, count=30):
                    case.call(functools.partial(getattr(ops, op), backend="reference"))


# ----- without hypothesis


def test_the_kit_works_without_hypothesis(tmp_path):
    """A subprocess where hypothesis cannot be imported: assert_close works, check_op warns and runs its
    fixed seeded cases (and still catches a wrong function), strategies says what to install."""
    script = tmp_path / "no_hypothesis.py"
    script.write_text(textwrap.dedent("""
        import sys
        sys.modules["hypothesis"] = None  # import hypothesis -> ModuleNotFoundError
        import warnings
        import torch
        from adajudge import ops
        from adajudge.testing import CheckFailure, assert_close, check_op

        assert_close("x", torch.ones(2), torch.ones(2, dtype=torch.float64), torch.ones(2), dtype=torch.float32)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = check_op(ops.router_mix, "router_mix", dtypes=[torch.float32], examples=6)
        assert [(r.engine, r.cases) for r in results] == [("seeded", 6)], results
        assert any("hypothesis is not installed" in str(w.message) for w in caught)
        again = check_op(ops.router_mix, "router_mix", dtypes=[torch.float32], examples=6)
        assert again[0].worst_ratio == results[0].worst_ratio  # the same fixed cases
        try:
            check_op(lambda u, s, **kw: ops.router_mix(u, s * 1.01, **kw), "router_mix", dtypes=[torch.float32],
                     examples=6)
        except CheckFailure as failure:
            assert "reward" in str(failure)
        else:
            raise SystemExit("a wrong function passed")
        try:
            from adajudge.testing import strategies  # noqa: F401
        except ModuleNotFoundError as error:
            assert "adajudge[testing]" in str(error)
        else:
            raise SystemExit("strategies imported without hypothesis")
        print("ok")
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"})
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
