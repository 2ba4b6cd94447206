"""Cached backbone features: stored states equal live ones, heads score them like the live model."""
import json

import pytest
import torch
from transformers import AutoTokenizer

from adajudge.data.collator import PreferenceCollator
from adajudge.modeling import AdaJudgeForRewardModeling
from adajudge.training.demo_data import make_demo_pairs
from adajudge.training.features import (
    FeatureDataset,
    cache_features,
    collate_features,
    features_fingerprint,
    load_or_none,
)


@pytest.fixture(scope="module")
def tiny(tiny_backbone_path):
    path = tiny_backbone_path
    torch.manual_seed(0)
    model = AdaJudgeForRewardModeling.from_backbone(str(path), head="adajudge", freeze_backbone=True, num_blocks=1)
    return path, model.eval(), AutoTokenizer.from_pretrained(path)


def _pairs(n):
    pairs = [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in make_demo_pairs(seed=1)[:n]]
    for i, pair in enumerate(pairs):
        pair["margin"], pair["weight"] = 0.1 * i, 1.0 + i
    return pairs


def test_cached_features_equal_live_backbone_states(tiny, tmp_path):
    path, model, tokenizer = tiny
    pairs = _pairs(7)
    collator = PreferenceCollator(tokenizer, max_length=96)
    cache_features(model, collator, pairs, tmp_path, batch_size=3, shard_pairs=4, progress=False)
    features = FeatureDataset(tmp_path)
    assert len(features) == 7 and features.meta["shards"] == ["shard-00000.safetensors", "shard-00001.safetensors"]
    for i, pair in enumerate(pairs):
        live = collator([pair])  # one pair alone, right padded
        with torch.no_grad():
            states = model.backbone_hidden_states(live["input_ids"], live["attention_mask"]).last_hidden_state
        item = features[i]
        for row, side in enumerate(("chosen", "rejected")):
            real = live["attention_mask"][row].bool()
            torch.testing.assert_close(item[f"{side}_hidden"], states[row][real], rtol=1e-5, atol=1e-5)
            assert item[f"{side}_response_mask"].tolist() == live["response_mask"][row][real].tolist()
        assert item["margin"].item() == pytest.approx(0.1 * i)
        assert item["weight"].item() == pytest.approx(1.0 + i)


def test_head_on_cached_batch_equals_live_model(tiny, tmp_path):
    path, model, tokenizer = tiny
    pairs = _pairs(5)
    collator = PreferenceCollator(tokenizer, max_length=96, padding_side="left")
    cache_features(model, collator, pairs, tmp_path, batch_size=2, progress=False)
    batch = collate_features([FeatureDataset(tmp_path)[i] for i in range(5)])  # right padded
    with torch.no_grad():
        # perturb the head so that the refinement blocks and router are not the identity at init
        for param in model.head.parameters():
            param.add_(0.05 * torch.randn_like(param))
        cached = model.head(batch["hidden"], batch["attention_mask"], batch["response_mask"]).reward
        live = collator(pairs)
        reference = model(live["input_ids"], live["attention_mask"], live["response_mask"]).logits.squeeze(-1)
    torch.testing.assert_close(cached, reference, rtol=1e-4, atol=1e-4)
    assert torch.equal(batch["margin"], torch.tensor([0.1 * i for i in range(5)]))


def test_fingerprint_reuse_and_metadata(tiny, tmp_path):
    path, model, tokenizer = tiny
    pairs = _pairs(3)
    collator = PreferenceCollator(tokenizer, max_length=96)
    fingerprint = features_fingerprint(str(path), pairs, 96)
    assert load_or_none(tmp_path, fingerprint) is None
    cache_features(model, collator, pairs, tmp_path, fingerprint=fingerprint, progress=False)
    assert len(load_or_none(tmp_path, fingerprint)) == 3
    changed = [dict(pairs[0], chosen="something else"), *pairs[1:]]
    assert load_or_none(tmp_path, features_fingerprint(str(path), changed, 96)) is None
    assert load_or_none(tmp_path, features_fingerprint(str(path), pairs, 64)) is None
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["hidden_size"] == 64 and meta["dtype"] == "float32" and meta["dropped"] == 0


def test_truncation_drops_are_counted_and_bad_input_rejected(tiny, tmp_path):
    path, model, tokenizer = tiny
    pairs = _pairs(3)
    pairs[1] = dict(pairs[1], chosen="x" * 400)  # a response longer than max_length cannot be kept
    collator = PreferenceCollator(tokenizer, max_length=96)
    with pytest.warns(UserWarning):
        cache_features(model, collator, pairs, tmp_path, progress=False)
    assert FeatureDataset(tmp_path).meta["dropped"] == 1 and len(FeatureDataset(tmp_path)) == 2
    with pytest.raises(ValueError, match="margin"):
        cache_features(model, collator, [pairs[0], {k: v for k, v in pairs[2].items() if k != "margin"}], tmp_path / "x")
    with pytest.raises(ValueError, match="path"):
        FeatureDataset(tmp_path / "missing")
    with pytest.raises(ValueError, match="items"):
        collate_features([])
