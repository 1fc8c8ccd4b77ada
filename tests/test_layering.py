"""The layout's arrows hold: import-linter's contracts from pyproject.toml, run in CI.

``make lint`` runs the same contracts; running them here too means CI (which runs
``make test``) refuses a change that makes ``geo`` import ``data``, a router import another
router, or two sibling modules import each other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout
