"""Why a position is read: the choices and the reason shown are in the page's language; the
audit log keeps the English label and the reason's code, whatever the page's language was, so
that the audit page can say it in its reader's."""

from __future__ import annotations

import html

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.routers.care_pages import REASONS
from data.access.reasons import SENTENCES as WRITTEN
from tests.care.conftest import enrol

ZH_LABELS = {
    "missing": "寻找走失人员",
    "alert": "核查告警",
    "family": "家属请求",
    "welfare": "日常关怀",
    "other": "其他（请在下方说明）",
}


def _page(client: TestClient, headers: dict[str, str], path: str, language: str) -> str:
    r = client.get(path, headers={**headers, "Accept-Language": language})
    assert r.status_code == 200, r.text
    return html.unescape(r.text)


def test_every_reason_has_a_chinese_label() -> None:
    assert set(ZH_LABELS) == set(REASONS)
    # … and is one of the audit log's sentences, in the same words.
    assert {code: WRITTEN[f"locate_{code}"] for code in REASONS} == REASONS


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_the_reason_choices_are_in_the_page_language(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, language: str
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-why")
    page = _page(client, staff["care_staff"], f"/app/elders/{elder['id']}/locate", language)
    for code, english in REASONS.items():
        assert f'value="{code}"' in page  # the stored codes stay what the form sends
        if language == "zh-CN":
            assert ZH_LABELS[code] in page
            assert english not in page
        else:
            assert english in page


def test_the_reason_shown_is_in_chinese_and_the_audit_keeps_the_code_label(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-why-2")
    path = f"/app/elders/{elder['id']}/locate?why=family&note=女儿来电"
    page = _page(client, staff["care_staff"], path, "zh-CN")
    assert "查看原因（已记入审计日志）：家属请求: 女儿来电" in page
    assert "Family request" not in page
    page = _page(client, staff["care_staff"], path, "en")
    assert "Reason given (kept in the audit log): Family request: 女儿来电" in page
    with care.connect() as conn:
        reasons = (
            conn.execute(
                text(
                    "SELECT reason, reason_said FROM audit_log WHERE subject_type = 'position' "
                    "AND route = :r ORDER BY id DESC LIMIT 2"
                ),
                {"r": f"/app/elders/{elder['id']}/locate"},
            )
            .tuples()
            .all()
        )
    said = [["locate_family", {}], ["why", {"text": "女儿来电"}]]
    assert reasons == [("Family request; why: 女儿来电", said)] * 2
