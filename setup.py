"""Thin shim: metadata lives in pyproject.toml; this only lists the packages.

`kernels/` is installed as `adajudge.kernels` (see `package-dir` in pyproject.toml), never as a top-level
`kernels` module, which PyPI's `kernels` package (Hugging Face's kernel hub) owns.
"""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["adajudge", "adajudge.*"]) + ["adajudge.kernels"])
