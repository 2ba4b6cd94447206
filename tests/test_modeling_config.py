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


def test_text_config_from_none_a_dict_or_a_config():
    """The same on every supported transformers (5.17 has no `SubConfigSpec`): None and a dict without a model type
    give Llama, a dict's `model_type` picks its config class, anything else is refused naming the argument."""
    from transformers import Qwen2Config

    assert type(AdaJudgeConfig().text_config) is LlamaConfig
    assert AdaJudgeConfig(text_config={"hidden_size": 32}).text_config.hidden_size == 32
    qwen = AdaJudgeConfig(text_config={"model_type": "qwen2", "hidden_size": 32}).text_config
    assert type(qwen) is Qwen2Config and qwen.hidden_size == 32
    with pytest.raises(TypeError, match="text_config: expected a PretrainedConfig, a dict or None, got str"):
        AdaJudgeConfig(text_config="llama")
