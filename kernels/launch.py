"""Launch settings shared by the kernels: block sizes from the problem shape, grid sizes from the device."""
import torch
import triton

# Bytes of one [BLOCK_T, D] token tile that should stay cache-resident between the two sweeps over D that
# the pooling kernels make per token block (the second sweep re-reads the tile from L1/L2, not DRAM).
TILE_BYTES = 128 << 10
# Elements of one [BLOCK_T, BLOCK_D] register tile.
TILE_ELEMENTS = 4096


def token_tile(dim: int, element_size: int) -> tuple[int, int]:
    """`(BLOCK_T, BLOCK_D)` for sweeping `[tokens, dim]` rows: BLOCK_T tokens, D in chunks of BLOCK_D."""
    fit = max(1, TILE_BYTES // (dim * element_size))
    block_t = min(max(1 << (fit.bit_length() - 1), 4), 64)  # largest power of two that fits, in [4, 64]
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
