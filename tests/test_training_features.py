"""Cached backbone features: stored states equal live ones, heads score them like the live model."""
import json

import pytest
import torch
from transformers import AutoTokenizer

from adajudge.data.collator import PreferenceCollator
from adajudge.data.encoding import encode_pairs
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


def _files(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if not path.name.startswith(".")}


def test_an_interrupted_extraction_resumes_from_its_shards_with_the_same_bytes(tiny, tmp_path, monkeypatch):
    from adajudge.training import features

    path, model, tokenizer = tiny
    pairs = _pairs(9)
    collator = PreferenceCollator(tokenizer, max_length=96)
    fingerprint = features_fingerprint(str(path), pairs, 96)
    options = dict(batch_size=2, shard_pairs=2, fingerprint=fingerprint, progress=False)
    cache_features(model, collator, pairs, tmp_path / "whole", **options)

    real_save, real_shard = features.save_file, features._shard_tensors
    written = []

    def killed_while_writing_the_third_shard(tensors, filename, metadata=None):
        if len(written) == 2:
            with open(filename, "wb") as handle:  # half a file, then the process dies
                handle.write(b"\0" * 100)
            raise KeyboardInterrupt
        real_save(tensors, filename, metadata=metadata)
        written.append(filename)

    monkeypatch.setattr(features, "save_file", killed_while_writing_the_third_shard)
    with pytest.raises(KeyboardInterrupt):
        cache_features(model, collator, pairs, tmp_path / "cut", **options)
    assert load_or_none(tmp_path / "cut", fingerprint) is None  # no meta.json: not reusable as a whole
    assert sorted(_files(tmp_path / "cut")) == ["shard-00000.safetensors", "shard-00001.safetensors"]

    computed = []
    monkeypatch.setattr(features, "save_file", real_save)
    monkeypatch.setattr(features, "_shard_tensors", lambda *args, **kw: computed.append(1) or real_shard(*args, **kw))
    cache_features(model, collator, pairs, tmp_path / "cut", **options)
    assert len(computed) == 3  # 5 shards, the 2 written before the interruption kept
    whole = _files(tmp_path / "whole")
    assert sorted(whole) == ["meta.json", *(f"shard-{i:05d}.safetensors" for i in range(5))]
    assert _files(tmp_path / "cut") == whole  # byte for byte
    assert len(load_or_none(tmp_path / "cut", fingerprint)) == 9

    computed.clear()  # a setting that changes the bytes (the batching) makes every stored shard stale
    cache_features(model, collator, pairs, tmp_path / "cut", **{**options, "batch_size": 3})
    assert len(computed) == 5


def test_the_dataset_reads_items_from_the_shard_files(tiny, tmp_path):
    import pickle

    path, model, tokenizer = tiny
    pairs = _pairs(5)
    cache_features(model, PreferenceCollator(tokenizer, max_length=96), pairs, tmp_path, shard_pairs=2, progress=False)
    dataset = FeatureDataset(tmp_path)
    copy = pickle.loads(pickle.dumps(dataset))  # worker processes get a copy without the open file
    for i in (4, 0, 3):
        item, again = dataset[i], copy[i]
        assert item.keys() == again.keys() and all(torch.equal(item[key], again[key]) for key in item)
        assert item["chosen_hidden"].shape[-1] == 64 and item["weight"].item() == pytest.approx(1.0 + i)


def _extraction_worker(rank, world, port, backbone, out):
    from accelerate import PartialState
    from spawned import join_group_env, leave

    join_group_env(rank, world, port)

    from adajudge.training import features

    state = PartialState(cpu=True)  # joins the process group over gloo, as cache_features does without CUDA
    model = AdaJudgeForRewardModeling.from_backbone(backbone, head="last", freeze_backbone=True).eval()
    collator = PreferenceCollator(AutoTokenizer.from_pretrained(backbone), max_length=96)
    pairs = _pairs(11)
    computed, compute = [], features._shard_tensors
    features._shard_tensors = lambda model, collator, shard, **kw: computed.append(shard[0]["prompt"]) or compute(
        model, collator, shard, **kw)
    cache_features(model, collator, pairs, out, batch_size=2, shard_pairs=2,
                   fingerprint=features_fingerprint(backbone, pairs, 96), progress=False)
    record = {"rank": state.process_index, "world": state.num_processes,
              "first_pairs": [[pair["prompt"] for pair in pairs].index(prompt) for prompt in computed]}
    with open(f"{out}-rank{rank}.json", "w") as handle:
        json.dump(record, handle)
    leave()


