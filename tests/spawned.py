"""Helpers for tests that spawn gloo processes on 127.0.0.1 (`torch.multiprocessing.spawn`)."""
import os
import socket

import torch


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now (for MASTER_PORT)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def join_group_env(rank: int, world: int, port: int) -> None:
    """The launcher's environment for process `rank` of `world`, one CPU thread each."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)


def leave() -> None:
    """End a spawned worker once every process is done, without tearing its process group down.

    torch 2.13's `~ProcessGroupGloo` joins its worker threads while the caller holds the GIL, and a worker
    thread still destroying a finished collective (`~AsyncAllgatherWork` decrefs tensors) waits for the GIL:
    the process hangs at exit, intermittently (seen with py-spy in a DDP worker: Reducer dealloc ->
    `~ProcessGroupGloo` -> `std::thread::join`). Everything the test reads is written and closed before this.
    """
    torch.distributed.barrier()
    os._exit(0)
