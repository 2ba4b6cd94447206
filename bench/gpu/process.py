"""Child processes with a hard time limit: each runs in its own process group (its compile workers and
pytest-xdist workers too), its output appended to one log, and the whole group is killed at the limit."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

TERM_GRACE_S = 5.0
TAIL_CHARS = 4000


@dataclass
class Finished:
    returncode: int | None
    timed_out: bool
    seconds: float
    tail: str

    def as_dict(self) -> dict:
        return {"returncode": self.returncode, "timed_out": self.timed_out, "seconds": self.seconds, "output_tail": self.tail}


def _kill_group(process: subprocess.Popen) -> None:
    for sig, wait_s in ((signal.SIGTERM, TERM_GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


class Child:
    """One started command; `finish(deadline)` waits until it ends or `time.perf_counter()` passes
    `deadline`, then kills its process group."""

    def __init__(self, name: str, command: list[str], *, log: Path, env: dict, cwd: Path):
        self.name = name
        self.log = log
        self.started = time.perf_counter()
        with open(log, "a") as out:
            out.write(f"\n===== {name}: {' '.join(command)}\n")
            self.offset = out.tell()
        self.out = open(log, "a")
        self.process = subprocess.Popen(command, stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=env, cwd=cwd, start_new_session=True)

    def finish(self, deadline: float) -> Finished:
        try:
            returncode = self.process.wait(timeout=max(0.0, deadline - time.perf_counter()))
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(self.process)
            returncode, timed_out = self.process.returncode, True
        self.out.close()
        seconds = time.perf_counter() - self.started
        with open(self.log, errors="replace") as out:
            out.seek(self.offset)
            tail = out.read()[-TAIL_CHARS:]
        return Finished(returncode, timed_out, seconds, tail)


def run(name: str, command: list[str], *, limit_s: float, log: Path, env: dict, cwd: Path) -> Finished:
    """Run `command` to its end or for `limit_s` seconds, whichever comes first."""
    child = Child(name, command, log=log, env=env, cwd=cwd)
    return child.finish(child.started + limit_s)


def run_parallel(jobs: list[tuple[str, list[str]]], *, parallel: int, limit_s: float, log: Path, env: dict,
                 cwd: Path) -> dict[str, Finished | None]:
    """Run `(name, command)` jobs, at most `parallel` at once, all within `limit_s` seconds from now; a job
    not started by then maps to `None`. Jobs started together share the log (their lines interleave)."""
    deadline = time.perf_counter() + limit_s
    pending, running, done = list(jobs), [], {}
    while pending or running:
        while pending and len(running) < parallel and time.perf_counter() < deadline:
            name, command = pending.pop(0)
            running.append(Child(name, command, log=log, env=env, cwd=cwd))
        if not running:
            break
        finished = [child for child in running if child.process.poll() is not None]
        if not finished and time.perf_counter() < deadline:
            time.sleep(0.2)
            continue
        for child in list(finished or running):
            done[child.name] = child.finish(deadline if finished else time.perf_counter())
            running.remove(child)
    for name, _ in pending:
        done[name] = None
    return done
