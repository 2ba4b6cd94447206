"""Saved reward models load through transformers' Auto classes (adajudge imported) with bit-identical rewards,
replaced heads round-trip, a folder carries a model card, and without adajudge loading stops with a clear message."""
import json
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

import adajudge
from adajudge.backbones.provenance import SOURCE_FILE, BackboneSource, write_source
from adajudge.data.collator import PreferenceCollator
from adajudge.modeling import AdaJudgeConfig, AdaJudgeForRewardModeling, replace_reward_head
from adajudge.modeling.configuration import LEGACY_MODEL_TYPES, MODEL_TYPE

EXAMPLES = [
    {"prompt": "2+2?", "chosen": "4", "rejected": "5"},
    {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "It is Rome, of course."},
    {"prompt": [{"role": "user", "content": "Say hi"}], "chosen": "hi", "rejected": "no"},
]
SMALL_ADAJUDGE = {"num_blocks": 1, "scorer_hidden": 16, "router_hidden": 16}


def randomized(module, seed=0):
    """`module` with every parameter of its head drawn at random (zero-initialised parts exercised too)."""
    generator = torch.Generator().manual_seed(seed)
    head = module.head if isinstance(module, AdaJudgeForRewardModeling) else module.score
    with torch.no_grad():
        for parameter in head.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return module.eval()


def batches(tokenizer):
    return [PreferenceCollator(tokenizer, max_length=96, padding_side=side)(EXAMPLES) for side in ("right", "left")]


def rewards(model, batch, with_mask):
    keys = ("input_ids", "attention_mask", "response_mask") if with_mask else ("input_ids", "attention_mask")
    with torch.no_grad():
        return model(**{key: batch[key] for key in keys}).logits


def test_importing_adajudge_registers_the_auto_classes():
    assert adajudge.AdaJudgeConfig is AdaJudgeConfig and adajudge.AdaJudgeForRewardModeling is AdaJudgeForRewardModeling
    assert type(AutoConfig.for_model(MODEL_TYPE)) is AdaJudgeConfig
    assert AutoModelForSequenceClassification._model_mapping[AdaJudgeConfig] is AdaJudgeForRewardModeling


@pytest.mark.parametrize("kind, options", [("adajudge", SMALL_ADAJUDGE), ("mean", {})])
def test_auto_classes_load_a_saved_model_with_bit_identical_rewards(tiny_backbone_path, tiny_llama_tokenizer, tmp_path,
                                                                    kind, options):
    model = randomized(AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head=kind, **options))
    expected = [rewards(model, batch, with_mask) for batch in batches(tiny_llama_tokenizer) for with_mask in (True, False)]
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == MODEL_TYPE == "adajudge" and config["architectures"] == ["AdaJudgeForRewardModeling"]
    assert isinstance(AutoConfig.from_pretrained(tmp_path), AdaJudgeConfig)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is AdaJudgeForRewardModeling
    got = [rewards(loaded, batch, with_mask) for batch in batches(tiny_llama_tokenizer) for with_mask in (True, False)]
    assert all(map(torch.equal, got, expected))


@pytest.mark.parametrize("kind, options", [("last", {}), ("adajudge", SMALL_ADAJUDGE), ("attn", {})])
def test_replaced_heads_save_and_load_back_with_bit_identical_rewards(tiny_backbone_path, tiny_llama_tokenizer, tmp_path,
                                                                      kind, options):
    torch.manual_seed(0)
    classifier = AutoModelForSequenceClassification.from_pretrained(tiny_backbone_path, num_labels=1)
    model = replace_reward_head(classifier, head=kind, **options)
    if kind != "last":  # "last" keeps the classifier's score layer
        randomized(model)
    model.eval()
    expected = [rewards(model, batch, with_mask) for batch in batches(tiny_llama_tokenizer) for with_mask in (True, False)]
    model.save_pretrained(tmp_path)
    with safe_open(tmp_path / "model.safetensors", "pt") as weights:
        assert {key.split(".")[0] for key in weights.keys()} == {"backbone", "head"}
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["head"], config["input_convention"]) == (kind, "sequence_classification")
    for loaded in (AdaJudgeForRewardModeling.from_pretrained(tmp_path),
                   AutoModelForSequenceClassification.from_pretrained(tmp_path)):
        assert type(loaded) is AdaJudgeForRewardModeling
        loaded.eval()
        got = [rewards(loaded, batch, with_mask) for batch in batches(tiny_llama_tokenizer) for with_mask in (True, False)]
        assert all(map(torch.equal, got, expected))
    after = [rewards(model, batch, with_mask) for batch in batches(tiny_llama_tokenizer) for with_mask in (True, False)]
    assert all(map(torch.equal, after, expected))  # saving left the model as it was


