"""Start `transformers serve` on 127.0.0.1 for a model folder: the local OpenAI-compatible server that the
server-backed judge's tests and throughput example run against (needs `pip install "transformers[serving]"`).

`transformers_server(model_dir)` is a context manager: it starts the server as a child process, offline
(`HF_HUB_OFFLINE=1`, no update check), waits until `GET /health` answers, yields a `LocalServer` and stops
the process on exit. Every wait is bounded.
"""
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

POLL_SECONDS = 0.25
STOP_SECONDS = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LocalServer:
    """A running `transformers serve`: `base_url` (`http://127.0.0.1:<port>/v1`), the model name it serves
    (the folder's path, as `transformers serve` names a preloaded model), its process and its log file."""

    base_url: str
    model: str
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after `STOP_SECONDS`) and wait for it to exit."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_SECONDS)

    def log(self) -> str:
        """What the server has printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""


@contextmanager
def transformers_server(
    model_dir,
    *,
    log_path,
    port: int | None = None,
    dtype: str = "float32",
    device: str = "cpu",
    startup_timeout: float = 180.0,
    extra_args: tuple[str, ...] = (),
) -> Iterator[LocalServer]:
    """Serve `model_dir` with `transformers serve` on 127.0.0.1 while the `with` block runs.

    Args:
        model_dir: a `save_pretrained` folder with its tokenizer (e.g. `adajudge.backbones.smollm2.smollm2_dir()`).
        log_path: file that receives the server's output.
        port: default a free one.
        dtype, device: `transformers serve --dtype/--device`.
        startup_timeout: seconds to wait for `/health`.
        extra_args: further `transformers serve` flags (e.g. `("--continuous-batching",)`).

    Raises:
        RuntimeError: the server exited or did not answer `/health` within `startup_timeout`; the message
            holds the end of its log.
    """
    port = free_port() if port is None else port
    log_path = Path(log_path)
    model = str(Path(model_dir))
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", model, "--host", "127.0.0.1",
               "--port", str(port), "--dtype", dtype, "--device", device, *extra_args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = LocalServer(f"http://127.0.0.1:{port}/v1", model, process, log_path)
    try:
        _wait_healthy(server, f"http://127.0.0.1:{port}/health", startup_timeout)
        yield server
    finally:
        server.stop()


def _wait_healthy(server: LocalServer, health_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"transformers serve exited with {server.process.returncode}:\n{server.log()[-3000:]}")
        try:
            with urllib.request.urlopen(health_url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"transformers serve did not answer {health_url} within {timeout:g} s:\n{server.log()[-3000:]}")
