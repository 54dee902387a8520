"""Read rendered pages in tests: the text of one element, found by id."""

import json
import re
from html.parser import HTMLParser
from typing import Any

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class _ById(HTMLParser):
    def __init__(self, element_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.element_id = element_id
        self.depth = 0  # > 0 while inside the element
        self.found = False
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            return
        if self.depth:
            self.depth += 1
            self.parts.append(" ")
        elif not self.found and dict(attrs).get("id") == self.element_id:
            self.found = True
            self.depth = 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.depth and dict(attrs).get("id") == self.element_id:
            self.found = True

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in VOID:
            self.depth -= 1
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def text_of(html: str, element_id: str) -> str:
    """The element's text, a space at every tag, whitespace collapsed.

    Raises AssertionError when no element has the id.
    """
    parser = _ById(element_id)
    parser.feed(html)
    parser.close()
    assert parser.found, f"no element with id={element_id!r}"
    return re.sub(r"\s+", " ", "".join(parser.parts)).strip()


def json_of(html: str, element_id: str) -> Any:
    """The value of a json_script block."""
    return json.loads(text_of(html, element_id))


def is_partial(html: str) -> bool:
    return "<html" not in html and "<body" not in html


# Task data as an attacker would choose it, and how it must come out of every page.
HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
