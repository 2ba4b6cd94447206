"""Forward, backward and full step as zero-argument callables, the form every timer takes.

- forward: a training forward (inputs require grad, so autograd records what the backward needs).
- backward: before every timed call an untimed forward (`setup`) builds a fresh graph; the timed call is
  `torch.autograd.backward(outputs, upstream)`. (Re-running one graph with `retain_graph=True`, as many
  harnesses do, is refused by `torch.compile`'s backward, which donates its saved buffers; and it would
  time a backward that never frees what it saved.)
- full: forward then backward.

Upstream gradients are seeded random tensors (never ones), identical for every implementation. The
timers set each leaf's `.grad` to `None` before every call, so a backward writes gradients instead of
accumulating into them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from bench.cases import differentiable_outputs

PASSES = ("forward", "backward", "full")


@dataclass
class PassRun:
    """`fn` is timed; `setup` (if any) runs untimed before every call of `fn`; `leaves` get gradients."""

    fn: Callable[[], object]
    leaves: list[torch.Tensor]
    setup: Callable[[], None] | None = None

    def once(self) -> object:
        if self.setup is not None:
            self.setup()
        return self.fn()


def _upstream(outputs: tuple[torch.Tensor, ...], seed: int) -> list[torch.Tensor]:
    gen = torch.Generator(device=outputs[0].device).manual_seed(seed)
    return [torch.randn(o.shape, generator=gen, device=o.device, dtype=torch.float32).to(o.dtype) for o in outputs]


def make_pass(call: Callable[[], object], leaves: list[torch.Tensor], pass_: str, seed: int = 1) -> PassRun:
    """The callable that runs `pass_` of `call` (an op's forward), and the leaves its gradients land in."""
    if pass_ == "forward":
        return PassRun(call, [])
    if pass_ not in PASSES:
        raise ValueError(f"pass_: expected one of {PASSES}, got {pass_!r}")
    upstream = _upstream(_outputs(call()), seed)
    if pass_ == "full":
        return PassRun(lambda: torch.autograd.backward(differentiable_outputs(call()), upstream), leaves)
    graph: dict[str, tuple] = {}

    def forward() -> None:
        graph["outputs"] = _outputs(call())

    return PassRun(lambda: torch.autograd.backward(graph.pop("outputs"), upstream), leaves, setup=forward)


def _outputs(result) -> tuple[torch.Tensor, ...]:
    outputs = differentiable_outputs(result)
    if not outputs:
        raise ValueError("call: expected outputs that require grad for a backward pass, got none")
    return outputs


def reset_grads(leaves: list[torch.Tensor]) -> None:
    for leaf in leaves:
        leaf.grad = None
