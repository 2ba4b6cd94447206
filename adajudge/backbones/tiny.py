"""A tiny random Llama and its offline byte-level tokenizer: the backbone for tests and the demo's fallback.

`tiny_backbone_dir(path)` writes a 2-layer, 64-wide random `LlamaForCausalLM` with `tiny_tokenizer()`, a
directory that `AutoModelForCausalLM.from_pretrained`, `AutoModel.from_pretrained` and
`AutoTokenizer.from_pretrained` load offline, weights in safetensors. The tokenizer uses SmolLM2's ChatML
chat template, so tests see the same prompt layout as the real backbone.
"""
from __future__ import annotations

import os
from pathlib import Path

from adajudge.backbones.smollm2 import CHATML_TEMPLATE

TINY_SPECIAL_TOKENS = ("<|pad|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>")


def tiny_tokenizer():
    """An offline byte-level BPE tokenizer (no merges: one token per byte) with a ChatML chat template.

    Ids 0-3 are `<|pad|>`, `<|endoftext|>` (BOS), `<|im_start|>`, `<|im_end|>` (EOS); ids 4-259 the
    256 byte-level symbols in sorted order (deterministic across processes). pad != eos, so tests see the
    general case. Returns a `PreTrainedTokenizerFast`.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(TINY_SPECIAL_TOKENS)}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab.setdefault(symbol, len(vocab))
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<|pad|>",
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
        padding_side="right",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def tiny_backbone_dir(
    path: str | os.PathLike,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    seed: int = 0,
) -> Path:
    """Write a tiny random `LlamaForCausalLM` and its tokenizer (`tiny_tokenizer()`) to `path`.

    Args:
        path: output directory (created; existing files of the same names are overwritten).
        hidden_size: model width D; must be a positive multiple of 16 (4 heads of size D/4, 2 KV heads).
        num_layers: decoder layers, >= 1.
        seed: torch seed for the random weights; the same arguments always give the same weights.

    Returns:
        `Path(path)`, loadable offline by `AutoModelForCausalLM`/`AutoModel`/`AutoTokenizer.from_pretrained`.
    """
    if isinstance(hidden_size, bool) or not isinstance(hidden_size, int) or hidden_size <= 0 or hidden_size % 16:
        raise ValueError(f"hidden_size: expected a positive multiple of 16, got {hidden_size!r}")
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers: expected an int >= 1, got {num_layers!r}")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
