"""Preference data: loaders (files, datasets, hh-rlhf), tokenisation with a truncation policy, collation.

Every pair takes the form `{"prompt", "chosen", "rejected"[, "margin", "weight"]}`; a batch stacks chosen
rows first and rejected rows second (the TRL layout) with `attention_mask` and `response_mask`, or packs the
same sequences into rows without padding (`PackedPreferenceCollator`, docs/packing.md).
"""
from adajudge.data.collator import PackedPreferenceCollator, PreferenceCollator, pad_encodings
from adajudge.data.encoding import (
    ResponseTooLongError,
    TruncationStats,
    encode_pair,
    encode_pairs,
    encode_prompt_response,
    fit_to_length,
    tokenize_prompt_response,
)
from adajudge.data.loaders import (
    default_data_dir,
    load_hh_rlhf,
    load_preferences,
    normalize_example,
    parse_hh_turns,
    split_hh_pair,
)
from adajudge.data.packing import is_packed, pack_encodings, pack_rows, token_counts
from adajudge.data.sampler import TokenBudgetBatchSampler, token_budget_batches

__all__ = [
    "PackedPreferenceCollator",
    "PreferenceCollator",
    "ResponseTooLongError",
    "TokenBudgetBatchSampler",
    "TruncationStats",
    "default_data_dir",
    "encode_pair",
    "encode_pairs",
    "encode_prompt_response",
    "fit_to_length",
    "is_packed",
    "load_hh_rlhf",
    "load_preferences",
    "normalize_example",
    "pack_encodings",
    "pack_rows",
    "pad_encodings",
    "parse_hh_turns",
    "split_hh_pair",
    "token_budget_batches",
    "token_counts",
    "tokenize_prompt_response",
]
