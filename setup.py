"""Thin shim: metadata lives in pyproject.toml; this only lists the packages.

`kernels/` is reached as `adajudge/kernels` (a symbolic link) and installed as `adajudge.kernels`, a namespace
package with no `__init__.py`: the folder never becomes a top-level `kernels` package, which PyPI's `kernels`
(Hugging Face's kernel hub, required by transformers) owns.
"""
from setuptools import find_namespace_packages, setup

setup(packages=find_namespace_packages(include=["adajudge", "adajudge.*"]))
