"""DDP: two gloo processes on CPU reach the same parameters, and the same NormBT running distance μ, as one
process with the same global batch (μ is all-reduced, so both ranks hold it); μ is the one the checkpoint keeps.
Padded and packed batches (docs/packing.md) alike."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from adajudge.nn import build_head
from adajudge.training.features import collate_features, collate_packed_features
from adajudge.training.loop import FitConfig, fit, head_forward
from adajudge.training.losses import build_loss

HIDDEN = 16
CONFIG = FitConfig(epochs=2, lr=5e-2, batch_size=8, seed=3, warmup_ratio=0.0)


def _items(num=24):
    generator = torch.Generator().manual_seed(7)
    items = []
    for _ in range(num):
        lengths = torch.randint(3, 9, (2,), generator=generator).tolist()
        item = {}
        for side, length in zip(("chosen", "rejected"), lengths):
            item[f"{side}_hidden"] = torch.randn(length, HIDDEN, generator=generator)
            item[f"{side}_response_mask"] = (torch.arange(length) >= 2).to(torch.uint8)
        item["chosen_hidden"][-1, 0] += 1.0  # a learnable preference
        items.append(item)
    return items


LOSSES = ("adajudge", "normbt", "adajudge-packed")  # the loss, and "-packed" for packed batches
STEPS = 2 * 3  # 2 epochs of 20 pairs in global batches of 8 (8, 8, 4)


def _train(output_dir, loss_name) -> dict:
    """Parameters after `fit`, plus the loss's state under `loss.<name>` (NormBT's μ and its batch count)."""
    torch.manual_seed(0)
    head = build_head("adajudge", HIDDEN, num_blocks=1, scorer_hidden=8, router_hidden=8)
    loss_fn = build_loss(loss_name.removesuffix("-packed"))
    data = _items()
    collate = collate_packed_features if loss_name.endswith("-packed") else collate_features
    fit(head, loss_fn, data[:20], data[20:], collate=collate, forward=head_forward,
        config=CONFIG, output_dir=output_dir, progress=False)
    state = {name: param.detach().clone() for name, param in head.state_dict().items()}
    return {**state, **{f"loss.{name}": value.clone() for name, value in loss_fn.state_dict().items()}}


def _worker(rank, world, port, output_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    for loss_name in LOSSES:
        params = _train(os.path.join(output_dir, loss_name), loss_name)
        save_file(params, os.path.join(output_dir, f"{loss_name}-rank{rank}.safetensors"))
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _identifiable(state: dict) -> dict:
    """The state without the directions the loss cannot see, in which Adam turns rounding noise into steps
    (the gradient there is zero in exact arithmetic, so the values differ arbitrarily between runs):
    `pool.attn_bias` (softmax is shift-invariant) and a shift shared by the scorers' output biases (the
    rewards enter the loss as differences `c - r` and the router's weights sum to 1, so adding one
    constant to every scorer's bias changes no loss). The biases are kept relative to their mean."""
    biases = [name for name in state if name.startswith("scorers.") and name.endswith("layers.2.bias")]
    shared = torch.stack([state[name] for name in biases]).mean()
    kept = {name: value for name, value in state.items() if name != "pool.attn_bias"}
    return {**kept, **{name: state[name] - shared for name in biases}}


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path):
    single = {loss_name: _train(tmp_path / "single" / loss_name, loss_name) for loss_name in LOSSES}
    torch.manual_seed(0)
    initial = build_head("adajudge", HIDDEN, num_blocks=1, scorer_hidden=8, router_hidden=8).state_dict()
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "ddp")), nprocs=2, join=True)
    for loss_name in LOSSES:
        ranks = [load_file(str(tmp_path / "ddp" / f"{loss_name}-rank{r}.safetensors")) for r in range(2)]
        for name in ranks[0]:
            assert torch.equal(ranks[0][name], ranks[1][name]), f"{loss_name}: {name} differs between the DDP ranks"
        ddp = _identifiable(ranks[0])
        for name, value in _identifiable(single[loss_name]).items():
            torch.testing.assert_close(ddp[name], value, rtol=1e-5, atol=1e-6, msg=lambda m, n=name, loss=loss_name: (
                f"{loss}: {n}: DDP vs one process: {m}"))
        moved = max((single[loss_name][name] - initial[name]).abs().max().item() for name in initial)
        assert moved > 1e-2  # training changed the parameters, so the comparison is not trivially true

    mu = single["normbt"]["loss.running_distance"]
    assert mu > 0 and single["normbt"]["loss.num_batches_tracked"] == STEPS  # evaluation did not move it
    checkpoint = load_file(str(tmp_path / "ddp" / "normbt" / "checkpoints" / "step-0000006" / "loss.safetensors"))
    rank0 = load_file(str(tmp_path / "ddp" / "normbt-rank0.safetensors"))
    assert torch.equal(checkpoint["running_distance"], rank0["loss.running_distance"])
