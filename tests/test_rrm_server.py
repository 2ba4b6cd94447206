"""ServerJudge / OpenAIEngine against a scripted OpenAI-compatible server on 127.0.0.1 (tests/fake_openai.py):
what the requests carry, retries, failed requests as missing votes, bounded concurrency, the clear errors,
and `adajudge judge --server`. The real server (`transformers serve`) is in tests/test_rrm_server_e2e.py."""
import json
import re
import socket
import time

import pytest
from fake_openai import FakeOpenAIServer, completion

from adajudge.backbones.tiny import tiny_tokenizer
from adajudge.cli import main
from adajudge.rrm import OpenAIEngine, PairwiseJudge, ServerError, ServerJudge, best_of_n
from adajudge.rrm.judge import Generation
from adajudge.rrm.prompt import comparison_messages, render_comparison

ANSWER = re.compile(r"\[Answer of Assistant (\d)\]\n(.*?)\n\[End of the answer", re.S)


def shown_answers(body: dict) -> dict[int, str]:
    """{1: answer shown first, 2: answer shown second} of a completions or chat request."""
    text = body["prompt"] if "prompt" in body else body["messages"][-1]["content"]
    return {int(k): answer for k, answer in ANSWER.findall(text)}


def prefers_good(body: dict):
    """A server that can tell: the answer containing GOOD is better; one containing BROKEN fails (503)."""
    shown = shown_answers(body)
    if any("BROKEN" in answer for answer in shown.values()):
        return 503, {"error": {"message": "overloaded"}}
    better = 1 if "GOOD" in shown[1] else 2
    return 200, completion(f"<think>compare</think> \\boxed{{Assistant {better}}}", tokens=11, chat="messages" in body)


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


def test_greedy_requests_carry_the_rendered_prompt_and_replies_become_votes(tokenizer):
    with FakeOpenAIServer(prefers_good) as server:
        engine = OpenAIEngine(server.base_url, concurrency=1)  # one at a time: bodies arrive in prompt order
        judge = ServerJudge(engine, tokenizer, temperature=0, max_new_tokens=64, seed=5)
        judgements = judge.judge_batch([("q", "GOOD a", "bad b"), ("q", "bad c", "GOOD d")])
        bodies = server.bodies
    assert [j.verdict for j in judgements] == [1, 2]
    for judgement, body in zip(judgements, bodies):
        vote = judgement.votes[0]
        shown = ("GOOD a", "bad b") if judgement is judgements[0] else ("bad c", "GOOD d")
        shown = shown[::-1] if vote.swapped else shown
        assert body["prompt"] == render_comparison(tokenizer, "q", *shown)
        assert body["model"] == "fake-judge" and body["max_tokens"] == 64 and body["temperature"] == 0
        assert "top_p" not in body and "seed" not in body
        assert vote.num_tokens == 11 and not vote.truncated and vote.error is None


def test_sampled_requests_carry_top_p_and_seeds_drawn_from_the_judge_seed(tokenizer):
    def seeds(seed):
        with FakeOpenAIServer(prefers_good) as server:
            judge = ServerJudge(OpenAIEngine(server.base_url, concurrency=1), tokenizer, temperature=0.6, top_p=0.9,
                                num_votes=3, seed=seed)
            judge.judge_batch([("q", "GOOD", "bad")])
            assert all(body["top_p"] == 0.9 and body["temperature"] == 0.6 for body in server.bodies)
            return [body["seed"] for body in server.bodies]

    first = seeds(0)
    assert len(set(first)) == 3 and first == seeds(0) and first != seeds(1)


@pytest.mark.parametrize("failures", [(503, 503), (429,), (500, 502)])
def test_retryable_failures_are_retried_with_backoff(tokenizer, failures):
    with FakeOpenAIServer(prefers_good, failures=failures) as server:
        judge = ServerJudge(OpenAIEngine(server.base_url, max_retries=3, timeout=10), tokenizer, temperature=0)
        start = time.monotonic()
        verdict = judge("q", "GOOD", "bad")
        elapsed = time.monotonic() - start
        statuses = server.statuses
    assert verdict == 1 and statuses == [*failures, 200]
    assert 0.25 * len(failures) <= elapsed < 20  # the client backs off (0.5 s doubling, jittered down to 75 %)


