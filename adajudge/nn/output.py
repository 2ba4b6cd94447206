"""`HeadOutput`: what every reward head in `adajudge.nn` returns."""
import dataclasses
from dataclasses import dataclass

import torch


@dataclass
class HeadOutput:
    """The result of a reward head on `B` sequences, `V` views (3 for `AdaJudgeHead`, 1 for static heads).

    Attributes:
        reward: `[B]` fp32, the scalar reward.
        view_scores: `[B, V]` fp32, one score per view (static heads: the reward itself).
        router_probs: `[B, V]` fp32, the router's mixture `π` (static heads: ones).
        router_entropy: `[B]` fp32, `−Σ_v π_v log π_v` in nats (static heads: zeros).
        representation: `[B, D]` fp32, the pooled vector behind the reward (`Σ_v π_v z_v`), used by NormBT.
    """

    reward: torch.Tensor
    view_scores: torch.Tensor
    router_probs: torch.Tensor
    router_entropy: torch.Tensor
    representation: torch.Tensor

    def split_pairs(self) -> tuple["HeadOutput", "HeadOutput"]:
        """`(chosen, rejected)`: the first and second halves of a batch in TRL's layout (`B = 2N`, chosen
        rows first), each a `HeadOutput` of `N` rows (views of this one's tensors)."""
        batch = self.reward.shape[0]
        if batch % 2 != 0:
            raise ValueError(f"reward: expected an even batch (chosen rows, then rejected rows), got B = {batch}")
        halves = {field.name: getattr(self, field.name).split(batch // 2) for field in dataclasses.fields(self)}
        return HeadOutput(**{k: v[0] for k, v in halves.items()}), HeadOutput(**{k: v[1] for k, v in halves.items()})
