"""The repository's `kernels/` folder is `adajudge.kernels`, never a top-level `kernels`.

PyPI's `kernels` (Hugging Face's kernel hub, a requirement of transformers >= 5.25) owns that name, and
`python -m ...`, `python -c` and pytest put the repository root first on `sys.path`. The folder has no
`__init__.py`, so from the root it is at most an empty namespace portion, which any installed regular
package named `kernels` outranks, and which transformers reads as "not installed"; each of its modules
refuses to run under a name other than `adajudge.kernels.<module>`.
"""
import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KERNEL_MODULES = sorted(path.stem for path in (ROOT / "kernels").glob("*.py"))


def run_from_root(code: str) -> subprocess.CompletedProcess:
    """`python -c code` with the working directory at the repository root ('' first on sys.path)."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def pypi_kernels_installed() -> bool:
    try:
        importlib.metadata.distribution("kernels")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_the_folder_has_no_init_so_it_cannot_shadow_a_regular_package():
    assert not (ROOT / "kernels" / "__init__.py").exists()
    assert KERNEL_MODULES, "no kernel modules found"


def test_import_kernels_from_the_root_gives_pypis_package_or_an_empty_namespace():
    result = run_from_root("import kernels; print(kernels.__file__); print(sorted(getattr(kernels, '__path__', [])))")
    assert result.returncode == 0, result.stderr
    file_line, path_line = result.stdout.splitlines()
    if pypi_kernels_installed():
        installed = importlib.metadata.distribution("kernels").locate_file("kernels/__init__.py")
        assert Path(file_line).resolve() == Path(installed).resolve()
        assert str(ROOT) not in path_line
    else:
        # A PEP 420 namespace portion: no code of ours ran; transformers' probe reads such a package as absent.
        assert file_line == "None"


@pytest.mark.parametrize("module", KERNEL_MODULES)
def test_no_kernel_module_runs_under_a_top_level_name(module):
    spec = importlib.util.spec_from_file_location(f"kernels.{module}", ROOT / "kernels" / f"{module}.py")
    loaded = importlib.util.module_from_spec(spec)
    # It stops at its guard, or at its relative import of a guarded sibling (which, under the name
    # `kernels.<sibling>`, is either PyPI's package lacking it or the guard itself).
    with pytest.raises(ImportError, match=r"adajudge\.kernels|No module named 'kernels\.(launch|pool_forward|aot)'"):
        spec.loader.exec_module(loaded)


@pytest.mark.parametrize("module", KERNEL_MODULES)
def test_import_of_a_kernel_submodule_from_the_root_fails(module):
    result = run_from_root(f"import kernels.{module}")
    assert result.returncode != 0
    assert "ImportError" in result.stderr or "ModuleNotFoundError" in result.stderr, result.stderr


def test_adajudge_kernels_is_the_folder():
    import adajudge.kernels.launch as launch

    assert Path(launch.__file__).resolve() == (ROOT / "kernels" / "launch.py").resolve()
