"""Backbones the library ships with, one module each.

- `adajudge.backbones.smollm2`: SmolLM2-135M-Instruct converted once from its GGUF into the adajudge cache
  (`smollm2_dir`, `cache_root`).
- `adajudge.backbones.tiny`: a tiny random Llama and its offline byte-level tokenizer (`tiny_backbone_dir`,
  `tiny_tokenizer`).
- `adajudge.backbones.provenance`: where a backbone came from (Hub id, license, how its weights were made),
  for the model cards of reward models built on it (`backbone_source`, `BackboneSource`).
"""
