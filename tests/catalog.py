"""What the tests of the pages' languages share: which sentences the Chinese catalog fails."""

from __future__ import annotations

import re
from collections.abc import Iterable

from api.pages.i18n import translations

HAN = re.compile(r"[\u4e00-\u9fff]")
_VALUE = re.compile(r"%\((\w+)\)s")


def without_chinese(sentences: Iterable[str]) -> list[str]:
    """The sentences a Chinese page would show wrong: left in English by the ``zh_CN``
    catalog, or translated naming other values than the English (a ``%(name)s`` dropped or
    added, which the page's ``%`` would refuse or leave out). All of them, not the first."""
    zh = translations("zh_CN").gettext
    return [
        english
        for english in sentences
        if (chinese := zh(english)) == english
        or not HAN.search(chinese)
        or set(_VALUE.findall(chinese)) != set(_VALUE.findall(english))
    ]