def test_a_request_failing_after_its_retries_is_a_missing_vote_and_the_tournament_finishes(tokenizer):
    candidates = ["bad 0", "GOOD 1", "BROKEN 2", "bad 3", "bad 4"]
    with FakeOpenAIServer(prefers_good) as server:
        judge = ServerJudge(OpenAIEngine(server.base_url, max_retries=1, timeout=10), tokenizer, temperature=0,
                            num_votes=2)
        result = best_of_n("q", candidates, judge, "knockout", seed=0)
    assert result.num_comparisons == len(candidates) - 1
    votes = [(match, vote) for match in result.matches for vote in match.record.votes]
    failed = [(match, vote) for match, vote in votes if vote.error is not None]
    assert failed, "the BROKEN candidate played at least one match"
    for match, vote in failed:
        assert 2 in (match.first, match.second) and match.coin_flip and match.verdict is None
        assert vote.verdict is None and "503" in vote.error and server.base_url in vote.error
    for match, vote in votes:
        if vote.error is None:
            assert vote.verdict in (1, 2)
            if 1 in (match.first, match.second) and 2 not in (match.first, match.second):
                assert match.winner == 1  # the server prefers GOOD
    assert server.statuses.count(503) == 2 * len(failed)  # each failed vote: the request and one retry


def test_finish_reason_length_is_truncated_without_a_verdict(tokenizer):
    reply = completion("<think>I think \\boxed{Assistant 1}</think> \\boxed{Assistant 1}", finish_reason="length",
                       tokens=64)
    with FakeOpenAIServer(lambda body: (200, reply)) as server:
        judge = ServerJudge(OpenAIEngine(server.base_url), tokenizer, temperature=0)
        judgement = judge.judge_batch([("q", "a", "b")])[0]
    vote = judgement.votes[0]
    assert vote.truncated and vote.num_tokens == 64 and vote.error is None
    assert vote.verdict is None and judgement.verdict is None  # the official rule reads no verdict from a cut-off reply


@pytest.mark.parametrize("concurrency, expected", [(3, 3), (16, 8)])
def test_requests_in_flight_are_bounded_and_a_whole_round_goes_at_once(tokenizer, concurrency, expected):
    candidates = [f"bad {i}" for i in range(7)] + ["GOOD 7"]
    with FakeOpenAIServer(prefers_good, delay=0.5) as server:
        judge = ServerJudge(OpenAIEngine(server.base_url, concurrency=concurrency), tokenizer, temperature=0,
                            num_votes=2)
        result = best_of_n("q", candidates, judge, "knockout", seed=1)
        max_in_flight = server.max_in_flight
    assert result.winner == 7 and len(server.bodies) == 2 * 7
    assert max_in_flight == expected  # first round: 4 comparisons x 2 votes


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_chat_endpoint_sends_the_messages_and_rejoins_split_reasoning(tokenizer, field):
    def reply(body):
        return 200, completion("\\boxed{Assistant 2}", chat=True, reasoning="the second is right", tokens=9,
                               reasoning_field=field)

    with FakeOpenAIServer(reply) as server:
        judge = ServerJudge(OpenAIEngine(server.base_url, endpoint="chat"), tokenizer, temperature=0,
                            randomize_order=False)
        judgement = judge.judge_batch([("q", "a", "b")])[0]
        body = server.bodies[0]
    assert body["messages"] == comparison_messages("q", "a", "b")
    vote = judgement.votes[0]
    assert vote.text == "the second is right</think>\\boxed{Assistant 2}" and vote.verdict == 2 and vote.num_tokens == 9


def test_settings_come_from_the_environment(tokenizer, monkeypatch):
    with FakeOpenAIServer(prefers_good, models=("judge-a", "judge-b")) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("ADAJUDGE_JUDGE_MODEL", "judge-b")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        engine = OpenAIEngine()
        assert (engine.base_url, engine.model, engine.client.api_key) == (server.base_url, "judge-b", "sk-test")
        monkeypatch.delenv("ADAJUDGE_JUDGE_MODEL")
        with pytest.raises(ServerError, match=r"serves \['judge-a', 'judge-b'\]: name the judge's model"):
            OpenAIEngine()
    with FakeOpenAIServer(prefers_good) as server:
        assert OpenAIEngine(server.base_url).model == "fake-judge"  # the only served model


def test_a_wrong_model_name_is_a_clear_error(tokenizer):
    with FakeOpenAIServer(prefers_good) as server:
        with pytest.raises(ServerError) as error:
            OpenAIEngine(server.base_url, "RRM-7B")
    assert str(error.value) == (f"{server.base_url}/models: the server does not serve model 'RRM-7B'; "
                                "it serves ['fake-judge']")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_url_is_a_clear_error_within_the_timeout():
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    start = time.monotonic()
    with pytest.raises(ServerError, match=re.escape(f"{url}/models: no server answered (APIConnectionError")):
        OpenAIEngine(url, "m", timeout=2, max_retries=2)
    assert time.monotonic() - start < 3 * 2 + 4  # attempts x timeout + the backoff between them


