"""Value checks of the ops' masks (skipped when value checks are off; see `adajudge.validation`)."""
import torch

from adajudge.validation import value_checks_enabled


def check_binary_mask(name, mask):
    """Values of a 0/1 mask (skipped when value checks are off)."""
    if value_checks_enabled() and mask.dtype != torch.bool and bool(((mask != 0) & (mask != 1)).any()):
        raise ValueError(f"{name}: expected only 0 and 1 entries, got values {mask.unique()[:8].tolist()}")
