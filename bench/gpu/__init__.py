"""The pieces of `python -m bench.gpu_check` (see `bench/gpu_check.py`): `steps` (what each step runs and
reports), `process` (child processes under a hard time limit), `worker` (the in-process steps),
`compile_checks`, `cudagraph_checks`, `pytest_log` (a pytest plugin), `summary` (the markdown report).
"""
