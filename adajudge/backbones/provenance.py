"""Where a backbone came from, as people name it: its Hub id, its license, and how its weights were made.

A saved reward model names its backbone in its model card and in the card's Hub metadata (`base_model`,
`license`), never by the folder it was loaded from on this machine. `backbone_source(name_or_path)` finds
what can be known without a network call, in this order:

1. a folder with `SOURCE_FILE` (`adajudge_source.json`, written by the converters in `adajudge.backbones`,
   e.g. `smollm2_dir()`): `{"name": hub id, "license": id, "weights": how they were made}`;
2. a snapshot folder of the Hugging Face cache (`.../models--<org>--<name>/snapshots/<revision>`): the id
   `<org>/<name>`, and the license of the model card cached beside the weights;
3. a name that is not a local folder: a Hub id as given, and the license of its cached model card, if any;
4. any other local folder: no name (the card then says "a local checkpoint"), and the license of its own
   README.md front matter, if any.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

SOURCE_FILE = "adajudge_source.json"


@dataclass(frozen=True)
class BackboneSource:
    """What is known of a backbone's origin; every field may be None (unknown).

    Attributes:
        name: its Hugging Face Hub id, e.g. `"HuggingFaceTB/SmolLM2-135M-Instruct"`.
        license: the Hub license id of its weights, e.g. `"apache-2.0"`.
        weights: how the weights differ from the named model's, when they do, e.g. `"de-quantised to fp32 from
            the Q4_1 GGUF ..."`.
    """

    name: str | None = None
    license: str | None = None
    weights: str | None = None

    def to_dict(self) -> dict:
        """The known fields as a JSON-able dict (what `AdaJudgeConfig.backbone_source` stores)."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, fields: dict | None) -> BackboneSource:
        return cls(**{key: (fields or {}).get(key) for key in ("name", "license", "weights")})


def write_source(folder: str | os.PathLike, source: BackboneSource) -> None:
    """Record `source` in `folder` (`SOURCE_FILE`), for a converter that writes a backbone folder."""
    Path(folder, SOURCE_FILE).write_text(json.dumps(source.to_dict(), indent=1) + "\n", encoding="utf-8")


def backbone_source(name_or_path: str | os.PathLike | None) -> BackboneSource:
    """What is known of the backbone loaded from `name_or_path` (module docstring); no network call."""
    if not name_or_path:
        return BackboneSource()
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        return BackboneSource(name=str(name_or_path), license=_cached_card_license(str(name_or_path)))
    recorded = path / SOURCE_FILE
    if recorded.is_file():
        return BackboneSource.from_dict(json.loads(recorded.read_text(encoding="utf-8")))
    hub_id = _hub_cache_id(path)
    return BackboneSource(name=hub_id, license=_card_license(path / "README.md"))


def _hub_cache_id(path: Path) -> str | None:
    """`org/name` for a folder inside the Hub cache layout `models--org--name/snapshots/<revision>`."""
    parts = path.resolve().parts
    for index, part in enumerate(parts[:-2]):
        if part.startswith("models--") and parts[index + 1] == "snapshots":
            return part[len("models--"):].replace("--", "/", 1)
    return None


def _cached_card_license(repo_id: str) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(repo_id, "README.md")
    except ValueError:  # not a valid repo id
        return None
    return _card_license(Path(cached)) if isinstance(cached, str) else None


def _card_license(card_path: Path) -> str | None:
    """The `license` of a model card's front matter, or None (no card, no front matter, unreadable YAML)."""
    if not card_path.is_file():
        return None
    import yaml
    from huggingface_hub import ModelCard

    try:
        return ModelCard.load(card_path, ignore_metadata_errors=True).data.license
    except (ValueError, yaml.YAMLError):  # front matter that is not a model card's: no license to read
        return None
