"""AdaJudgeForRewardModeling: building from a causal-LM checkpoint, forward, save/load, freeze and LoRA."""
import json

import pytest
import torch
from transformers import AutoModel

from adajudge.data.collator import PreferenceCollator
from adajudge.modeling import AdaJudgeForRewardModeling
from adajudge.nn import AdaJudgeHead, AttentionPoolHead, LastTokenHead, MeanPoolHead

SMALL_ADAJUDGE = {"num_blocks": 1, "scorer_hidden": 16, "router_hidden": 16}
HEADS = [
    ("adajudge", SMALL_ADAJUDGE, AdaJudgeHead, 3),
    ("last", {}, LastTokenHead, 1),
    ("mean", {}, MeanPoolHead, 1),
    ("attn", {}, AttentionPoolHead, 1),
]
EXAMPLES = [
    {"prompt": "2+2?", "chosen": "4", "rejected": "5"},
    {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "It is Rome, of course."},
    {"prompt": "Say hi", "chosen": "hi", "rejected": "no"},
]


@pytest.fixture(scope="module")
def batches(tiny_llama_tokenizer):
    return {
        side: PreferenceCollator(tiny_llama_tokenizer, max_length=96, padding_side=side)(EXAMPLES)
        for side in ("right", "left")
    }


def randomize_head(model, seed=0):
    """Give every head parameter random values, so that zero-initialised parts are exercised too."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.head.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return model


@pytest.mark.parametrize("kind, options, head_cls, views", HEADS)
def test_forward_outputs(tiny_backbone_path, batches, kind, options, head_cls, views):
    model = AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head=kind, **options).eval()
    assert isinstance(model.head, head_cls)
    with torch.no_grad():
        out = model(**batches["right"])
    rows = 2 * len(EXAMPLES)
    assert out.logits.shape == (rows, 1) and out.logits.dtype == torch.float32
    assert out.view_scores.shape == (rows, views) and out.router_probs.shape == (rows, views)
    assert out.router_entropy.shape == (rows,) and out.representation.shape == (rows, 64)
    assert torch.isfinite(out.logits).all()
    torch.testing.assert_close(out.router_probs.sum(-1), torch.ones(rows))


def test_backbone_weights_are_the_checkpoint_s(tiny_backbone_path):
    model = AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="last")
    reference = AutoModel.from_pretrained(tiny_backbone_path).state_dict()
    ours = model.backbone.state_dict()
    assert set(ours) == set(reference)
    for name, tensor in reference.items():
        assert torch.equal(ours[name], tensor), name


def test_forward_is_backbone_then_head(tiny_backbone_path, batches):
    model = randomize_head(AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="adajudge", **SMALL_ADAJUDGE))
    model.eval()
    batch = batches["right"]
    backbone = AutoModel.from_pretrained(tiny_backbone_path).eval()
    with torch.no_grad():
        hidden = backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        expected = model.head(hidden, batch["attention_mask"], batch["response_mask"])
        out = model(**batch)
        from_features = model.score_hidden_states(hidden, batch["attention_mask"], batch["response_mask"])
    torch.testing.assert_close(out.logits[:, 0], expected.reward, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.router_probs, expected.router_probs, atol=1e-6, rtol=0)
    torch.testing.assert_close(from_features.logits, out.logits, atol=1e-6, rtol=0)


def test_untrained_adajudge_head_mixes_views_uniformly(tiny_backbone_path, batches):
    model = AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="adajudge", **SMALL_ADAJUDGE).eval()
    with torch.no_grad():
        out = model(**batches["right"])
    torch.testing.assert_close(out.router_probs, torch.full_like(out.router_probs, 1 / 3))


def test_padding_side_does_not_change_rewards(tiny_backbone_path, batches):
    model = randomize_head(AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="adajudge", **SMALL_ADAJUDGE))
    model.eval()
    with torch.no_grad():
        right, left = model(**batches["right"]), model(**batches["left"])
    torch.testing.assert_close(left.logits, right.logits, atol=1e-5, rtol=1e-5)


def test_a_row_alone_equals_the_row_in_a_batch(tiny_backbone_path, batches):
    model = randomize_head(AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="attn")).eval()
    batch = batches["right"]
    with torch.no_grad():
        full = model(**batch).logits
        n = int(batch["attention_mask"][1].sum())
        alone = model(**{k: v[1:2, :n] for k, v in batch.items()}).logits
    torch.testing.assert_close(alone[0], full[1], atol=1e-5, rtol=1e-5)


def test_no_response_mask_means_every_real_token(tiny_backbone_path, batches):
    model = randomize_head(AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="mean")).eval()
    batch = batches["left"]
    with torch.no_grad():
        implicit = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        explicit = model(**dict(batch, response_mask=batch["attention_mask"])).logits
        with_prompt = model(**batch).logits
    torch.testing.assert_close(implicit, explicit, atol=1e-6, rtol=0)
    assert not torch.allclose(implicit, with_prompt, atol=1e-4)


def test_trl_style_call_and_tuple_output(tiny_backbone_path, batches):
    model = AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="last").eval()
    batch = batches["right"]
    margin = torch.ones(len(EXAMPLES))
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False, margin=margin)
        as_tuple = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], return_dict=False)
        with_hidden = model(**batch, output_hidden_states=True)
    assert torch.equal(as_tuple[0], out.logits)
    assert len(with_hidden.hidden_states) == model.config.text_config.num_hidden_layers + 1
    assert model.config.num_labels == 1 and model.config.get_text_config().hidden_size == 64


@pytest.mark.parametrize("kind, options", [("adajudge", SMALL_ADAJUDGE), ("last", {}), ("attn", {})])
def test_save_load_round_trip_is_exact(tiny_backbone_path, batches, tmp_path, kind, options):
    model = randomize_head(AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head=kind, **options)).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["head"] == kind and config["head_options"] == options
    loaded = AdaJudgeForRewardModeling.from_pretrained(tmp_path).eval()
    saved_state, loaded_state = model.state_dict(), loaded.state_dict()
    assert set(saved_state) == set(loaded_state)
    assert all(torch.equal(saved_state[k], loaded_state[k]) for k in saved_state)
    # non-persistent buffers are rebuilt, not left uninitialised
    for (name, buffer), (_, loaded_buffer) in zip(model.named_buffers(), loaded.named_buffers()):
        assert torch.equal(buffer, loaded_buffer), name
    with torch.no_grad():
        before, after = model(**batches["right"]), loaded(**batches["right"])
    for field in ("logits", "view_scores", "router_probs", "router_entropy", "representation"):
        assert torch.equal(getattr(before, field), getattr(after, field)), field


def test_freeze_backbone_trains_only_the_head(tiny_backbone_path, batches, tmp_path):
    model = AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="attn", freeze_backbone=True)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"head.{name}" for name, _ in model.head.named_parameters()}
    model(**batches["right"]).logits.sum().backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.head.parameters())
    model.save_pretrained(tmp_path)
    loaded = AdaJudgeForRewardModeling.from_pretrained(tmp_path)
    assert {name for name, p in loaded.named_parameters() if p.requires_grad} == trainable


def test_lora_adapters(tiny_backbone_path, batches, tmp_path):
    from peft import LoraConfig

    plain = AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="last").eval()
    model = AdaJudgeForRewardModeling.from_backbone(
        tiny_backbone_path, head="last", lora=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    ).eval()
    assert model.config.lora == {"r": 4, "target_modules": ["q_proj", "v_proj"]}
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name or name.startswith("head.") for name in trainable)
    assert "head.score.weight" in trainable
    assert sum("lora_A" in name for name in trainable) == 2 * model.config.text_config.num_hidden_layers
    # LoRA's B matrices start at zero: the adapted model starts as the plain one
    with torch.no_grad():
        model.head.load_state_dict(plain.head.state_dict())
        torch.testing.assert_close(model(**batches["right"]).logits, plain(**batches["right"]).logits, atol=1e-6, rtol=0)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_()
        adapted = model(**batches["right"]).logits
    assert not torch.allclose(adapted, plain(**batches["right"]).logits, atol=1e-4)
    model.save_pretrained(tmp_path)
    loaded = AdaJudgeForRewardModeling.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(loaded(**batches["right"]).logits, adapted)
    assert {name for name, p in loaded.named_parameters() if p.requires_grad} == trainable


def test_lora_as_dict_with_default_targets(tiny_backbone_path):
    model = AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="mean", lora={"r": 2})
    lora_layers = {name.rsplit(".lora_A", 1)[0] for name, _ in model.named_parameters() if "lora_A" in name}
    assert lora_layers  # peft's default targets for llama were found


def test_from_backbone_errors(tiny_backbone_path):
    with pytest.raises(ValueError, match="head"):
        AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="max")
    with pytest.raises(ValueError, match="freeze_backbone/lora"):
        AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="last", freeze_backbone=True, lora={"r": 2})
    with pytest.raises(TypeError, match="lora"):
        AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="last", lora=4)
    with pytest.raises(TypeError, match="head_options"):
        AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="last", bias=torch.zeros(1))
    with pytest.raises(TypeError):
        AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="last", num_blocks=2)


def test_bf16_backbone_keeps_an_fp32_head_through_save_and_load(tiny_backbone_path, batches, tmp_path):
    model = AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="adajudge", dtype=torch.bfloat16,
                                                    **SMALL_ADAJUDGE).eval()
    assert {p.dtype for p in model.backbone.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in model.head.parameters()} == {torch.float32}
    model.save_pretrained(tmp_path)
    loaded = AdaJudgeForRewardModeling.from_pretrained(tmp_path).eval()
    assert {p.dtype for p in loaded.backbone.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in loaded.head.parameters()} == {torch.float32}
    with torch.no_grad():
        before, after = model(**batches["left"]), loaded(**batches["left"])
    assert before.logits.dtype == torch.float32 and torch.equal(before.logits, after.logits)
