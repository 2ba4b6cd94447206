"""`torch.library.opcheck` on every custom op adajudge registers (schema, fake tensors, autograd registration,
AOT dispatch), forward and backward ops of each op, padded and packed, in each kernel dtype."""
import functools

import pytest
import torch
from op_cases import DEVICE, LOW_PRECISION

from adajudge.ops import OPS
from adajudge.testing.cases import OP_SPECS
from adajudge.testing.opcheck import OpCall, registered_ops, run_opcheck, sample_calls, unreached_ops

CASES = [(op, dtype, layout) for op in OPS for dtype in LOW_PRECISION for layout in OP_SPECS[op].layouts]
KNOWN_OPS = {"adajudge::multiview_pool_fwd", "adajudge::multiview_pool_bwd", "adajudge::router_mix_fwd",
             "adajudge::router_mix_bwd", "adajudge::preference_loss_fwd"}


@functools.cache
def _calls(op, dtype, layout) -> list[OpCall]:
    return sample_calls(op, dtype=dtype, layout=layout, device=DEVICE)


def test_the_registered_ops_are_found_and_every_one_is_reached():
    assert KNOWN_OPS <= set(registered_ops())
    assert unreached_ops([call for case in CASES for call in _calls(*case)]) == []


@pytest.mark.parametrize(("op", "dtype", "layout"), CASES, ids=lambda value: str(value).removeprefix("torch."))
def test_opcheck_passes(op, dtype, layout):
    recorded = _calls(op, dtype, layout)
    assert "forward" in {call.phase for call in recorded}  # (the loss backward is PyTorch, no custom op)
    assert any(a.requires_grad for call in recorded if call.phase == "forward" for a in call.args
               if isinstance(a, torch.Tensor))  # so the autograd registration and AOT gradients are checked
    failures = {f"{call.name} ({call.phase})": result.results
                for call in recorded if not (result := run_opcheck(call)).passed}
    assert failures == {}


def test_opcheck_reports_a_fake_kernel_that_disagrees_with_the_op():
    """The control for the tests above: a custom op whose fake (meta) kernel gives the wrong shape fails."""

    @torch.library.custom_op("adajudge_opcheck_control::doubled", mutates_args=())
    def doubled(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    @doubled.register_fake
    def _(x):
        return x.new_empty(x.shape[0] + 1)

    call = OpCall(torch.ops.adajudge_opcheck_control.doubled.default, (torch.randn(3),), {}, "forward", "control")
    result = run_opcheck(call)
    assert not result.passed and result.results["test_faketensor"] != "ok"
    assert result.results["test_schema"] == "ok"
