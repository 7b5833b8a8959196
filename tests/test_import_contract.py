"""The engine and the CLI must never import Qt, pyqtgraph or the GUI, and inside the engine every
import points down its floors (import-linter enforces both; the contracts are in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_import_linter_contract_holds() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is not installed (it is in the test extra)"
    result = subprocess.run([exe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_engine_imports_without_qt() -> None:
    code = (
        "import sys; import studio.core.training.trainer, studio.cli.main, studio.core.decoding.greedy, studio.core.inference.runner; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph') or m.startswith('studio.gui')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_layers_contract_lists_every_core_package() -> None:
    import tomllib

    layers = next(c for c in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
                  if c["type"] == "layers")["layers"]
    listed = {m.strip() for layer in layers for m in layer.replace("|", ":").split(":")}
    core = REPO / "studio" / "core"
    present = {f"studio.core.{p.stem}" for p in core.iterdir() if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    assert present == listed, (present - listed, listed - present)
