"""Shared test set-up.

Without a CUDA device the Triton kernels run under Triton's CPU interpreter. `triton.jit` reads
TRITON_INTERPRET when a kernel module is imported, so the variable is set here, before any test module
imports `adajudge.kernels`. (Shared fixtures go below this block.)
"""
import os
from pathlib import Path

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(scope="session")
def tiny_backbone_path(tmp_path_factory) -> Path:
    """A tiny random LlamaForCausalLM (D=64, 2 layers) + byte-level ChatML tokenizer, written once per session."""
    from adajudge.backbones.tiny import tiny_backbone_dir

    return tiny_backbone_dir(tmp_path_factory.mktemp("tiny-backbone"), hidden_size=64, num_layers=2, seed=0)


@pytest.fixture(scope="session")
def tiny_llama_tokenizer(tiny_backbone_path):
    """The tiny backbone's tokenizer (pad `<|pad|>` != eos `<|im_end|>`, ChatML template)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_backbone_path)


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """`../shared/data` beside the repository (or $ADAJUDGE_DATA); tests using it skip when it is absent."""
    from adajudge.data.loaders import default_data_dir

    path = default_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is absent (set ADAJUDGE_DATA to its location)")
    return path