def test_a_server_that_never_answers_times_out_within_the_bound():
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        start = time.monotonic()
        with pytest.raises(ServerError, match=r"no server answered \(APITimeoutError"):
            OpenAIEngine(url, "m", timeout=0.5, max_retries=1)
        elapsed = time.monotonic() - start
    assert 1.0 <= elapsed < 2 * 0.5 + 4


@pytest.mark.parametrize("payload, shows", [
    ("<html>not an API</html>", "<html>not an API</html>"),
    ({"unexpected": 1}, "unexpected=1"),
    ({"choices": [{"index": 0, "text": "x", "finish_reason": "stop"}]}, "usage=None"),
])
def test_a_malformed_reply_is_a_clear_error(tokenizer, payload, shows):
    with FakeOpenAIServer(lambda body: (200, payload)) as server:
        judge = ServerJudge(OpenAIEngine(server.base_url), tokenizer, temperature=0)
        with pytest.raises(ServerError) as error:
            judge("q", "a", "b")
    message = str(error.value)
    assert message.startswith(f"{server.base_url}/completions answered") and shows in message


@pytest.mark.parametrize("status", [401, 404])
def test_configuration_errors_are_raised_not_retried(tokenizer, status):
    def refuse(body):
        return status, {"error": {"message": "no such model" if status == 404 else "bad key"}}

    with FakeOpenAIServer(refuse) as server:
        judge = ServerJudge(OpenAIEngine(server.base_url, max_retries=3), tokenizer, temperature=0)
        with pytest.raises(ServerError, match=f"{re.escape(server.base_url)}/completions answered HTTP {status}"):
            judge("q", "a", "b")
        assert len(server.bodies) == 1


def test_generate_stays_the_override_point(tokenizer):
    class FixedEngineJudge(PairwiseJudge):
        def generate(self, prompts):
            return [Generation("\\boxed{Assistant 1}", 3, False) for _ in prompts]

    judge = FixedEngineJudge(None, tokenizer, randomize_order=False)
    assert judge("q", "a", "b") == 1 and judge.judge_batch([("q", "a", "b")])[0].votes[0].error is None
    with pytest.raises(TypeError, match="model"):
        PairwiseJudge(None, tokenizer)
    with pytest.raises(TypeError, match="engine: expected an OpenAIEngine"):
        ServerJudge("http://127.0.0.1:1/v1", tokenizer)


@pytest.mark.parametrize("name, value, error", [
    ("concurrency", 0, ValueError), ("timeout", 0, ValueError), ("max_retries", -1, ValueError),
    ("endpoint", "responses", ValueError), ("concurrency", 2.5, TypeError),
])
def test_engine_settings_are_checked(name, value, error):
    with pytest.raises(error, match=f"^{name}: expected"):
        OpenAIEngine("http://127.0.0.1:1/v1", "m", **{name: value})


def _items(tmp_path, rows):
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_cli_judges_on_a_server_with_the_same_report(tmp_path, capsys):
    tokenizer_dir = tmp_path / "tokenizer"
    tiny_tokenizer().save_pretrained(tokenizer_dir)
    data = _items(tmp_path, [{"question": "q1", "candidates": ["bad", "GOOD", "bad 2"]},
                             {"question": "q2", "candidates": ["GOOD", "BROKEN", "bad", "bad 3"]}])
    with FakeOpenAIServer(prefers_good) as server:
        code = main(["judge", "--data", str(data), "--server", server.base_url, "--tokenizer", str(tokenizer_dir),
                     "--concurrency", "4", "--max-retries", "0", "--temperature", "0", "--no-progress",
                     "--out", str(tmp_path / "report.json")])
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["model"] == "fake-judge" and report["server"] == server.base_url and report["concurrency"] == 4
    votes = [vote for item in report["items"] for round_ in item["bracket"] for match in round_["matches"]
             for vote in match["votes"]]
    failed = [vote for vote in votes if "error" in vote]
    assert report["summary"]["votes_failed"] == len(failed) >= 1
    assert all("503" in vote["error"] and vote["verdict"] is None for vote in failed)
    assert report["items"][0]["winner"] == 1
    assert report["summary"]["comparisons"] == 2 + 3


def test_cli_reports_an_unreachable_server_without_a_traceback(tmp_path, capsys):
    data = _items(tmp_path, [{"question": "q", "candidates": ["a", "b"]}])
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    code = main(["judge", "--data", str(data), "--server", url, "--model", "m", "--max-retries", "0",
                 "--timeout", "2"])
    err = capsys.readouterr().err
    assert code == 2 and f"adajudge judge: error: {url}/models: no server answered" in err and "Traceback" not in err
