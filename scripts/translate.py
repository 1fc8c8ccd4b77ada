"""Translator's aid: merge page strings into the catalogs and fill zh_CN from dict files.

    .venv/bin/python scripts/translate.py [file.py ...]

Each file defines ``ZH = {"English message id": "中文", ...}``; a plural (``ngettext``) is
keyed by its singular, and its one Chinese form carries ``%(num)s``. With no file, it only extracts
and lists what still lacks a translation. Existing translations in the .po are kept.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.pages.catalog import fill


def main(paths: list[str]) -> int:
    translated: dict[str, str] = {}
    for path in paths:
        spec = importlib.util.spec_from_file_location(Path(path).stem, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        translated.update(module.ZH)
    missing = fill("zh_CN", translated)
    for message in missing:
        print(f"untranslated: {message!r}")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
