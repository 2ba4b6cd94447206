"""Cached backbone features: hidden states of a frozen backbone computed once, kept on disk, reused by heads.

A frozen backbone gives the same hidden states every epoch, so `adajudge train --cache-features` runs it
once (batched, `torch.no_grad`) and trains the head on the stored states: the head's cost only, per epoch.

On-disk layout (a folder):

- `meta.json`: format version, `num_pairs`, `hidden_size`, `dtype`, shard file names, `fingerprint` (what the
  features were computed from: backbone, pairs, max_length), `has_margin`, `has_weight`, and the pairs
  `dropped` / `truncated` by the truncation policy. Written last: a folder without it is unfinished.
- `shard-00000.safetensors`, ...: shard `s` holds the pairs kept among `pairs[s * shard_pairs : (s + 1) *
  shard_pairs]`, packed, no padding stored. Sequences run chosen_0, rejected_0, chosen_1, rejected_1, ...;
  tensors `hidden [S, D]`, `response_mask [S]` (uint8), `cu_seqlens [2n+1]` (int64 offsets into `S`), and
  `margin [n]` / `weight [n]` (fp32) when the pairs carry them. The safetensors metadata entry `adajudge`
  (one JSON string, so that the header's bytes do not depend on a map's order) holds the shard's `key` (the
  fingerprint and every setting that shapes the shard's bytes) and its truncation counts.

Only real tokens are stored (the rows of the attention mask), so the padding side used while computing
them does not matter. With a `PackedPreferenceCollator` the backbone runs on packed batches (docs/packing.md):
no padding computed, the same states up to rounding.

Scaling *(ours)*: each shard is computed and written (to a temporary name, then renamed) before the next
starts, so extraction holds one shard's states in memory whatever the number of pairs; a run started again
keeps every shard whose key matches and computes the rest, giving the same bytes as an uninterrupted run;
under several processes (torchrun, `accelerate launch`) process `r` of `W` computes shards `r, r + W, ...`
and the main process writes `meta.json` once all are done. `FeatureDataset` reads items from the shard
files on demand, so training on the features does not load them all either.
"""
import hashlib
import json
import os
from pathlib import Path

import torch
from accelerate import PartialState
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import Dataset

from adajudge.data.collator import PackedPreferenceCollator
from adajudge.data.encoding import encode_pairs
from adajudge.data.packing import is_packed

FORMAT_VERSION = 2


