"""Every facility kind of the vendored samples is named in the page's language, on every
page that names one (the locate page's nearest places said "townhall", "library" and
"kindergarten" in English on Chinese pages: it kept a shorter list of its own)."""

from __future__ import annotations

import re

import pyogrio
import pytest

from api.pages.facility_kinds import kind_label, kind_name
from api.pages.frame import PageContext
from tests.conftest import SAMPLES

CJK = re.compile(r"[\u4e00-\u9fff]")


def _sample_kinds() -> set[str]:
    porto = pyogrio.read_dataframe(
        SAMPLES / "porto" / "porto.gpkg", layer="facilities", read_geometry=False
    )
    synthetic = pyogrio.read_dataframe(
        SAMPLES / "synthetic-district" / "synthetic-district.gpkg",
        layer="facilities",
        read_geometry=False,
    )
    return set(porto["amenity"].dropna()) | set(synthetic["kind"].dropna())


@pytest.mark.parametrize("kind", sorted(_sample_kinds()))
def test_each_sample_facility_kind_has_chinese_words(kind: str) -> None:
    zh = PageContext("zh_CN", "Asia/Shanghai", None, "/")
    en = PageContext("en", "Asia/Shanghai", None, "/")
    assert CJK.search(kind_name(zh, kind)), kind
    assert kind_name(en, kind) != kind and not CJK.search(kind_name(en, kind))
    assert kind_label(zh, kind).endswith(f"({kind})")
