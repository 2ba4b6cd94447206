"""DDP: two gloo processes on CPU reach the same parameters as one process with the same global batch."""
import os
import socket

import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from adajudge.nn import build_head
from adajudge.training.features import collate_features
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


def _train(output_dir) -> dict:
    torch.manual_seed(0)
    head = build_head("adajudge", HIDDEN, num_blocks=1, scorer_hidden=8, router_hidden=8)
    data = _items()
    fit(head, build_loss("adajudge"), data[:20], data[20:], collate=collate_features, forward=head_forward,
        config=CONFIG, output_dir=output_dir, progress=False)
    return {name: param.detach().clone() for name, param in head.state_dict().items()}


def _worker(rank, world, port, output_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    params = _train(output_dir)
    save_file(params, os.path.join(output_dir, f"params-rank{rank}.safetensors"))
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_processes_match_one_process(tmp_path):
    single = _train(tmp_path / "single")
    torch.manual_seed(0)
    initial = build_head("adajudge", HIDDEN, num_blocks=1, scorer_hidden=8, router_hidden=8).state_dict()
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "ddp")), nprocs=2, join=True)
    ranks = [load_file(str(tmp_path / "ddp" / f"params-rank{r}.safetensors")) for r in range(2)]
    for name, value in single.items():
        if name == "pool.attn_bias":
            # its gradient is zero in exact arithmetic (softmax is shift-invariant), so Adam turns rounding
            # noise into steps: the value is arbitrary in both runs and carries no information
            continue
        assert torch.equal(ranks[0][name], ranks[1][name]), f"{name} differs between the DDP ranks"
        torch.testing.assert_close(ranks[0][name], value, rtol=1e-5, atol=1e-6, msg=f"{name}: DDP vs one process")
    moved = max((single[name] - initial[name]).abs().max().item() for name in single)
    assert moved > 1e-2  # training changed the parameters, so the comparison is not trivially true