def test_replaced_head_as_reward_model_shares_the_modules(tiny_backbone_path):
    model = replace_reward_head(AutoModelForSequenceClassification.from_pretrained(tiny_backbone_path, num_labels=1))
    view = model.as_reward_model()
    assert view.backbone is model.model and view.head is model.score
    assert view.config.head_options == {"bias": False} and view.config.input_convention == "sequence_classification"
    model.reward_head_options = {"backend": object()}
    with pytest.raises(TypeError, match="head_options: expected JSON-able values"):
        model.as_reward_model()
    model.model = torch.nn.Identity()  # a base model AutoModel would not rebuild from the config
    with pytest.raises(ValueError, match="model: its base model is a Identity, but AutoModel builds LlamaModel"):
        model.as_reward_model()


def front_matter(card_text: str) -> dict:
    """The Hub metadata of a model card, as huggingface_hub reads it."""
    from huggingface_hub import ModelCard

    return ModelCard(card_text).data.to_dict()


def test_model_card_says_what_the_model_is_and_how_to_load_it(tiny_backbone_path, tmp_path):
    model = AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="adajudge", freeze_backbone=True,
                                                    **SMALL_ADAJUDGE)
    model.save_pretrained(tmp_path / "plain")
    card = (tmp_path / "plain" / "README.md").read_text()
    assert front_matter(card) == {"library_name": "adajudge", "pipeline_tag": "text-classification",
                                  "tags": ["reward-model", "adajudge"]}  # no base_model, license: unknown here
    assert "# Reward model: AdaJudge head on a local `llama` checkpoint" in card
    assert "| backbone | a local checkpoint (no Hub name recorded): `llama` architecture, 90,688 parameters, D = 64, " \
           "2 layers |" in card
    assert '| head | `adajudge` (num_blocks=1, scorer_hidden=16, router_hidden=16)' in card
    assert "| adapters | none; backbone frozen |" in card
    assert "| loss | not recorded" in card and "| held-out accuracy | not recorded" in card
    assert "AutoModelForSequenceClassification.from_pretrained" in card
    assert "not on PyPI" in card and "pip install ." in card and "pip install adajudge" not in card

    model.config.training_summary = {"loss": "normbt", "loss_options": {"gamma": 1.0}, "data": ["pairs.jsonl"],
                                     "train_pairs": 1, "epochs": 1, "heldout_pairs": 10, "heldout_accuracy": 0.7}
    model.save_pretrained(tmp_path / "trained")
    card = (tmp_path / "trained" / "README.md").read_text()
    assert "| loss | `normbt` (gamma=1.0) |" in card
    assert "| data | `pairs.jsonl`; 1 training pair, 1 epoch |" in card
    assert "| held-out accuracy | 0.700 (7 of 10 held-out pairs) |" in card
    assert AdaJudgeForRewardModeling.from_pretrained(tmp_path / "trained").config.training_summary["loss"] == "normbt"


def test_model_card_names_the_backbone_its_license_and_its_data(tiny_backbone_path, tmp_path):
    """A backbone folder that records its origin (as the SmolLM2 converter does) is named as people know it,
    with its license and how its weights were made; named training data becomes the card's `datasets`."""
    import shutil

    backbone = shutil.copytree(tiny_backbone_path, tmp_path / "converted")
    write_source(backbone, BackboneSource(name="HuggingFaceTB/SmolLM2-135M-Instruct", license="apache-2.0",
                                          weights="de-quantised to fp32 from the Q4_1 GGUF `x.gguf`"))
    assert (backbone / SOURCE_FILE).is_file()
    model = AdaJudgeForRewardModeling.from_backbone(backbone, head="last")
    model.config.training_summary = {"data": ["hh-rlhf-harmless-base-test.jsonl.gz"], "datasets": ["Anthropic/hh-rlhf"],
                                     "train_pairs": 3, "epochs": 2}
    model.save_pretrained(tmp_path / "rm")
    card = (tmp_path / "rm" / "README.md").read_text()
    assert front_matter(card) == {
        "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct", "datasets": ["Anthropic/hh-rlhf"],
        "library_name": "adajudge", "license": "apache-2.0", "pipeline_tag": "text-classification",
        "tags": ["reward-model", "adajudge"]}
    assert "# Reward model: last-token head on SmolLM2-135M-Instruct" in card
    assert ("| backbone | SmolLM2-135M-Instruct (`HuggingFaceTB/SmolLM2-135M-Instruct`): `llama` architecture, "
            "90,688 parameters, D = 64, 2 layers; weights de-quantised to fp32 from the Q4_1 GGUF `x.gguf` |") in card
    assert "| data | `hh-rlhf-harmless-base-test.jsonl.gz` (Anthropic/hh-rlhf); 3 training pairs, 2 epochs |" in card