@pytest.mark.slow
def test_two_gloo_processes_write_the_same_features_as_one(tiny, tmp_path):
    import torch.multiprocessing as mp
    from spawned import free_port

    path = str(tiny[0])
    mp.spawn(_extraction_worker, args=(2, free_port(), path, str(tmp_path / "two")), nprocs=2, join=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers: the float sums then run in the same order
    try:
        model = AdaJudgeForRewardModeling.from_backbone(path, head="last", freeze_backbone=True).eval()
        pairs = _pairs(11)
        cache_features(model, PreferenceCollator(tiny[2], max_length=96), pairs, tmp_path / "one", batch_size=2,
                       shard_pairs=2, fingerprint=features_fingerprint(path, pairs, 96), progress=False)
    finally:
        torch.set_num_threads(threads)
    one = _files(tmp_path / "one")
    assert len(one) == 7 and json.loads(one["meta.json"])["num_pairs"] == 11  # 6 shards and meta.json
    assert _files(tmp_path / "two") == one  # byte for byte, one meta.json
    shares = [json.loads((tmp_path / f"two-rank{rank}.json").read_text()) for rank in range(2)]
    assert [(share["rank"], share["world"]) for share in shares] == [(0, 2), (1, 2)]
    assert [share["first_pairs"] for share in shares] == [[0, 4, 8], [2, 6, 10]]  # shards 0, 2, 4 and 1, 3, 5


@pytest.mark.slow
def test_extraction_memory_stays_flat_as_the_pairs_grow():
    import importlib.util
    from pathlib import Path

    script = Path(__file__).parents[1] / "examples" / "feature_cache_memory.py"
    spec = importlib.util.spec_from_file_location("feature_cache_memory", script)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    small, large = example.measure(64), example.measure(512)
    extra_features = large["features_bytes"] - small["features_bytes"]
    assert extra_features > 150 * 2**20  # 448 more pairs: ~190 MiB more states on disk
    # holding every pair's states until the end grew memory by at least the extra bytes; streaming stays flat
    assert large["growth"] - small["growth"] < 0.25 * extra_features, (small, large)


def test_packed_extraction_stores_the_padded_extraction_s_states(tiny, tmp_path):
    from adajudge.data.collator import PackedPreferenceCollator
    from adajudge.training.features import collate_packed_features, shard_key
    from adajudge.training.loop import head_forward

    path, model, tokenizer = tiny
    pairs = _pairs(6)
    padded, packed = PreferenceCollator(tokenizer, max_length=96), PackedPreferenceCollator(tokenizer, max_length=96)
    cache_features(model, padded, pairs, tmp_path / "padded", batch_size=3, progress=False)
    cache_features(model, packed, pairs, tmp_path / "packed", batch_size=3, progress=False)
    assert shard_key("f", shard_pairs=4, batch_size=3, dtype=torch.float32, collator=padded) != shard_key(
        "f", shard_pairs=4, batch_size=3, dtype=torch.float32, collator=packed)
    from_padded, from_packed = FeatureDataset(tmp_path / "padded"), FeatureDataset(tmp_path / "packed")
    encoded, _ = encode_pairs(tokenizer, pairs, max_length=96)
    assert from_packed.pair_tokens() == from_padded.pair_tokens() == [
        len(e["chosen_input_ids"]) + len(e["rejected_input_ids"]) for e in encoded]
    for i in range(6):
        for key, value in from_padded[i].items():
            torch.testing.assert_close(from_packed[i][key], value, rtol=1e-5, atol=1e-5, msg=f"pair {i} {key}")

    # the head on a packed features batch gives the padded batch's rewards
    items = [from_packed[i] for i in range(6)]
    with torch.no_grad():
        for param in model.head.parameters():
            param.add_(0.05 * torch.randn_like(param))
        batch = collate_packed_features(items)
        assert batch["hidden"].shape[0] == sum(from_packed.pair_tokens()) and batch["max_seqlen"] <= 96
        torch.testing.assert_close(head_forward(model.head, batch).reward,
                                   head_forward(model.head, collate_features(items)).reward, rtol=1e-5, atol=1e-6)
    assert torch.equal(batch["margin"], collate_features(items)["margin"])
