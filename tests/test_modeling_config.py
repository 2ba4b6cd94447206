"""AdaJudgeConfig: what it stores, how it round-trips through JSON, what it rejects."""
import pytest
from transformers import LlamaConfig

from adajudge.modeling import AdaJudgeConfig


def llama_config():
    return LlamaConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=1, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=100, pad_token_id=0)


def test_round_trip(tmp_path):
    config = AdaJudgeConfig(text_config=llama_config(), head="adajudge", head_options={"num_blocks": 2},
                            lora={"r": 4}, pad_token_id=0)
    config.save_pretrained(tmp_path)
    loaded = AdaJudgeConfig.from_pretrained(tmp_path)
    assert isinstance(loaded.text_config, LlamaConfig)
    assert loaded.text_config.to_dict() == config.text_config.to_dict()
    assert (loaded.head, loaded.head_options, loaded.lora) == ("adajudge", {"num_blocks": 2}, {"r": 4})
    assert loaded.freeze_backbone is False
    assert loaded.num_labels == 1 and loaded.pad_token_id == 0


def test_backbone_views():
    config = AdaJudgeConfig(text_config=llama_config().to_dict(), head="last")
    assert config.get_text_config() is config.text_config is config.backbone_config
    assert config.hidden_size == 48 and config.head_options == {}


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"head": "max"}, ValueError, "head"),
        ({"head_options": [1]}, TypeError, "head_options"),
        ({"freeze_backbone": "yes"}, TypeError, "freeze_backbone"),
        ({"lora": "r=4"}, TypeError, "lora"),
    ],
)
def test_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        AdaJudgeConfig(text_config=llama_config(), **kwargs)
