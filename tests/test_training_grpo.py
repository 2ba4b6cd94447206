"""RLHF with TRL: `GRPOTrainer` takes an adajudge reward model (object or saved folder) or a reward function from
`adajudge.eval.reward_fn_from_model`, on CPU with a tiny random policy, and the rewards it logs are the model's."""
import pytest
import torch

pytest.importorskip("trl", reason="needs TRL (the train extra); the floor environment, like the GPU machine, has none")

from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig, GRPOTrainer
from trl.data_utils import apply_chat_template

from adajudge.eval import reward_fn_from_model
from adajudge.modeling import AdaJudgeForRewardModeling
from adajudge.modeling.spans import chat_response_header

STEPS, COMPLETIONS_PER_STEP = 2, 4


class Recorder:
    """A zero-weight reward function that keeps what GRPO scored: one `(prompts, completions)` per step."""

    __name__ = "recorder"

    def __init__(self):
        self.calls = []

    def __call__(self, prompts, completions, **kwargs):
        self.calls.append((prompts, completions))
        return [0.0] * len(prompts)


def grpo(tiny_backbone_path, tmp_path, reward):
    """Two GRPO steps of the tiny random policy with `reward`; returns the scored calls and the reward logs."""
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_path)
    prompts = [{"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}]} for i in range(4)]
    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"), max_steps=STEPS, per_device_train_batch_size=COMPLETIONS_PER_STEP,
        num_generations=2, max_completion_length=4, reward_weights=[1.0, 0.0], logging_steps=1, save_strategy="no",
        report_to=[], use_cpu=True, bf16=False, seed=0, disable_tqdm=True,
    )
    recorder = Recorder()
    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_backbone_path), reward_funcs=[reward, recorder],
                          args=args, train_dataset=Dataset.from_list(prompts), processing_class=tokenizer)
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "reward" in entry]
    name = next(key for key in logs[0] if key.startswith("rewards/") and key.endswith("/mean") and "recorder" not in key)
    assert len(recorder.calls) == len(logs) == STEPS
    return recorder.calls, [entry[name] for entry in logs]


def model_rewards(model, tokenizer, prompts, completions):
    """The model's reward of each conversation rendered as TRL renders it for a reward model."""
    rewards = []
    with torch.no_grad():
        for prompt, completion in zip(prompts, completions):
            text = apply_chat_template({"messages": prompt + completion}, tokenizer)["text"]
            inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
            rewards.append(model(**inputs).logits[0, 0].item())
    return rewards


@pytest.fixture()
def reward_model(tiny_backbone_path, tiny_llama_tokenizer):
    model = AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="adajudge", num_blocks=1)
    model.config.response_header_ids = chat_response_header(tiny_llama_tokenizer)  # as `adajudge train` saves it
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.head.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return model.eval()


@pytest.mark.parametrize("as_folder", [False, True], ids=["model", "folder"])
def test_grpo_with_an_adajudge_reward_model(tiny_backbone_path, tmp_path, reward_model, as_folder):
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_path)
    reward = reward_model
    if as_folder:  # the folder carries the tokenizer and chat template GRPO renders conversations with
        reward_model.save_pretrained(tmp_path / "rm")
        tokenizer.save_pretrained(tmp_path / "rm")
        reward = str(tmp_path / "rm")
    calls, logged = grpo(tiny_backbone_path, tmp_path, reward)
    reward_fn = reward_fn_from_model(reward_model, tokenizer, progress=False)
    for (prompts, completions), mean in zip(calls, logged):
        assert len(prompts) == COMPLETIONS_PER_STEP
        expected = model_rewards(reward_model, tokenizer, prompts, completions)
        assert len(set(expected)) > 1
        torch.testing.assert_close(mean, sum(expected) / len(expected), rtol=1e-5, atol=1e-6)
        # the model found the response itself: the rewards of the training layout (prompt and response masks)
        torch.testing.assert_close(expected, reward_fn(prompts, completions), rtol=1e-5, atol=1e-6)


def test_grpo_with_a_reward_function_from_the_model(tiny_backbone_path, tmp_path, reward_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_path)
    reward_fn = reward_fn_from_model(reward_model, tokenizer, progress=False)

    def adajudge_reward(prompts, completions, **kwargs):
        return reward_fn(prompts, completions)

    calls, logged = grpo(tiny_backbone_path, tmp_path, adajudge_reward)
    for (prompts, completions), mean in zip(calls, logged):
        expected = reward_fn(prompts, completions)
        assert len(set(expected)) > 1
        torch.testing.assert_close(mean, sum(expected) / len(expected), rtol=1e-5, atol=1e-6)
