"""adajudge's benchmark harness: `python -m bench` (see `bench/cli.py`), `pytest bench/ --benchmark-only`.

One module per job: `sweeps` (sizes), `cases` (inputs and the eager / compile / adajudge
implementations), `passes` (forward / backward / full), `timing`, `memory`, `bytes_model`, `bandwidth`,
`static_report` (Triton compile check), `environment`, `runner`, `report` (terminal, JSON, markdown),
`plots`.
"""
