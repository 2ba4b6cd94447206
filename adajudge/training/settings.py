"""Settings of `adajudge train`: defaults, a JSON/YAML config file, and flags over both.

Resolution order for every setting: the flag when given, else the config file's value, else the default.
Config keys are the flag names with `_` for `-` (`batch_size`, `output_dir`, ...).
"""
import json
from pathlib import Path

DEFAULTS = {
    "data": None,
    "eval_data": None,
    "heldout": 0.1,
    "max_pairs": None,
    "backbone": "smollm2",
    "head": "adajudge",
    "head_options": {},
    "loss": "adajudge",
    "loss_options": {},
    "cache_features": False,
    "packing": True,
    "fsdp": False,
    "features_dir": None,
    "feature_batch_size": 8,
    "max_length": 512,
    "epochs": 3,
    "lr": None,
    "batch_size": 16,
    "batch_tokens": None,
    "eval_batch_size": 64,
    "weight_decay": 0.0,
    "warmup_ratio": 0.1,
    "max_grad_norm": 1.0,
    "seed": 0,
    "save_every": 0,
    "stop_after": None,
    "output_dir": None,
    "resume": False,
    "progress": True,
}
# Learning rate when none is given: a head alone (cached features) takes a much larger one than a backbone.
DEFAULT_LR = {"cached": 1e-3, "full": 2e-5}


def load_config_file(path) -> dict:
    """Read a JSON (`.json`) or YAML (`.yaml`/`.yml`) config into a dict, checking its keys."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config: expected an existing JSON or YAML file, got {str(path)!r}")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ModuleNotFoundError as error:
            raise ModuleNotFoundError("config: reading YAML needs PyYAML (`pip install pyyaml`), or use JSON") from error
        config = yaml.safe_load(text) or {}
    elif path.suffix == ".json":
        config = json.loads(text)
    else:
        raise ValueError(f"config: expected a .json, .yaml or .yml file, got {str(path)!r}")
    if not isinstance(config, dict):
        raise ValueError(f"config: expected a mapping of settings, got {type(config).__name__}")
    config = {key.replace("-", "_"): value for key, value in config.items()}
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"config: unknown settings {unknown}; known: {sorted(DEFAULTS)}")
    return config


def _as_options(name: str, value) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"{name}: expected a JSON object, got {value!r} ({error})") from error
    if not isinstance(value, dict):
        raise ValueError(f"{name}: expected a JSON object of keyword options, got {value!r}")
    return value


def resolve(args) -> dict:
    """Merge defaults, the config file named by `args.config` and the flags that were given (not None)."""
    settings = dict(DEFAULTS)
    if getattr(args, "config", None):
        settings.update(load_config_file(args.config))
    for key in DEFAULTS:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    for key in ("data", "eval_data"):
        if isinstance(settings[key], str):
            settings[key] = [settings[key]]
    if not settings["data"]:
        raise ValueError("data: expected at least one preference file (--data PATH or `data` in the config)")
    if not settings["output_dir"]:
        raise ValueError("output_dir: expected a folder for checkpoints, logs and the model (--output-dir)")
    if not 0 <= float(settings["heldout"]) < 1:
        raise ValueError(f"heldout: expected a fraction in [0, 1), got {settings['heldout']!r}")
    settings["head_options"] = _as_options("head_options", settings["head_options"])
    settings["loss_options"] = _as_options("loss_options", settings["loss_options"])
    if settings["fsdp"] and settings["cache_features"]:
        raise ValueError("fsdp: expected training of the whole model (FSDP shards the backbone being trained), got "
                         "--cache-features, which trains the head alone on a frozen backbone's features; use DDP there")
    if settings["lr"] is None:
        settings["lr"] = DEFAULT_LR["cached" if settings["cache_features"] else "full"]
    return settings
