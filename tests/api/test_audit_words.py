"""The audit log's reasons in the page's language: the sentences gridwork writes
(``data.access.reasons``) are the ones the page marks for its catalog, each has Chinese naming
the same values, and a row is said from its sentences, or from its English where an older row
holds a sentence without values, or as it was written."""

from __future__ import annotations

import pytest

from api.pages.audit_words import SENTENCES, VALUE_WORDS, say_reason
from api.pages.frame import PageContext
from data.access.reasons import SENTENCES as WRITTEN
from data.access.reasons import said, split
from tests.catalog import without_chinese

ZH = PageContext(locale="zh_CN", timezone="Asia/Shanghai", principal=None, path="/")
EN = PageContext(locale="en", timezone="Asia/Shanghai", principal=None, path="/")


def test_the_page_sentences_are_the_written_ones_and_all_have_chinese() -> None:
    assert SENTENCES == WRITTEN
    words = [w for names in VALUE_WORDS.values() for w in names.values()]
    assert without_chinese([*WRITTEN.values(), *words]) == []


def test_a_reason_keeps_its_english_and_its_sentences() -> None:
    reason = said("alert_closed", alert=12).noted("  已找到，送回家 ")
    assert split(reason) == (
        "alert 12 closed; note: 已找到，送回家",
        [["alert_closed", {"alert": 12}], ["note", {"text": "已找到，送回家"}]],
    )
    assert said("password_reset").noted("   ") == said("password_reset")
    assert split("typed by a caller") == ("typed by a caller", None)
    with pytest.raises(KeyError):
        said("role_set")  # the role is missing: refused where it is written, not when read
    with pytest.raises(KeyError):
        said("no such sentence")


def test_a_row_is_said_in_the_page_language() -> None:
    reason = said("role_set", role="planner").and_("with_area", level="street", code="S01")
    text, stored = split(reason)
    assert say_reason(ZH, text, stored) == "角色改为 规划员；辖区：街道 S01"
    assert say_reason(EN, text, stored) == "role set to Planner; area Street S01"
    switched = said("plan_switched", community="C7", day="2027-01-01", closed=5, opened=6)
    assert say_reason(ZH, *split(switched)) == (
        "社区 C7 的网格于 2027-01-01 切换：撤销 5 个，启用 6 个"
    )
    enrolled = said("enrolled", datum="gcj02").and_("no_consent")
    assert say_reason(ZH, *split(enrolled)) == "登记老人及设备（坐标系 GCJ-02）；尚未登记知情同意"
    # Rows from before the sentences were kept: a sentence without values is said from its
    # English; anything else, and what someone typed, as written.
    assert say_reason(ZH, "household register (page)", None) == "查看住户台账（页面）"
    assert say_reason(ZH, "created as planner", None) == "created as planner"
    assert say_reason(ZH, "寻找走失老人", None) == "寻找走失老人"
    assert say_reason(ZH, None, None) == "—"
    # A sentence this version does not know (a later one wrote it) is shown as stored.
    assert say_reason(ZH, "x", [["later_sentence", {"a": 1}], ["password_reset", {}]]) == (
        "['later_sentence', {'a': 1}]；重置密码"
    )
