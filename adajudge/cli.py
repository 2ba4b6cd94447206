"""The `adajudge` command: one subcommand per job, each defined in the module that does the job.

Every subcommand module exposes `add_arguments(parser)` and `run(args) -> int`; they are imported only
when their subcommand is chosen, so `adajudge --help` stays fast.

Errors a user can fix (a wrong flag value, a missing file or folder, a package to install: `ValueError`,
`TypeError`, `OSError`, `ImportError`) end with one line, `adajudge <command>: error: <message>`, and exit
status 2, as argparse's own errors do; set `ADAJUDGE_TRACEBACK=1` to see the traceback instead.
"""
import argparse
import importlib
import os
import sys

USER_ERRORS = (ValueError, TypeError, OSError, ImportError)

SUBCOMMANDS = {
    "demo": ("adajudge.training.demo", "train a last-token and an AdaJudge head on SmolLM2 features"),
    "train": ("adajudge.training.cli", "train a reward model on preference pairs"),
    "eval": ("adajudge.eval.cli", "score a reward model on RewardBench, RM-Bench or JudgeBench"),
    "judge": ("adajudge.rrm.cli", "best-of-N with a generative pairwise judge (RRM)"),
    "smollm2-path": ("adajudge.backbones.smollm2", "print the SmolLM2-135M-Instruct folder (converted once from its GGUF)"),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="adajudge", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    chosen = (argv if argv is not None else sys.argv[1:])[:1]
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text)
        if chosen == [name]:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(run=module.run)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except USER_ERRORS as error:
        if os.environ.get("ADAJUDGE_TRACEBACK"):
            raise
        message = " ".join(str(error).split())  # one line, whatever the message's own line breaks
        print(f"adajudge {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
