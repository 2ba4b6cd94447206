"""`AdaJudgeHead` (docs/design.md §5): refinement blocks with a depth gate, multi-view pooling, per-view
scorers and a router, after arXiv 2601.08097."""
import torch
from torch import nn

from adajudge import ops
from adajudge.nn.mlp import MLP
from adajudge.nn.output import HeadOutput
from adajudge.nn.packed import checked_head_inputs
from adajudge.nn.pooling import MultiViewPooling
from adajudge.nn.refinement import Refinement, default_num_heads
from adajudge.ops.backend import BACKENDS
from adajudge.validation import check_choice, check_float, check_int
from adajudge.views import SCORED_VIEWS


class AdaJudgeHead(nn.Module):
    """Adaptive reward head: `hidden [B, T, D]` of a backbone → `HeadOutput` with three views.

    1. `H̃ = Σ_k α_k Block_k(…)` over `num_blocks` refinement blocks, `α` from the depth gate.
    2. `z = multiview_pool(H̃)`: views last, mean, attn (scored) and prompt (router input only).
    3. `s_v = MLP_v(z_v)` for v in (last, mean, attn); router logits `u = MLP_r([z_L; z_M; z_A; z_P])`.
    4. `reward, π, entropy = router_mix(u, s)`; `representation = Σ_v π_v z_v`.

    An untrained head passes `hidden` through the refinement unchanged (zero-initialised output
    projections) and mixes the views uniformly (the router's last layer starts at zero) *(ours)*.

    Dtypes: `hidden` stays in the backbone's dtype wherever the math allows: the depth gate's mean and,
    with `num_blocks=0`, the pooling read it as it is (fp32 accumulation inside); the refinement blocks cast
    it once to the head's parameter dtype (their matmuls need one dtype), and pooling then reads their
    output. The scorers and router run in the parameter dtype; the router mix, reward, probabilities,
    entropy and representation are fp32.

    Host syncs per forward: one (the masks' value checks; see `adajudge.validation.check_values`); packed
    input adds the read of `max_seqlen` when it is not given and, off flash-attn, one read of the sequence
    lengths to lay out the block-diagonal attention.

    Args:
        hidden_size: `D` of the backbone.
        num_blocks: refinement blocks `K` (the paper: 2 for Phi-3.5-mini, 3 for Qwen3); 0 turns refinement
            and the depth gate off.
        num_heads: attention heads per block; `None` picks the head size closest to 64 that divides `D`.
        mlp_ratio: SwiGLU width of the blocks as a multiple of `D` *(ours: 2.0)*.
        scorer_hidden: hidden width of each view scorer `D → scorer_hidden → 1` (SiLU); 0 = linear.
        router_hidden: hidden width of the router `4D → router_hidden → 3` (SiLU); 0 = linear.
        router_temperature: `τ_r` of the router softmax.
        backend: `adajudge.ops` backend: "auto", "triton", "torch" or "reference".

    Example:
        >>> head = AdaJudgeHead(64, num_blocks=2, backend="reference")
        >>> out = head(torch.randn(2, 7, 64), torch.ones(2, 7, dtype=torch.long))
        >>> out.reward.shape, out.router_probs.shape
        (torch.Size([2]), torch.Size([2, 3]))
    """

    def __init__(
        self,
        hidden_size: int,
        num_blocks: int = 3,
        num_heads: int | None = None,
        mlp_ratio: float = 2.0,
        scorer_hidden: int = 256,
        router_hidden: int = 256,
        router_temperature: float = 1.0,
        backend: str = "auto",
    ):
        super().__init__()
        self.hidden_size = check_int("hidden_size", hidden_size, greater_than=0)
        check_int("num_blocks", num_blocks, at_least=0)
        self.num_heads = default_num_heads(hidden_size) if num_heads is None else num_heads
        check_int("num_heads", self.num_heads, greater_than=0)
        if hidden_size % self.num_heads != 0:
            raise ValueError(f"num_heads: expected a divisor of hidden_size={hidden_size}, got {num_heads}")
        check_int("scorer_hidden", scorer_hidden, at_least=0)
        check_int("router_hidden", router_hidden, at_least=0)
        mlp_ratio = check_float("mlp_ratio", mlp_ratio, greater_than=0)
        self.router_temperature = check_float("router_temperature", router_temperature, greater_than=0)
        self.backend = check_choice("backend", backend, BACKENDS)
        self.refinement = Refinement(hidden_size, num_blocks, self.num_heads, max(1, round(mlp_ratio * hidden_size)))
        self.pool = MultiViewPooling(hidden_size, backend=backend)
        self.scorers = nn.ModuleList(MLP(hidden_size, scorer_hidden, 1) for _ in SCORED_VIEWS)
        self.router = MLP(4 * hidden_size, router_hidden, len(SCORED_VIEWS), zero_init_output=True)

    def forward(
        self,
        hidden: torch.Tensor,
        attention_mask: torch.Tensor | None,
        response_mask: torch.Tensor | None = None,
        *,
        cu_seqlens: torch.Tensor | None = None,
        max_seqlen: int | None = None,
    ) -> HeadOutput:
        """Score `hidden [B, T, D]` with masks `[B, T]` (see `MultiViewPooling`) → `HeadOutput` with `V = 3`.

        Packed (docs/packing.md): `hidden [total, D]`, the `N` sequences one after another, with `cu_seqlens
        [N+1]` (int32/int64) and optionally `max_seqlen`, `attention_mask=None` (every packed token is real),
        `response_mask [total]` or None → `HeadOutput` over the `N` sequences, the same as the padded call
        gives each of them. Nothing is padded again: the blocks attend within each sequence (flash-attn's
        varlen kernel, or SDPA with a block-diagonal mask) and pooling takes the packed layout.
        """
        sequences = checked_head_inputs(hidden, attention_mask, response_mask, cu_seqlens, max_seqlen, self.hidden_size)
        refined = self.refinement(hidden, attention_mask, sequences)
        views = self.pool.forward_unchecked(refined, attention_mask, response_mask, sequences)  # [B, 4, D]
        dtype = self.pool.attn_weight.dtype
        scores = torch.cat([scorer(views[:, view].to(dtype)) for view, scorer in zip(SCORED_VIEWS, self.scorers)], dim=1)
        router_logits = self.router(views.flatten(1).to(dtype))  # [B, 3]
        reward, probs, entropy = ops.router_mix(
            router_logits.float(), scores.float(), temperature=self.router_temperature, backend=self.backend
        )
        representation = (probs[:, :, None] * views[:, list(SCORED_VIEWS)].float()).sum(dim=1)  # [B, D]
        return HeadOutput(reward, scores.float(), probs, entropy, representation)
