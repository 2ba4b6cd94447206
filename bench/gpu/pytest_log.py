"""A pytest plugin that appends one JSON line per test outcome to a file as the run goes, so a run killed
at its time limit still tells what passed and what failed.

    python -m pytest tests/test_ops_router_mix.py -p bench.gpu.pytest_log --gpu-check-log run.jsonl

Lines: `{"event": "collected", "count": N}`, then one `{"event": "report", "nodeid", "when", "outcome",
"duration", "message"}` per test call and per setup or teardown that did not pass, and
`{"event": "finished", "exitstatus"}` at the end. Under pytest-xdist only the controller writes (the
workers forward their reports to it).
"""
from __future__ import annotations

import json

import pytest

MESSAGE_CHARS = 2000


def pytest_addoption(parser):
    parser.addoption("--gpu-check-log", default=None, help="append one JSON line per test outcome to this file")


def pytest_configure(config):
    path = config.getoption("--gpu-check-log")
    if path is not None and not hasattr(config, "workerinput"):  # not in an xdist worker
        config.pluginmanager.register(OutcomeLog(path), "gpu-check-outcome-log")


class OutcomeLog:
    def __init__(self, path: str):
        self.path = path

    def write(self, item: dict) -> None:
        with open(self.path, "a") as log:
            log.write(json.dumps(item) + "\n")

    def pytest_collection_finish(self, session):
        if session.items:
            self.write({"event": "collected", "count": len(session.items)})

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        self.write({"event": "collected", "count": len(ids)})

    def pytest_runtest_logreport(self, report):
        if report.when != "call" and report.outcome == "passed":
            return
        message = None if report.outcome == "passed" else (report.longreprtext or "")[-MESSAGE_CHARS:]
        self.write({"event": "report", "nodeid": report.nodeid, "when": report.when, "outcome": report.outcome,
                    "duration": report.duration, "message": message})

    def pytest_sessionfinish(self, session, exitstatus):
        self.write({"event": "finished", "exitstatus": int(exitstatus)})
