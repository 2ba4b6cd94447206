"""What `import adajudge` costs and needs: torch only for the ops, kernels, modules and benchmarks; the
transformers-facing names load on first use; the Auto classes still load a saved folder after a bare
`import adajudge` in a fresh process."""
import importlib.metadata
import json
import pickle
import subprocess
import sys
import textwrap
import tomllib
import warnings
from pathlib import Path

import pytest
import torch

import adajudge
from adajudge.modeling import auto

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def test_ops_kernels_nn_and_bench_import_and_run_without_transformers():
    done = run_python("""
        import importlib, pkgutil, sys
        sys.modules["transformers"] = None  # unimportable, as if not installed
        import torch
        import adajudge, adajudge.fused, adajudge.kernels, adajudge.nn, adajudge.ops, adajudge.reference, bench
        kernel_modules = [info.name for info in pkgutil.iter_modules(adajudge.kernels.__path__, "adajudge.kernels.")]
        bench_modules = [info.name for info in pkgutil.walk_packages(bench.__path__, "bench.")
                         if info.name not in ("bench.__main__", "bench.test_bench_ops")]
        for name in kernel_modules + bench_modules:
            importlib.import_module(name)
        head = adajudge.nn.build_head("adajudge", 16, num_blocks=1, backend="torch")
        output = head(torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.long))
        loss = adajudge.ops.preference_loss(torch.randn(4), torch.randn(4), reduction="none", backend="torch")
        assert output.reward.shape == (2,) and loss.shape == (4,)
        try:
            adajudge.AdaJudgeConfig
        except ImportError as error:
            print("modeling:", error)
        print(len(kernel_modules), len(bench_modules), sorted(m for m in sys.modules if m.startswith("transformers")))
    """)
    assert done.returncode == 0, done.stderr[-3000:]
    modeling_line, counts_line = done.stdout.splitlines()[-2:]
    assert "transformers" in modeling_line
    kernels, bench_modules, loaded = counts_line.split(" ", 2)
    assert int(kernels) >= 6 and int(bench_modules) >= 20 and loaded == "['transformers']"


def test_import_adajudge_loads_no_model_code_and_registers_the_config():
    done = run_python("""
        import sys
        import adajudge
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING
        from adajudge.modeling.configuration import MODEL_TYPE, AdaJudgeConfig
        print(CONFIG_MAPPING[MODEL_TYPE] is AdaJudgeConfig)
        print(sorted(m for m in ("adajudge.modeling.modeling", "transformers.modeling_utils", "adajudge.ops",
                                 "adajudge.nn", "adajudge.kernels.launch") if m in sys.modules))
    """)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-2:] == ["True", "[]"]


def test_lazy_names_are_the_modeling_classes():
    from adajudge.modeling.configuration import AdaJudgeConfig
    from adajudge.modeling.modeling import AdaJudgeForRewardModeling
    from adajudge.modeling.replace_head import replace_reward_head

    assert adajudge.AdaJudgeConfig is AdaJudgeConfig and adajudge.AdaJudgeForRewardModeling is AdaJudgeForRewardModeling
    assert adajudge.replace_reward_head is replace_reward_head
    assert set(adajudge.__all__) <= set(dir(adajudge))
    with pytest.raises(AttributeError, match="no attribute 'AdaJudgeModel'"):
        adajudge.AdaJudgeModel  # noqa: B018


def test_a_bare_import_adajudge_lets_the_auto_classes_load_a_saved_model(tiny_backbone_path, tmp_path):
    from adajudge.modeling import AdaJudgeForRewardModeling

    model = AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="mean").eval()
    model.save_pretrained(tmp_path)
    input_ids = [[5, 9, 12, 7], [3, 4, 8, 2]]
    with torch.no_grad():
        expected = model(input_ids=torch.tensor(input_ids), attention_mask=torch.ones(2, 4, dtype=torch.long)).logits
    done = run_python(f"""
        import json, torch
        import adajudge
        from transformers import AutoConfig, AutoModelForSequenceClassification
        model = AutoModelForSequenceClassification.from_pretrained({str(tmp_path)!r}).eval()
        config = AutoConfig.from_pretrained({str(tmp_path)!r})
        with torch.no_grad():
            logits = model(input_ids=torch.tensor({input_ids}), attention_mask=torch.ones(2, 4, dtype=torch.long)).logits
        print(json.dumps([type(model).__name__, type(config).__name__, logits.tolist()]))
    """)
    assert done.returncode == 0, done.stderr[-3000:]
    model_class, config_class, logits = json.loads(done.stdout.splitlines()[-1])
    assert (model_class, config_class) == ("AdaJudgeForRewardModeling", "AdaJudgeConfig")
    assert torch.equal(torch.tensor(logits), expected)


def test_a_config_unpickled_in_a_fresh_process_builds_its_model_through_the_auto_class():
    from transformers import LlamaConfig

    from adajudge.modeling import AdaJudgeConfig

    backbone = LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           num_key_value_heads=1, vocab_size=32)
    pickled = pickle.dumps(AdaJudgeConfig(text_config=backbone, head="last"))
    done = run_python(f"""
        import pickle
        from transformers import AutoModelForSequenceClassification
        config = pickle.loads({pickled!r})
        print(type(AutoModelForSequenceClassification.from_config(config)).__name__)
    """)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1] == "AdaJudgeForRewardModeling"


def test_an_older_transformers_is_not_registered_and_says_why(monkeypatch):
    real_version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "4.46.0" if name == "transformers" else real_version(name))
    with pytest.warns(UserWarning, match=r"transformers 4\.46\.0 is older than 5\.17"):
        assert auto.register_with_transformers() is False
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert auto.register_with_transformers() is True


def test_the_transformers_floor_is_pyprojects_lower_bound():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"transformers>={auto.TRANSFORMERS_FLOOR}" in dependencies
