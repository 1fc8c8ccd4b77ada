"""A map inside the frame: title, the caller's navigation, a way back, and the map itself.

The maps are folium documents (one ``<head>``, one map ``<div>``, one ``<script>``), which
``gridwork map`` also writes as standalone files. For the served pages the document is cut
into its three parts and put into ``maps/map.html``, which extends ``base.html``: the same
header, navigation, language switch and footer as every other page, with controls (the
coverage form) and lists (the workload table) above and below the map.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from api.pages.frame import render
from api.principals import Principal

_HEAD = re.compile(
    r"<head>(?P<head>.*?)</head>\s*<body>(?P<body>.*)</body>(?P<tail>.*)</html>", re.S
)
# Folium forbids zooming the page on phones (user-scalable=no): people who need larger
# text must be able to zoom, and the frame already has its own viewport.
_VIEWPORT = re.compile(r"<meta name=\"viewport\"[^>]*>", re.S)
_CHARSET = re.compile(r"<meta http-equiv=\"content-type\"[^>]*>", re.S)


def split_document(document: str) -> tuple[str, str, str]:
    """(head, body, scripts) of a folium document; ValueError if it is not one."""
    found = _HEAD.search(document)
    if found is None:
        raise ValueError("not a folium document")
    head = _CHARSET.sub("", _VIEWPORT.sub("", found["head"]))
    # html, body {height: 100%} would stretch the frame's page; the map box sets the height.
    head = head.replace("html, body {", ".gw-unused {")
    return head, found["body"], found["tail"]


def framed_map(
    request: Request,
    principal: Principal,
    document: str,
    *,
    title: str,
    template: str = "maps/map.html",
    values: Mapping[str, Any] | None = None,
) -> HTMLResponse:
    """``document`` (a whole folium page) inside the frame, under ``title``."""
    head, body, tail = split_document(document)
    return render(
        request,
        principal,
        template,
        title=title,
        values={"map_head": head, "map_body": body, "map_scripts": tail, **(values or {})},
    )
