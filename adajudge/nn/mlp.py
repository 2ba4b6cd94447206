"""The small MLP used for the per-view scorers and the router (docs/design.md §5 step 4)."""
import torch
from torch import nn

from adajudge.validation import check_int


class MLP(nn.Module):
    """`in_features → hidden_features → out_features` with SiLU between; `hidden_features=0` is one `Linear`.

    Args:
        in_features, out_features: sizes of the input and output's last axis.
        hidden_features: width of the hidden layer, or 0 for a single linear map.
        zero_init_output: start the last layer's weight and bias at zero, so the output is 0 until trained.
    """

    def __init__(self, in_features: int, hidden_features: int, out_features: int, *, zero_init_output: bool = False):
        super().__init__()
        check_int("in_features", in_features, greater_than=0)
        check_int("hidden_features", hidden_features, at_least=0)
        check_int("out_features", out_features, greater_than=0)
        if hidden_features == 0:
            self.layers = nn.Sequential(nn.Linear(in_features, out_features))
        else:
            self.layers = nn.Sequential(
                nn.Linear(in_features, hidden_features), nn.SiLU(), nn.Linear(hidden_features, out_features)
            )
        if zero_init_output:
            nn.init.zeros_(self.layers[-1].weight)
            nn.init.zeros_(self.layers[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x [..., in_features]` → `[..., out_features]`, in the parameters' dtype."""
        return self.layers(x)
