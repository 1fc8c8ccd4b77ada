"""Open311 documents as XML, the format the specification requires (JSON is optional).

Built with ``xml.etree``, which escapes text; characters XML 1.0 cannot carry at all
(control characters a description may hold) are dropped rather than making the document
unreadable. A list's items are named as the specification names them (``services`` holds
``service`` elements, ``service_requests`` holds ``request``, ``errors`` holds ``error`` …).
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree as ET

MEDIA_TYPE = "text/xml; charset=utf-8"

#: A list element → the name of each of its items.
ITEMS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
}

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _fill(ET.SubElement(element, key), child)
    elif isinstance(value, list):
        name = ITEMS[element.tag]
        for item in value:
            _fill(ET.SubElement(element, name), item)
    else:
        element.text = _text(value)


def document(root: str, value: Any) -> bytes:
    """``value`` (dicts, lists and scalars, as JSON would hold them) under ``<root>``."""
    element = ET.Element(root)
    _fill(element, value)
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)
