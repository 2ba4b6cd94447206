"""Peak memory of `adajudge train --cache-features`'s extraction as the number of pairs grows.

    python examples/feature_cache_memory.py --pairs 64 512 2048 --shard-pairs 32 --hidden-size 256

Each size runs in a fresh process: a random Llama backbone (`adajudge.backbones.tiny`, `--hidden-size` wide,
2 layers) caches the features of that many synthetic pairs (about 150 tokens per answer) with
`adajudge.training.features.cache_features`. The process reports its resident memory just before the
extraction and its peak (`ru_maxrss`) after it, and the bytes written. Streaming extraction keeps one shard of
states in memory, so the growth stays flat while the features on disk grow with the pairs.
"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path


def synthetic_pairs(count: int) -> list[dict]:
    """`count` preference pairs of fixed shape: a ~40-byte prompt and ~150-byte answers (one token per byte)."""
    pairs = []
    for i in range(count):
        prompt = f"Question {i:06d}: which answer is the better one?"
        chosen = f"Answer {i:06d}: " + "a careful and correct explanation, " * 4
        rejected = f"Answer {i:06d}: " + "a careless and wrong explanation, " * 4
        pairs.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return pairs


def _resident_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize()


def measure_here(num_pairs: int, *, shard_pairs: int, hidden_size: int, batch_size: int, folder: Path) -> dict:
    """Extract `num_pairs` synthetic pairs' features into `folder` in this process and report its memory."""
    import torch
    from transformers import AutoTokenizer

    from adajudge.backbones.tiny import tiny_backbone_dir
    from adajudge.data.collator import PreferenceCollator
    from adajudge.modeling import AdaJudgeForRewardModeling
    from adajudge.training.features import cache_features

    torch.set_num_threads(1)
    backbone = tiny_backbone_dir(folder / "backbone", hidden_size=hidden_size, num_layers=2)
    model = AdaJudgeForRewardModeling.from_backbone(str(backbone), head="last", freeze_backbone=True).eval()
    collator = PreferenceCollator(AutoTokenizer.from_pretrained(backbone), max_length=256)
    pairs = synthetic_pairs(num_pairs)
    before = _resident_bytes()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    cache_features(model, collator, pairs, folder / "features", batch_size=batch_size, shard_pairs=shard_pairs,
                   progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    written = sum(path.stat().st_size for path in (folder / "features").glob("shard-*.safetensors"))
    return {"pairs": num_pairs, "features_bytes": written, "resident_before": before, "peak_before": peak_before,
            "peak_after": peak, "growth": peak - before}


def measure(num_pairs: int, *, shard_pairs: int = 32, hidden_size: int = 256, batch_size: int = 8) -> dict:
    """`measure_here` in a fresh Python process (peak memory is per process); returns its report."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, __file__, "--child", "--pairs", str(num_pairs), "--shard-pairs", str(shard_pairs),
                   "--hidden-size", str(hidden_size), "--batch-size", str(batch_size), "--folder", folder]
        answer = subprocess.run(command, capture_output=True, text=True, timeout=900, check=True)
    return json.loads(answer.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[64, 512, 2048])
    parser.add_argument("--shard-pairs", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    settings = {"shard_pairs": args.shard_pairs, "hidden_size": args.hidden_size, "batch_size": args.batch_size}
    if args.child:
        print(json.dumps(measure_here(args.pairs[0], folder=args.folder, **settings)))
        return
    mib = 2**20
    print(f"shard_pairs={args.shard_pairs} hidden_size={args.hidden_size} batch_size={args.batch_size}")
    print(f"{'pairs':>7} {'features MiB':>13} {'RSS before MiB':>15} {'peak MiB':>9} {'growth MiB':>11}")
    for count in args.pairs:
        report = measure(count, **settings)
        print(f"{count:>7} {report['features_bytes'] / mib:>13.1f} {report['resident_before'] / mib:>15.1f} "
              f"{report['peak_after'] / mib:>9.1f} {report['growth'] / mib:>11.1f}")


if __name__ == "__main__":
    main()
