"""Preference losses (docs/design.md §6): BT, Focal-BT, NormBT and the AdaJudge objective, as modules over
`adajudge.ops.preference_loss`.

For pairs `i`: `Δ_i = (c_i − r_i − m_i) / τ`, `ℓ_i = (1 − σ(Δ_i))^γ · softplus(−Δ_i)` (γ = 0: plain BT),
times the NormBT factor `sg(μ / (‖h_c,i − h_r,i‖ + ε))` for `NormBTLoss`, times the weight `w_i`; mean over
pairs, `+ center_coef · mean((c + r)²)`. Every loss is an fp32 scalar (fp64 for fp64 rewards).

Every loss is a `PairLoss`: besides its own `forward` (on reward tensors; `AdaJudgeLoss` on head outputs),
it takes `pair_loss(chosen, rejected, *, margin=None, weights=None)` on the two sides' `HeadOutput`s, the
one call that training makes whatever the loss.
"""
import abc
import math

import torch
import torch.distributed as dist
from torch import nn

from adajudge import ops
from adajudge.nn.output import HeadOutput
from adajudge.ops.backend import BACKENDS
from adajudge.validation import check_choice, check_float, check_instance


class PairLoss(nn.Module, abc.ABC):
    """The interface training uses: a preference loss on the head outputs of chosen and rejected sequences.

    `pair_loss(chosen, rejected, *, margin=None, weights=None)`: `chosen`, `rejected` are `HeadOutput`s of
    `N` rows each (row `i` of both is pair `i`), `margin` and `weights` `[N]` or None; returns the scalar
    fp32 loss. Each loss reads the fields it needs: the rewards (`BTLoss`, `FocalBTLoss`), plus the
    representations (`NormBTLoss`), plus the router entropies (`AdaJudgeLoss`). A new loss subclasses this
    and implements `_pair_loss` (the arguments already checked to be `HeadOutput`s); the losses here
    implement it by calling the module itself, so `pair_loss` runs the same `forward` (and hooks).

    Raises:
        TypeError: `chosen` or `rejected` is not a `HeadOutput`.
    """

    def pair_loss(
        self,
        chosen: HeadOutput,
        rejected: HeadOutput,
        *,
        margin: torch.Tensor | None = None,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scalar fp32 loss of the `N` pairs `(chosen[i], rejected[i])` (see the class)."""
        check_instance("chosen", chosen, HeadOutput, "an adajudge.nn.HeadOutput")
        check_instance("rejected", rejected, HeadOutput, "an adajudge.nn.HeadOutput")
        return self._pair_loss(chosen, rejected, margin=margin, weights=weights)

    @abc.abstractmethod
    def _pair_loss(self, chosen: HeadOutput, rejected: HeadOutput, *, margin, weights) -> torch.Tensor:
        """`pair_loss` after its type checks."""


class BTLoss(PairLoss):
    """Bradley-Terry loss `mean_i w_i · softplus(−(c_i − r_i − m_i) / τ)` (+ TRL's reward centering).

    Args:
        temperature: `τ > 0`. center_coef: `≥ 0`, weight of `mean((c + r)²)`.
        backend: `adajudge.ops` backend: "auto", "triton", "torch" or "reference".

    Example:
        >>> BTLoss(backend="reference")(torch.tensor([1.0, 0.5]), torch.tensor([0.0, 0.7]))
        tensor(0.5557)
    """

    def __init__(self, temperature: float = 1.0, center_coef: float = 0.0, backend: str = "auto"):
        super().__init__()
        self.temperature = check_float("temperature", temperature, greater_than=0)
        self.center_coef = check_float("center_coef", center_coef, at_least=0)
        self.backend = check_choice("backend", backend, BACKENDS)
        self.gamma = 0.0

    def forward(
        self,
        chosen_rewards: torch.Tensor,
        rejected_rewards: torch.Tensor,
        *,
        margin: torch.Tensor | None = None,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`chosen_rewards`, `rejected_rewards`, `margin`, `weights`: `[N]` → scalar fp32 loss."""
        return ops.preference_loss(
            chosen_rewards,
            rejected_rewards,
            margin=margin,
            weights=weights,
            temperature=self.temperature,
            gamma=self.gamma,
            center_coef=self.center_coef,
            backend=self.backend,
        )

    def _pair_loss(self, chosen: HeadOutput, rejected: HeadOutput, *, margin, weights) -> torch.Tensor:
        return self(chosen.reward, rejected.reward, margin=margin, weights=weights)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, temperature={self.temperature}, center_coef={self.center_coef}, backend={self.backend!r}"


class FocalBTLoss(BTLoss):
    """Focal Bradley-Terry: each pair's BT term times `(1 − σ(Δ_i))^γ` (differentiated, not detached), so
    pairs the model already ranks confidently weigh less (AdaJudge, arXiv 2601.08097).

    Args:
        gamma: `γ ≥ 0` (0 is `BTLoss`); default 2.0 *(ours; the paper gives none)*.
        temperature, center_coef, backend: as in `BTLoss`.
    """

    def __init__(self, gamma: float = 2.0, temperature: float = 1.0, center_coef: float = 0.0, backend: str = "auto"):
        super().__init__(temperature=temperature, center_coef=center_coef, backend=backend)
        self.gamma = check_float("gamma", gamma, at_least=0)


class NormBTLoss(BTLoss):
    """NormBT (arXiv 2512.06343): each pair's (focal) BT term times `sg(μ / (‖h_c,i − h_r,i‖₂ + ε))`.

    `μ` is an exponential moving average of the batch-mean distance `d_batch = mean_i ‖h_c,i − h_r,i‖₂`, kept
    in the buffer `running_distance` (saved in the state dict, with `num_batches_tracked`, so it survives a
    checkpoint and resume). In training mode each call first updates it,
    `μ ← momentum · μ + (1 − momentum) · d_batch` (the first batch sets `μ = d_batch`), and then scales the
    batch with the updated `μ`: the current batch enters `μ` before it is scaled *(ours: the method text of
    arXiv 2512.06343 could not be consulted here; this order is that of batch normalisation in training
    mode, and with it the first batch's weights average to about 1 instead of needing a special case)*.
    A batch the op rejects leaves the buffers untouched. In eval mode `μ` never moves (the batch's own mean
    distance stands in while nothing has been tracked yet); trainers put the loss in eval mode while they
    evaluate. Under `torch.distributed` (DDP), training mode averages the distance over the global batch
    (one all-reduce of `[Σ distances, count]`), so every process holds the same `μ` as one process with
    the same global batch; without a process group the call is sync-free.

    Args:
        gamma: focal `γ ≥ 0` (0 = NormBT on plain BT). momentum: in `[0, 1)`. eps: `ε > 0`.
        temperature, center_coef, backend: as in `BTLoss`.
    """

    def __init__(
        self,
        gamma: float = 0.0,
        momentum: float = 0.9,
        eps: float = 1e-6,
        temperature: float = 1.0,
        center_coef: float = 0.0,
        backend: str = "auto",
    ):
        super().__init__(temperature=temperature, center_coef=center_coef, backend=backend)
        self.gamma = check_float("gamma", gamma, at_least=0)
        self.momentum = check_float("momentum", momentum, at_least=0, less_than=1)
        self.eps = check_float("eps", eps, greater_than=0)
        self.register_buffer("running_distance", torch.zeros((), dtype=torch.float32))
        self.register_buffer("num_batches_tracked", torch.zeros((), dtype=torch.long))

    def forward(
        self,
        chosen_rewards: torch.Tensor,
        rejected_rewards: torch.Tensor,
        *,
        chosen_repr: torch.Tensor,
        rejected_repr: torch.Tensor,
        margin: torch.Tensor | None = None,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Rewards, `margin`, `weights`: `[N]`; `chosen_repr`, `rejected_repr`: `[N, D]` → scalar fp32 loss."""
        for name, value in (("chosen_repr", chosen_repr), ("rejected_repr", rejected_repr)):
            if not isinstance(value, torch.Tensor) or not value.dtype.is_floating_point:
                raise TypeError(f"{name}: expected a floating torch.Tensor, got {getattr(value, 'dtype', type(value).__name__)}")
            if value.dim() != 2:
                raise ValueError(f"{name}: expected shape [N, D], got {list(value.shape)}")
        if chosen_repr.shape != rejected_repr.shape:
            raise ValueError(
                f"rejected_repr: expected the shape of chosen_repr {list(chosen_repr.shape)}, got {list(rejected_repr.shape)}"
            )
        with torch.no_grad():
            distances = torch.linalg.vector_norm(chosen_repr.float() - rejected_repr.float(), dim=-1)
            distance = _mean_over_processes(distances) if self.training else distances.mean()
            untracked = self.num_batches_tracked == 0
            if self.training:
                updated = self.momentum * self.running_distance + (1.0 - self.momentum) * distance
                norm_scale = torch.where(untracked, distance, updated)
            else:
                norm_scale = torch.where(untracked, distance, self.running_distance)
        loss = ops.preference_loss(
            chosen_rewards,
            rejected_rewards,
            margin=margin,
            weights=weights,
            temperature=self.temperature,
            gamma=self.gamma,
            center_coef=self.center_coef,
            chosen_repr=chosen_repr,
            rejected_repr=rejected_repr,
            norm_scale=norm_scale,
            eps=self.eps,
            backend=self.backend,
        )
        if self.training:  # only once the op has accepted the batch
            self.running_distance.copy_(norm_scale)
            self.num_batches_tracked.add_(1)
        return loss

    def _pair_loss(self, chosen: HeadOutput, rejected: HeadOutput, *, margin, weights) -> torch.Tensor:
        return self(
            chosen.reward,
            rejected.reward,
            chosen_repr=chosen.representation,
            rejected_repr=rejected.representation,
            margin=margin,
            weights=weights,
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, momentum={self.momentum}, eps={self.eps}"


def _mean_over_processes(values: torch.Tensor) -> torch.Tensor:
    """fp32 mean of `values [N]` over every process of the default `torch.distributed` group (one all-reduce
    of `[Σ values, N]`, accumulated in fp64), or over this process's values when there is no such group."""
    totals = torch.stack([values.double().sum(), values.new_tensor(values.numel(), dtype=torch.float64)])
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(totals)
    return (totals[0] / totals[1]).float()


class AdaJudgeLoss(PairLoss):
    """The AdaJudge objective: focal BT on the rewards plus a floor on the router's entropy,

        `FocalBT(c, r) + λ · mean_{both sides} max(0, η − H(π))²`,

    which keeps the router from collapsing onto one view early in training. `η` is capped at `log V`, the
    largest entropy `V` views allow *(ours)*: for a static head (`V = 1`) the floor term is 0.

    Args:
        gamma: focal `γ ≥ 0` *(ours: 2.0)*. entropy_coef: `λ ≥ 0` *(ours: 0.1)*.
        entropy_floor: `η ≥ 0` in nats *(ours: 0.5)*. temperature, center_coef, backend: as in `BTLoss`.
    """

    def __init__(
        self,
        gamma: float = 2.0,
        entropy_coef: float = 0.1,
        entropy_floor: float = 0.5,
        temperature: float = 1.0,
        center_coef: float = 0.0,
        backend: str = "auto",
    ):
        super().__init__()
        self.preference = FocalBTLoss(gamma=gamma, temperature=temperature, center_coef=center_coef, backend=backend)
        self.entropy_coef = check_float("entropy_coef", entropy_coef, at_least=0)
        self.entropy_floor = check_float("entropy_floor", entropy_floor, at_least=0)

    def forward(
        self,
        chosen: HeadOutput,
        rejected: HeadOutput,
        *,
        margin: torch.Tensor | None = None,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`chosen`, `rejected`: `HeadOutput`s of `N` rows each; `margin`, `weights`: `[N]` → scalar fp32."""
        check_instance("chosen", chosen, HeadOutput, "an adajudge.nn.HeadOutput")
        check_instance("rejected", rejected, HeadOutput, "an adajudge.nn.HeadOutput")
        loss = self.preference(chosen.reward, rejected.reward, margin=margin, weights=weights)
        floor = min(self.entropy_floor, math.log(chosen.router_probs.shape[-1]))
        entropy = torch.cat([chosen.router_entropy, rejected.router_entropy]).to(loss.dtype)  # [2N]
        return loss + self.entropy_coef * (floor - entropy).clamp(min=0).square().mean()

    def _pair_loss(self, chosen: HeadOutput, rejected: HeadOutput, *, margin, weights) -> torch.Tensor:
        return self(chosen, rejected, margin=margin, weights=weights)

    def extra_repr(self) -> str:
        return f"entropy_coef={self.entropy_coef}, entropy_floor={self.entropy_floor}"