def test_a_hub_cache_snapshot_is_named_by_its_hub_id(tiny_backbone_path, tmp_path):
    import shutil

    snapshot = shutil.copytree(tiny_backbone_path, tmp_path / "hub" / "models--org--tiny-llama" / "snapshots" / "abc123")
    (snapshot / "README.md").write_text("---\nlicense: mit\n---\n# a tiny model\n")
    model = AdaJudgeForRewardModeling.from_backbone(snapshot, head="last")
    assert model.config.backbone_source == {"name": "org/tiny-llama", "license": "mit"}


def folder_texts(folder):
    """Every text file a saved folder holds (config, card, tokenizer files), by name."""
    return {path.name: path.read_text(errors="replace") for path in folder.iterdir()
            if path.suffix in (".json", ".md", ".jinja", ".txt", ".model")}


@pytest.mark.parametrize("how", ["from_backbone", "replace_reward_head"])
def test_a_saved_folder_holds_no_local_path(tiny_backbone_path, tmp_path, how):
    if how == "from_backbone":
        model = AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="last")
    else:
        model = replace_reward_head(AutoModelForSequenceClassification.from_pretrained(tiny_backbone_path, num_labels=1))
    model.save_pretrained(tmp_path / "rm")
    AutoTokenizer.from_pretrained(tiny_backbone_path).save_pretrained(tmp_path / "rm")
    texts = folder_texts(tmp_path / "rm")
    assert {"config.json", "README.md", "tokenizer_config.json"} <= set(texts)
    for name, text in texts.items():
        for local in (str(tiny_backbone_path), str(tmp_path), str(tiny_backbone_path.parent)):
            assert local not in text, f"{name} holds the local path {local}"
    assert "_name_or_path" not in json.loads(texts["config.json"])["text_config"]


def test_a_folder_saved_with_the_old_model_type_still_loads_and_saves_under_the_new_one(tiny_backbone_path, tmp_path):
    model = randomized(AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="mean"))
    model.save_pretrained(tmp_path / "old")
    config_path = tmp_path / "old" / "config.json"
    config = json.loads(config_path.read_text())
    config["model_type"] = LEGACY_MODEL_TYPES[0]  # as adajudge wrote it before it became a plain identifier
    config_path.write_text(json.dumps(config))
    batch = batches(AutoTokenizer.from_pretrained(tiny_backbone_path))[0]
    expected = rewards(model, batch, True)
    for loaded in (AutoModelForSequenceClassification.from_pretrained(tmp_path / "old"),
                   AdaJudgeForRewardModeling.from_pretrained(tmp_path / "old")):
        assert type(loaded) is AdaJudgeForRewardModeling
        assert torch.equal(rewards(loaded.eval(), batch, True), expected)
    loaded.save_pretrained(tmp_path / "new")
    assert json.loads((tmp_path / "new" / "config.json").read_text())["model_type"] == MODEL_TYPE


def test_loading_a_training_output_folder_points_at_its_model_folder(tiny_backbone_path, tmp_path):
    AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="last").save_pretrained(tmp_path / "run" / "model")
    with pytest.raises(OSError, match=r"no config.json there; the model is in .*run/model \(`adajudge train` saves it"):
        AdaJudgeForRewardModeling.from_pretrained(tmp_path / "run")


WITHOUT_ADAJUDGE = """
import json, sys
sys.modules["adajudge"] = None  # `import adajudge` now fails: a machine without adajudge
from transformers import AutoConfig, AutoModelForSequenceClassification, pipeline
errors = {}
for name, load in [("AutoConfig", AutoConfig.from_pretrained),
                   ("AutoModelForSequenceClassification", AutoModelForSequenceClassification.from_pretrained),
                   ("pipeline", lambda path: pipeline("text-classification", model=path))]:
    try:
        load(sys.argv[1])
        errors[name] = None
    except Exception as error:
        errors[name] = f"{type(error).__name__}: {error}"
print(json.dumps(errors))
"""


def test_without_adajudge_loading_stops_at_the_model_type_and_the_card_says_what_to_install(tiny_backbone_path,
                                                                                           tmp_path):
    AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="last").save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_backbone_path).save_pretrained(tmp_path)
    done = subprocess.run([sys.executable, "-c", WITHOUT_ADAJUDGE, str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    errors = json.loads(done.stdout.splitlines()[-1])
    for name, error in errors.items():
        assert error is not None, f"{name} loaded the folder without adajudge"
        assert error.startswith("ValueError: The checkpoint you are trying to load has model type `adajudge`"), \
            (name, error)
    assert "not on PyPI: clone its repository and run `pip install .`" in (tmp_path / "README.md").read_text()
