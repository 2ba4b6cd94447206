"""Cached backbone features: hidden states of a frozen backbone computed once, kept on disk, reused by heads.

A frozen backbone gives the same hidden states every epoch, so `adajudge train --cache-features` runs it
once (batched, `torch.no_grad`) and trains the head on the stored states: the head's cost only, per epoch.

On-disk layout (a folder):

- `meta.json`: format version, `num_pairs`, `hidden_size`, `dtype`, shard file names, `fingerprint` (what the
  features were computed from: backbone, pairs, max_length), `has_margin`, `has_weight`, and the pairs
  `dropped` / `truncated` by the truncation policy.
- `shard-00000.safetensors`, ...: packed sequences, no padding stored. Sequences run chosen_0, rejected_0,
  chosen_1, rejected_1, ...; tensors `hidden [S, D]`, `response_mask [S]` (uint8), `cu_seqlens [2n+1]`
  (int64 offsets into `S`), and `margin [n]` / `weight [n]` (fp32) when the pairs carry them.

Only real tokens are stored (the rows of the attention mask), so the padding side used while computing
them does not matter.
"""
import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset

from adajudge.data.encoding import encode_pairs

FORMAT_VERSION = 1


def features_fingerprint(backbone_name: str, pairs: list[dict], max_length: int) -> str:
    """sha256 over what cached features depend on: backbone name/path, the pairs and `max_length`."""
    digest = hashlib.sha256()
    digest.update(json.dumps([str(backbone_name), int(max_length)]).encode())
    for pair in pairs:
        digest.update(json.dumps(pair, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _optional_column(pairs: list[dict], key: str) -> bool:
    present = [key in pair and pair[key] is not None for pair in pairs]
    if any(present) and not all(present):
        raise ValueError(f"pairs: `{key}` must be given for every pair or for none, got it on {sum(present)} of {len(pairs)}")
    return bool(pairs) and all(present)


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
    """Compute `backbone` hidden states for every pair and write them to `out_dir`; returns `out_dir`.

    Args:
        model: an `AdaJudgeForRewardModeling` whose backbone is frozen; its
            `backbone_hidden_states(input_ids, attention_mask).last_hidden_state [2b, T, D]` (the states its own
            forward feeds the head, positions counted over real tokens) is what gets stored. Run in eval mode.
        collator: `adajudge.data.collator.PreferenceCollator` (its tokenizer, `max_length` and truncation
            policy are the ones live training uses, so cached and live inputs agree token for token).
        pairs: `{prompt, chosen, rejected[, margin, weight]}` dicts. Pairs whose response cannot fit in
            `collator.max_length` are dropped by `encode_pairs` (with a warning); `meta.json` counts them.
        out_dir: folder to write (created; existing shards of the same names are replaced).
        batch_size: pairs per backbone call. Pairs are processed longest first to limit padding.
        shard_pairs: pairs per safetensors shard.
        dtype: stored dtype (default: the backbone's output dtype).
        fingerprint: stored in `meta.json`, compared by `load_or_none`.
    """
    from tqdm.auto import tqdm

    if not pairs:
        raise ValueError("pairs: expected at least one preference pair, got none")
    if batch_size < 1 or shard_pairs < 1:
        raise ValueError(f"batch_size, shard_pairs: expected positive ints, got {batch_size}, {shard_pairs}")
    has_margin = _optional_column(pairs, "margin")
    has_weight = _optional_column(pairs, "weight")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()

    pairs, stats = encode_pairs(collator.tokenizer, pairs, max_length=collator.max_length)
    if not pairs:
        raise ValueError(f"pairs: every pair was dropped by truncation ({stats})")

    def size(i):
        return max(len(pairs[i]["chosen_input_ids"]), len(pairs[i]["rejected_input_ids"]))

    order = sorted(range(len(pairs)), key=size, reverse=True)
    per_pair: list[tuple[torch.Tensor, ...] | None] = [None] * len(pairs)
    bar = tqdm(total=len(pairs), desc="caching backbone features", unit="pair", disable=not progress)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        batch = collator([pairs[i] for i in index])
        attention_mask = batch["attention_mask"].to(device)
        hidden = model.backbone_hidden_states(batch["input_ids"].to(device), attention_mask).last_hidden_state
        hidden = hidden.to(dtype or hidden.dtype).cpu()
        real = batch["attention_mask"].bool()
        n = len(index)
        for row, i in enumerate(index):
            chosen, rejected = row, row + n
            per_pair[i] = (
                hidden[chosen][real[chosen]],
                batch["response_mask"][chosen][real[chosen]].to(torch.uint8),
                hidden[rejected][real[rejected]],
                batch["response_mask"][rejected][real[rejected]].to(torch.uint8),
            )
        bar.update(n)
    bar.close()
    model.train(was_training)

    shards = []
    for shard_start in range(0, len(pairs), shard_pairs):
        stop = min(shard_start + shard_pairs, len(pairs))
        hidden_parts, mask_parts, lengths = [], [], []
        for i in range(shard_start, stop):
            chosen_h, chosen_m, rejected_h, rejected_m = per_pair[i]
            hidden_parts += [chosen_h, rejected_h]
            mask_parts += [chosen_m, rejected_m]
            lengths += [chosen_h.shape[0], rejected_h.shape[0]]
        tensors = {
            "hidden": torch.cat(hidden_parts).contiguous(),
            "response_mask": torch.cat(mask_parts).contiguous(),
            "cu_seqlens": torch.tensor([0, *lengths], dtype=torch.int64).cumsum(0),
        }
        if has_margin:
            tensors["margin"] = torch.tensor([float(pairs[i]["margin"]) for i in range(shard_start, stop)])
        if has_weight:
            tensors["weight"] = torch.tensor([float(pairs[i]["weight"]) for i in range(shard_start, stop)])
        name = f"shard-{len(shards):05d}.safetensors"
        save_file(tensors, str(out_dir / name))
        shards.append(name)
    meta = {
        "format": FORMAT_VERSION,
        "num_pairs": len(pairs),
        "hidden_size": int(per_pair[0][0].shape[-1]),
        "dtype": str(per_pair[0][0].dtype).removeprefix("torch."),
        "shards": shards,
        "fingerprint": fingerprint,
        "has_margin": has_margin,
        "has_weight": has_weight,
        "dropped": stats.dropped,
        "truncated": stats.truncated,
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    return out_dir


def load_or_none(out_dir, fingerprint: str) -> "FeatureDataset | None":
    """The cached features in `out_dir` when they exist and were computed from the same inputs, else None."""
    meta_path = Path(out_dir) / "meta.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT_VERSION or meta.get("fingerprint") != fingerprint:
        return None
    return FeatureDataset(out_dir)


class FeatureDataset(Dataset):
    """Pairs of cached hidden states, loaded from a folder written by `cache_features` (all shards in memory).

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
        self._shards = [load_file(str(self.path / name)) for name in self.meta["shards"]]
        self._index = [(s, j) for s, shard in enumerate(self._shards) for j in range((shard["cu_seqlens"].numel() - 1) // 2)]

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> dict:
        shard_id, j = self._index[i]
        shard = self._shards[shard_id]
        cu = shard["cu_seqlens"]
        item = {}
        for side, seq in (("chosen", 2 * j), ("rejected", 2 * j + 1)):
            start, stop = int(cu[seq]), int(cu[seq + 1])
            item[f"{side}_hidden"] = shard["hidden"][start:stop]
            item[f"{side}_response_mask"] = shard["response_mask"][start:stop]
        for key in ("margin", "weight"):
            if key in shard:
                item[key] = shard[key][j]
        return item


def collate_features(items: list[dict]) -> dict:
    """Pad cached pairs into a stacked batch, chosen rows first then rejected (TRL layout), right padding.

    Returns `hidden [2N, T, D]` (stored dtype), `attention_mask [2N, T]` and `response_mask [2N, T]` (int64),
    plus `margin [N]` / `weight [N]` (fp32) when the items carry them.
    """
    if not items:
        raise ValueError("items: expected at least one cached pair, got none")
    rows = [item["chosen_hidden"] for item in items] + [item["rejected_hidden"] for item in items]
    masks = [item["chosen_response_mask"] for item in items] + [item["rejected_response_mask"] for item in items]
    length = max(row.shape[0] for row in rows)
    hidden = rows[0].new_zeros(len(rows), length, rows[0].shape[-1])
    attention_mask = torch.zeros(len(rows), length, dtype=torch.int64)
    response_mask = torch.zeros(len(rows), length, dtype=torch.int64)
    for r, (row, mask) in enumerate(zip(rows, masks)):
        hidden[r, : row.shape[0]] = row
        attention_mask[r, : row.shape[0]] = 1
        response_mask[r, : row.shape[0]] = mask.to(torch.int64)
    batch = {"hidden": hidden, "attention_mask": attention_mask, "response_mask": response_mask}
    for key in ("margin", "weight"):
        if key in items[0]:
            batch[key] = torch.stack([item[key] for item in items]).float()
    return batch
