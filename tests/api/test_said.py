"""The domain's refusals in the page's language (issue 15): each sentence with values has a
code (``geo.errors.SENTENCES``) that the pages mark again for the catalog, each has Chinese
naming the same values; the error's English (what the API answers) is unchanged."""

from __future__ import annotations

from api.pages.frame import PageContext
from api.pages.said import PLAIN, SENTENCES, said, said_in_full
from geo.errors import SENTENCES as DOMAIN
from geo.errors import Conflict, InvalidInput, NotFound
from tests.catalog import without_chinese

ZH = PageContext(locale="zh_CN", timezone="Asia/Shanghai", principal=None, path="/")
EN = PageContext(locale="en", timezone="Asia/Shanghai", principal=None, path="/")


def test_the_page_sentences_are_the_domain_sentences_and_all_have_chinese() -> None:
    assert SENTENCES == DOMAIN
    assert without_chinese([*DOMAIN.values(), *PLAIN]) == []
    # … which would say so: a sentence no catalog knows is named.
    assert without_chinese(["no catalog knows this"]) == ["no catalog knows this"]


def test_a_coded_error_keeps_its_english_and_says_chinese_on_a_page() -> None:
    exc = NotFound.said("no_household", code="H-9", field="household_code")
    assert str(exc) == "household_code: no household 'H-9' in your area"
    assert (exc.code, exc.values) == ("no_household", {"code": "H-9"})
    assert said(ZH, exc) == "您的辖区内没有住户“H-9”"
    assert said(EN, exc) == exc.reason
    plain = InvalidInput("the point is outside every grid", field="lon")
    assert said(ZH, plain) == "该地点不在任何网格内" == said_in_full(ZH, plain)
    assert said_in_full(EN, plain) == "lon: the point is outside every grid"
    unknown = Conflict("something no catalog knows", field="plan")
    assert said_in_full(ZH, unknown) == "plan: something no catalog knows"
    assert said(ZH, InvalidInput("")) == ""
