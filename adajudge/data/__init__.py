"""Preference data: loaders (files, datasets, hh-rlhf), tokenisation with a truncation policy, collation.

Every pair takes the form `{"prompt", "chosen", "rejected"[, "margin", "weight"]}`; a batch stacks chosen
rows first and rejected rows second (the TRL layout) with `attention_mask` and `response_mask`.
"""
from adajudge.data.collator import PreferenceCollator, pad_encodings
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

__all__ = [
    "PreferenceCollator",
    "ResponseTooLongError",
    "TruncationStats",
    "default_data_dir",
    "encode_pair",
    "encode_pairs",
    "encode_prompt_response",
    "fit_to_length",
    "load_hh_rlhf",
    "load_preferences",
    "normalize_example",
    "pad_encodings",
    "parse_hh_turns",
    "split_hh_pair",
    "tokenize_prompt_response",
]
