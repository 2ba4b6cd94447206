"""Launch settings shared by the kernels: block sizes from the problem shape, grid sizes from the device."""
import torch
import triton

# Bytes of one [BLOCK_T, D] token tile that should stay cache-resident between the two sweeps over D that
# the pooling kernels make per token block (the second sweep re-reads the tile from L1/L2, not DRAM).
TILE_BYTES = 128 << 10
# Elements of one [BLOCK_T, BLOCK_D] register tile, and the warps that share it (8 fp32 per thread).
TILE_ELEMENTS = 2048
POOL_WARPS = 8
# Warps for the small [B, V] and [N] kernels.
SMALL_WARPS = 4
# Software-pipelining depth of every kernel's loops: 1 (none); deeper pipelines multiply the registers of
# the tiles in flight and spilled in the compile check.
NUM_STAGES = 1


def token_tile(dim: int, element_size: int) -> tuple[int, int]:
    """`(BLOCK_T, BLOCK_D)` for sweeping `[tokens, dim]` rows: BLOCK_T tokens, D in chunks of BLOCK_D."""
    fit = max(1, TILE_BYTES // (dim * element_size))
    block_t = min(max(1 << (fit.bit_length() - 1), 4), 16)  # largest power of two that fits, in [4, 16]
    block_d = min(triton.next_power_of_2(dim), max(64, TILE_ELEMENTS // block_t))
    return block_t, block_d


def target_programs(device: torch.device) -> int:
    """How many programs fill the device: 4 per SM on CUDA; a few under the CPU interpreter."""
    if device.type == "cuda":
        return 4 * torch.cuda.get_device_properties(device).multi_processor_count
    return 4


def token_splits(length: int, rows: int, block_t: int, device: torch.device) -> tuple[int, int]:
    """`(num_splits, chunk_len)`: split each row's `length` tokens so `rows * num_splits` fills the device.

    A chunk holds a whole number of BLOCK_T blocks and at least 4 of them (fewer partials to combine).
    """
    wanted = max(1, -(-target_programs(device) // rows))
    chunk = -(-length // wanted)
    chunk = max(-(-chunk // block_t) * block_t, 4 * block_t)
    return max(1, -(-length // chunk)), chunk
