"""Backbones the library ships with, one module each.

- `adajudge.backbones.smollm2`: SmolLM2-135M-Instruct converted once from its GGUF into the adajudge cache
  (`smollm2_dir`, `cache_root`).
- `adajudge.backbones.tiny`: a tiny random Llama and its offline byte-level tokenizer (`tiny_backbone_dir`,
  `tiny_tokenizer`).
"""
