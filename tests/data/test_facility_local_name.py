"""Facilities keep their Chinese name on import (OSM ``name:zh`` or a ``name_local`` column)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine, text

from data.importing.loading import import_file


def test_facility_name_zh_is_kept_as_name_local(clean_engine: Engine, tmp_path: Path) -> None:
    features = [
        {
            "type": "Feature",
            "properties": {
                "id": "n1",
                "amenity": "pharmacy",
                "name": "Farmácia",
                "name:zh": "药店",
            },
            "geometry": {"type": "Point", "coordinates": [-8.61, 41.14]},
        },
        {
            "type": "Feature",
            "properties": {"id": "n2", "amenity": "clinic", "name": "Clínica"},
            "geometry": {"type": "Point", "coordinates": [-8.62, 41.15]},
        },
    ]
    path = tmp_path / "facilities.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    report = import_file(clean_engine, "facilities", path)
    assert report.inserted == 2
    with clean_engine.connect() as conn:
        rows: dict[str, str | None] = dict(
            conn.execute(text("SELECT source_id, name_local FROM facility ORDER BY 1")).all()
        )
    assert rows == {"n1": "药店", "n2": None}