def features_fingerprint(backbone_name: str, pairs: list[dict], max_length: int) -> str:
    """sha256 over what cached features depend on: backbone name/path, the pairs and `max_length`."""
    digest = hashlib.sha256()
    digest.update(json.dumps([str(backbone_name), int(max_length)]).encode())
    for pair in pairs:
        digest.update(json.dumps(pair, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def shard_key(fingerprint: str, *, shard_pairs: int, batch_size: int, dtype: torch.dtype, collator) -> str:
    """What a shard's bytes depend on beyond the fingerprint: its size, the batching (padding or packing changes
    the float sums), the stored dtype, the collator's padding side or rows; the format version. A shard is
    reused only when its stored key equals this one."""
    settings = [fingerprint, FORMAT_VERSION, shard_pairs, batch_size, str(dtype), collator.padding_side]
    if isinstance(collator, PackedPreferenceCollator):
        settings.append(["packed", collator.row_tokens])
    return hashlib.sha256(json.dumps(settings).encode()).hexdigest()


def _optional_column(pairs: list[dict], key: str) -> bool:
    present = [key in pair and pair[key] is not None for pair in pairs]
    if any(present) and not all(present):
        raise ValueError(f"pairs: `{key}` must be given for every pair or for none, got it on {sum(present)} of {len(pairs)}")
    return bool(pairs) and all(present)


def _shard_name(index: int) -> str:
    return f"shard-{index:05d}.safetensors"


def _shard_info(shard) -> dict:
    """`{"key", "dropped", "truncated"}` of an open shard file."""
    return json.loads((shard.metadata() or {}).get("adajudge", "{}"))


def _stored_key(path: Path) -> str | None:
    """The `key` in a shard file's metadata, None when the file is absent or unreadable."""
    try:
        with safe_open(str(path), framework="pt") as shard:
            return _shard_info(shard).get("key")
    except (OSError, ValueError, RuntimeError):
        return None


def _batch_sequences(model, batch: dict, device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`(hidden [n, D], response_mask [n])` of each sequence of a collated batch (chosen ones, then rejected
    ones): its real tokens' last hidden states, from a padded or a packed batch."""
    if is_packed(batch):
        hidden, _ = model.packed_backbone_hidden_states(
            *(batch[key].to(device) for key in ("input_ids", "position_ids", "token_index", "cu_seqlens")),
            batch["max_seqlen"],
        )
        bounds = batch["cu_seqlens"].tolist()
        hidden, response = hidden.cpu(), batch["response_mask"]
        return [(hidden[start:end], response[start:end]) for start, end in zip(bounds[:-1], bounds[1:])]
    hidden = model.backbone_hidden_states(
        batch["input_ids"].to(device), batch["attention_mask"].to(device)
    ).last_hidden_state.cpu()
    real = batch["attention_mask"].bool()
    return [(hidden[row][real[row]], batch["response_mask"][row][real[row]]) for row in range(hidden.shape[0])]


def _shard_tensors(model, collator, pairs, *, batch_size, dtype, device, has_margin, has_weight):
    """`(tensors, stats)` of one shard: the backbone states of the kept pairs (longest first in batches of
    `batch_size`, stored in pair order) and the truncation counts."""
    encoded, stats = encode_pairs(collator.tokenizer, pairs, max_length=collator.max_length)
    hidden_size = model.config.hidden_size
    per_pair = [None] * len(encoded)

    def size(i):
        return max(len(encoded[i]["chosen_input_ids"]), len(encoded[i]["rejected_input_ids"]))

    order = sorted(range(len(encoded)), key=size, reverse=True)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        sequences = _batch_sequences(model, collator([encoded[i] for i in index]), device)
        for row, i in enumerate(index):
            (chosen_h, chosen_m), (rejected_h, rejected_m) = sequences[row], sequences[row + len(index)]
            per_pair[i] = (chosen_h.to(dtype), chosen_m.to(torch.uint8), rejected_h.to(dtype), rejected_m.to(torch.uint8))
    sequences = [(h, m) for chosen_h, chosen_m, rejected_h, rejected_m in per_pair
                 for h, m in ((chosen_h, chosen_m), (rejected_h, rejected_m))]
    tensors = {
        "hidden": torch.cat([h for h, _ in sequences]) if sequences else torch.empty(0, hidden_size, dtype=dtype),
        "response_mask": torch.cat([m for _, m in sequences]) if sequences else torch.empty(0, dtype=torch.uint8),
        "cu_seqlens": torch.tensor([0, *(h.shape[0] for h, _ in sequences)], dtype=torch.int64).cumsum(0),
    }
    if has_margin:
        tensors["margin"] = torch.tensor([float(pair["margin"]) for pair in encoded], dtype=torch.float32)
    if has_weight:
        tensors["weight"] = torch.tensor([float(pair["weight"]) for pair in encoded], dtype=torch.float32)
    return {name: tensor.contiguous() for name, tensor in tensors.items()}, stats


@torch.no_grad()
def cache_features(
    model: torch.nn.Module,
    collator,
    pairs: list[dict],
    out_dir,
    *,
    batch_size: int = 8,
    shard_pairs: int = 1024,
    dtype: torch.dtype | None = None,
    fingerprint: str = "",
    progress: bool = True,
) -> Path:
    """Compute `backbone` hidden states for every pair and write them to `out_dir`, shard by shard; returns `out_dir`.

    Every process of a distributed run calls it with the same arguments (module docstring: each computes its
    share of the shards, the main one writes `meta.json`); it returns when the folder is complete.

    Args:
        model: an `AdaJudgeForRewardModeling` whose backbone is frozen; its
            `backbone_hidden_states(input_ids, attention_mask).last_hidden_state [2b, T, D]` (the states its own
            forward feeds the head, positions counted over real tokens) is what gets stored, or with a packed
            collator `packed_backbone_hidden_states(...)` (the same states, no padding computed). Run in eval
            mode.
        collator: `adajudge.data.collator.PreferenceCollator` or `PackedPreferenceCollator` (its tokenizer,
            `max_length` and truncation policy are the ones live training uses, so cached and live inputs agree
            token for token).
        pairs: `{prompt, chosen, rejected[, margin, weight]}` dicts. Pairs whose response cannot fit in
            `collator.max_length` are dropped by `encode_pairs` (with a warning); `meta.json` counts them.
        out_dir: folder to write (created). Shards already there with this run's key are kept; others of
            the same names are replaced.
        batch_size: pairs per backbone call. Within a shard, pairs are processed longest first (to limit padding
            when the collator pads).
        shard_pairs: pairs per safetensors shard (before truncation drops); memory holds one shard's states.
        dtype: stored dtype (default: the backbone's parameter dtype).
        fingerprint: stored in `meta.json` and in each shard's key, compared by `load_or_none`.

    Raises:
        ValueError: no pairs, bad sizes, a margin/weight column on some pairs only, or every pair dropped.
    """
    from tqdm.auto import tqdm

    if not pairs:
        raise ValueError("pairs: expected at least one preference pair, got none")
    if batch_size < 1 or shard_pairs < 1:
        raise ValueError(f"batch_size, shard_pairs: expected positive ints, got {batch_size}, {shard_pairs}")
    has_margin = _optional_column(pairs, "margin")
    has_weight = _optional_column(pairs, "weight")
    # The process group comes from the launcher's environment; without CUDA, processes talk over gloo (accelerate
    # sets a CPU group up only when told the run is on CPU, as `adajudge.training.loop.make_accelerator` does).
    processes = PartialState(cpu=not torch.cuda.is_available())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = next(model.parameters()).device
    dtype = dtype or next(model.backbone.parameters()).dtype
    key = shard_key(fingerprint, shard_pairs=shard_pairs, batch_size=batch_size, dtype=dtype, collator=collator)
    num_shards = -(-len(pairs) // shard_pairs)
    was_training = model.training
    model.eval()
    mine = range(processes.process_index, num_shards, processes.num_processes)
    bar = tqdm(total=len(mine), desc="caching backbone features", unit="shard",
               disable=not (progress and processes.is_main_process))
    for index in mine:
        path = out_dir / _shard_name(index)
        if _stored_key(path) != key:
            tensors, stats = _shard_tensors(
                model, collator, pairs[index * shard_pairs : (index + 1) * shard_pairs], batch_size=batch_size,
                dtype=dtype, device=device, has_margin=has_margin, has_weight=has_weight,
            )
            info = {"key": key, "dropped": stats.dropped, "truncated": stats.truncated}
            staging = path.with_name(f".{path.name}.partial-{os.getpid()}")
            save_file(tensors, str(staging), metadata={"adajudge": json.dumps(info, sort_keys=True)})
            os.replace(staging, path)
            del tensors
        bar.update(1)
    bar.close()
    model.train(was_training)
    processes.wait_for_everyone()
    meta = _meta(out_dir, num_shards, fingerprint=fingerprint, hidden_size=model.config.hidden_size, dtype=dtype,
                 has_margin=has_margin, has_weight=has_weight)  # every process: all raise together if all dropped
    if processes.is_main_process:
        staging = out_dir / ".meta.json.partial"
        staging.write_text(json.dumps(meta, indent=2))
        os.replace(staging, out_dir / "meta.json")
    processes.wait_for_everyone()
    return out_dir


def _meta(out_dir: Path, num_shards: int, *, fingerprint, hidden_size, dtype, has_margin, has_weight) -> dict:
    """The `meta.json` of a complete folder: the shards' pair and truncation counts summed."""
    num_pairs = dropped = truncated = 0
    for index in range(num_shards):
        with safe_open(str(out_dir / _shard_name(index)), framework="pt") as shard:
            counts = _shard_info(shard)
            num_pairs += (shard.get_slice("cu_seqlens").get_shape()[0] - 1) // 2
        dropped, truncated = dropped + counts["dropped"], truncated + counts["truncated"]
    if num_pairs == 0:
        raise ValueError(f"pairs: every pair was dropped by truncation ({dropped} dropped)")
    return {
        "format": FORMAT_VERSION,
        "num_pairs": num_pairs,
        "hidden_size": int(hidden_size),
        "dtype": str(dtype).removeprefix("torch."),
        "shards": [_shard_name(index) for index in range(num_shards)],
        "fingerprint": fingerprint,
        "has_margin": has_margin,
        "has_weight": has_weight,
        "dropped": dropped,
        "truncated": truncated,
    }


def load_or_none(out_dir, fingerprint: str) -> "FeatureDataset | None":
    """The cached features in `out_dir` when they are complete and were computed from the same inputs, else None."""
    meta_path = Path(out_dir) / "meta.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT_VERSION or meta.get("fingerprint") != fingerprint:
        return None
    return FeatureDataset(out_dir)


class FeatureDataset(Dataset):
    """Pairs of cached hidden states, read from a folder written by `cache_features`.

    Only the shards' offsets (and margins / weights) are loaded; an item's states are read from its shard
    file (memory-mapped by safetensors) when asked for.

    Item `i`: dict with `chosen_hidden [Tc, D]`, `chosen_response_mask [Tc]`, `rejected_hidden [Tr, D]`,
    `rejected_response_mask [Tr]` and, when stored, `margin` / `weight` (0-d fp32).
    """

    def __init__(self, path):
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            raise ValueError(f"path: expected a features folder with meta.json (from cache_features), got {str(path)!r}")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"path: features format {self.meta.get('format')!r}, expected {FORMAT_VERSION}")
        self.hidden_size = self.meta["hidden_size"]
        self._offsets, self._columns, self._index = [], [], []
        for shard_id, name in enumerate(self.meta["shards"]):
            with safe_open(str(self.path / name), framework="pt") as shard:
                cu_seqlens = shard.get_tensor("cu_seqlens")
                stored = shard.keys()
                self._columns.append({key: shard.get_tensor(key) for key in ("margin", "weight") if key in stored})
            self._offsets.append(cu_seqlens.tolist())
            self._index += [(shard_id, j) for j in range((cu_seqlens.numel() - 1) // 2)]
        self._open_id, self._open = None, None

    def __len__(self) -> int:
        return len(self._index)

    def pair_tokens(self) -> list[int]:
        """Tokens of each item (chosen + rejected), read from the offsets (no states loaded)."""
        return [self._offsets[shard_id][2 * j + 2] - self._offsets[shard_id][2 * j] for shard_id, j in self._index]

    def __getstate__(self) -> dict:  # picklable for worker processes: the open file is reopened there
        return {**self.__dict__, "_open_id": None, "_open": None}

    def _shard(self, shard_id: int):
        """The open shard file `shard_id` (one kept open at a time; items come shard by shard in order)."""
        if self._open_id != shard_id:
            self._open = safe_open(str(self.path / self.meta["shards"][shard_id]), framework="pt")
            self._open_id = shard_id
        return self._open

    def __getitem__(self, i: int) -> dict:
        shard_id, j = self._index[i]
        shard, cu = self._shard(shard_id), self._offsets[shard_id]
        item = {}
        for side, seq in (("chosen", 2 * j), ("rejected", 2 * j + 1)):
            start, stop = cu[seq], cu[seq + 1]
            item[f"{side}_hidden"] = shard.get_slice("hidden")[start:stop]
            item[f"{side}_response_mask"] = shard.get_slice("response_mask")[start:stop]
        for key, column in self._columns[shard_id].items():
            item[key] = column[j]
        return item


def _stacked_sequences(items: list[dict]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """`(hidden states, response masks)` of cached pairs' sequences in the TRL order: chosen ones, then rejected."""
    if not items:
        raise ValueError("items: expected at least one cached pair, got none")
    rows = [item["chosen_hidden"] for item in items] + [item["rejected_hidden"] for item in items]
    masks = [item["chosen_response_mask"] for item in items] + [item["rejected_response_mask"] for item in items]
    return rows, masks


def _pair_columns(items: list[dict]) -> dict[str, torch.Tensor]:
    """`margin [N]` / `weight [N]` (fp32) when the items carry them."""
    return {key: torch.stack([item[key] for item in items]).float() for key in ("margin", "weight") if key in items[0]}


def collate_features(items: list[dict]) -> dict:
    """Pad cached pairs into a stacked batch, chosen rows first then rejected (TRL layout), right padding.

    Returns `hidden [2N, T, D]` (stored dtype), `attention_mask [2N, T]` and `response_mask [2N, T]` (int64),
    plus `margin [N]` / `weight [N]` (fp32) when the items carry them.
    """
    rows, masks = _stacked_sequences(items)
    length = max(row.shape[0] for row in rows)
    hidden = rows[0].new_zeros(len(rows), length, rows[0].shape[-1])
    attention_mask = torch.zeros(len(rows), length, dtype=torch.int64)
    response_mask = torch.zeros(len(rows), length, dtype=torch.int64)
    for r, (row, mask) in enumerate(zip(rows, masks)):
        hidden[r, : row.shape[0]] = row
        attention_mask[r, : row.shape[0]] = 1
        response_mask[r, : row.shape[0]] = mask.to(torch.int64)
    return {"hidden": hidden, "attention_mask": attention_mask, "response_mask": response_mask, **_pair_columns(items)}


def collate_packed_features(items: list[dict]) -> dict:
    """Pack cached pairs into one batch without padding (docs/packing.md): the `2N` sequences one after
    another, chosen ones first then rejected (TRL layout), for a head's packed forward (`head_forward`).

    Returns `hidden [total, D]` (stored dtype), `response_mask [total]` (int64), `cu_seqlens [2N+1]` (int32),
    `max_seqlen` (int), plus `margin [N]` / `weight [N]` (fp32) when the items carry them.
    """
    rows, masks = _stacked_sequences(items)
    lengths = [row.shape[0] for row in rows]
    return {
        "hidden": torch.cat(rows),
        "response_mask": torch.cat(masks).to(torch.int64),
        "cu_seqlens": torch.tensor([0, *lengths]).cumsum(0).to(torch.int32),
        "max_seqlen": max(lengths),
        **_pair_columns(items),
    }
