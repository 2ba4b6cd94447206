"""Triton's CPU interpreter (TRITON_INTERPRET=1, how the suite runs the kernels without a GPU): it runs the
kernels' loops with runtime bounds here, and where it cannot (Triton 3.6 with numpy >= 2.4) a launch says so
and names the fix instead of failing inside a kernel."""
import pytest
import torch
from triton.runtime.interpreter import InterpretedFunction

from adajudge.kernels import launch
from adajudge.ops import preference_loss

pytestmark = pytest.mark.skipif(not isinstance(launch._runtime_bound_loop_kernel, InterpretedFunction),
                                reason="the kernels are compiled here (a GPU): no interpreter to check")


def test_this_interpreter_runs_loops_with_runtime_bounds():
    assert launch.interpreter_runs_loops()
    launch.check_interpreter()


def test_an_interpreter_that_cannot_is_named_with_its_fix(monkeypatch):
    monkeypatch.setattr(launch, "interpreter_runs_loops", lambda: False)
    chosen, rejected, representations = torch.randn(4), torch.randn(4), torch.randn(2, 4, 8)
    with pytest.raises(RuntimeError, match=r"CPU interpreter .* numpy .*triton-lang/triton#9171.*numpy<2\.4"):
        preference_loss(chosen, rejected, chosen_repr=representations[0], rejected_repr=representations[1],
                        backend="triton")
