"""NUL characters and values too big for their column, in files: a reject naming the row and
the field, never a silent change of the value, never a traceback (issue 13 rows 6 and 16)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from data.importing.loading import import_file
from data.importing.readers import read_layer
from geo.errors import ImportRejected
from tests.conftest import ROOT

GRIDWORK = Path(sys.executable).with_name("gridwork")


def _geojson(path: Path, features: list[tuple[str, str]]) -> Path:
    """Facilities with the given source ids and names, around Porto."""
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"source_id": sid, "kind": "clinic", "name": name},
                "geometry": {"type": "Point", "coordinates": [-8.61 + i * 1e-4, 41.15]},
            }
            for i, (sid, name) in enumerate(features)
        ],
    }
    path.write_text(json.dumps(collection))  # json.dumps writes a NUL as \u0000
    return path


def test_nul_in_geojson_is_a_reject_not_a_cut_value(tmp_path: Path) -> None:
    path = _geojson(
        tmp_path / "f.geojson", [("RC-1", "fine"), ("RC-N\x00J", "x"), ("RC-3", "a\x00b")]
    )
    assert "\\u0000" in path.read_text()
    result = read_layer(path, kind="facilities")
    assert list(result.frame["source_id"]) == ["RC-1"]  # never "RC-N" nor "a"
    reasons = {(r.row, r.reason.split(":")[0]) for r in result.rejects}
    assert reasons == {(2, "source_id"), (3, "name")}
    assert all("NUL" in r.reason for r in result.rejects)


def test_nul_in_csv_is_a_reject(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_bytes(b"code,size,lon,lat\nH-1,2,-8.61,41.15\nH-2\x00X,1,-8.61,41.15\n")
    result = read_layer(path, kind="households")
    assert list(result.frame["code"]) == ["H-1"]
    assert [(r.row, r.reason.split(":")[0]) for r in result.rejects] == [(3, "code")]


def test_import_of_a_nul_or_an_overflow_names_the_row_and_writes_nothing(
    clean_engine: Engine, tmp_path: Path
) -> None:
    nul = tmp_path / "nul.csv"
    nul.write_bytes(
        b"source_id,kind,name,lon,lat\nF-1,clinic,ok,-8.61,41.15\nF-2,clinic,a\x00b,-8.61,41.15\n"
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(clean_engine, "facilities", nul)
    assert [(r.row, r.reason.split(":")[0]) for r in caught.value.rejects] == [(3, "name")]
    big = tmp_path / "big.csv"
    long_id = "F-" + "x" * 200
    big.write_text(
        "source_id,kind,name,capacity,lon,lat\n"
        f"F-1,clinic,ok,10,-8.61,41.15\n"
        f"F-2,clinic,ok,99999999999,-8.61,41.15\n"
        f"{long_id},clinic,ok,1,-8.61,41.15\n"
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(clean_engine, "facilities", big)
    assert [(r.row, r.reason.split(":")[0]) for r in caught.value.rejects] == [
        (3, "capacity"),
        (4, "source_id"),
    ]
    assert "128" in caught.value.rejects[1].reason
    with clean_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM facility")).scalar_one() == 0


def test_gridwork_import_of_a_csv_with_a_nul_says_which_row(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "households.csv"
    path.write_bytes(b"code,size,lon,lat\nH-1,2,-8.61,41.15\nH-2\x00X,1,-8.61,41.15\n")
    run = subprocess.run(
        [str(GRIDWORK), "import", "households", str(path)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert "row 3" in run.stderr and "code" in run.stderr and "NUL" in run.stderr
