"""transformers' `text-classification` pipeline scores chat-formatted pairs with a saved adajudge reward model."""
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

from adajudge.eval import reward_fn_from_model
from adajudge.modeling import AdaJudgeForRewardModeling, replace_reward_head
from adajudge.modeling.spans import chat_response_header

PAIRS = [
    ([{"role": "user", "content": "What is 2 + 2?"}], "4", "5"),
    ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}], "Paris.",
     "It is Rome, of course."),
]


def conversations():
    """The chosen and the rejected conversation of every pair, in that order."""
    return [prompt + [{"role": "assistant", "content": answer}] for prompt, *answers in PAIRS for answer in answers]


def model_rewards(model, tokenizer, texts):
    """`model`'s reward of each text alone, tokenised as the pipeline does."""
    with torch.no_grad():
        return [model(**tokenizer(text, return_tensors="pt")).logits[0, 0].item() for text in texts]


def randomized_head(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.head.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return model.eval()


@pytest.mark.parametrize("kind, options", [("adajudge", {"num_blocks": 1}), ("last", {})])
def test_pipeline_scores_chat_formatted_pairs_from_a_saved_folder(tiny_backbone_path, tmp_path, kind, options):
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_path)
    model = randomized_head(AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head=kind, **options))
    model.config.response_header_ids = chat_response_header(tokenizer)  # as `adajudge train` saves it
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)  # the pipeline loads the folder's tokenizer and chat template

    scorer = pipeline("text-classification", model=str(tmp_path), function_to_apply="none")
    texts = [tokenizer.apply_chat_template(conversation, tokenize=False) for conversation in conversations()]
    scores = [result["score"] for result in scorer(texts)]
    assert scores == model_rewards(model, tokenizer, texts)
    assert len(set(scores)) == len(scores)  # a random head tells every text apart
    # the same rewards as the training layout (prompt and response masks), which reward_fn_from_model passes
    reward_fn = reward_fn_from_model(model, tokenizer, progress=False)
    prompts = [prompt for prompt, *answers in PAIRS for _ in answers]
    responses = [answer for _, *answers in PAIRS for answer in answers]
    torch.testing.assert_close(scores, reward_fn(prompts, responses), rtol=1e-5, atol=1e-6)


def test_pipeline_takes_model_objects_and_replaced_heads(tiny_backbone_path, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_path)
    torch.manual_seed(0)
    replaced = replace_reward_head(AutoModelForSequenceClassification.from_pretrained(tiny_backbone_path, num_labels=1),
                                   head="mean").eval()
    texts = [tokenizer.apply_chat_template(conversation, tokenize=False) for conversation in conversations()]
    expected = model_rewards(replaced, tokenizer, texts)
    from_object = pipeline("text-classification", model=replaced, tokenizer=tokenizer, function_to_apply="none")
    assert [result["score"] for result in from_object(texts)] == expected
    replaced.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    from_folder = pipeline("text-classification", model=str(tmp_path), function_to_apply="none")
    assert [result["score"] for result in from_folder(texts)] == expected


def pipeline_errors(model, tokenizer) -> list[str]:
    """The error lines transformers' pipeline module logs while building a text-classification pipeline."""
    import logging

    from transformers.utils import logging as transformers_logging

    messages = []
    handler = logging.Handler(level=logging.ERROR)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = transformers_logging.get_logger("transformers.pipelines.base")
    logger.addHandler(handler)
    try:
        pipeline("text-classification", model=model, tokenizer=tokenizer, function_to_apply="none")
    finally:
        logger.removeHandler(handler)
    return messages


def test_a_pipeline_accepts_a_replaced_head_without_listing_every_supported_class(tiny_backbone_path):
    """transformers checks a pipeline's model by class name; the replaced model keeps its class's name (in our
    module), so no 'is not supported ... Supported models are [~150 names]' error is logged."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_path)
    classifier = AutoModelForSequenceClassification.from_pretrained(tiny_backbone_path, num_labels=1)
    replaced = replace_reward_head(classifier, head="mean")
    assert type(replaced).__name__ == "LlamaForSequenceClassification"
    assert type(replaced).__module__ == "adajudge.modeling.replace_head"
    assert pipeline_errors(replaced, tokenizer) == []
    # the check does run: a class under another name is reported
    renamed = type("RenamedClassifier", (type(replaced),), {})
    replaced.__class__ = renamed
    [error] = pipeline_errors(replaced, tokenizer)
    assert error.startswith("The model 'RenamedClassifier' is not supported for text-classification")
