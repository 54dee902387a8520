"""Hide the values of secret arguments (CONSOLE_REDACT_ARGS) in what pages and the API show.

Only what is displayed changes: stored rows keep the real values, so a replay stays
faithful. Names match case-insensitively, as dict keys at any depth (kwargs, and dicts
inside positional args) and as keyword arguments in reprs (``Card(number=...)``).

Celery's argument reprs are Python source text, often cut at 1024 characters. A repr
that parses is redacted precisely (its ``ast``); one that does not (cut) but mentions a
redacted name is hidden whole, since its secret cannot be located safely.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings

REDACTED = "[redacted]"
HIDDEN_REPR = "[redacted: holds a redacted argument name and could not be parsed]"
# Message headers that repeat the arguments as reprs.
REPR_HEADERS = ("argsrepr", "kwargsrepr")


def redacted_names(names: Iterable[str] | None = None) -> frozenset[str]:
    source = settings.CONSOLE_REDACT_ARGS if names is None else names
    return frozenset(name.strip().lower() for name in source if name and name.strip())


def redact_value(value: Any, names: frozenset[str] | None = None) -> Any:
    """A copy of a JSON value with the values of redacted keys replaced, at any depth."""
    names = redacted_names() if names is None else names
    if not names:
        return value
    if isinstance(value, dict):
        return {
            key: REDACTED if str(key).lower() in names else redact_value(item, names)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(item, names) for item in value]
    return value


def redact_repr(text: str, names: frozenset[str] | None = None) -> str:
    """A Python repr (Celery's argsrepr/kwargsrepr) with redacted values replaced."""
    names = redacted_names() if names is None else names
    if not names or not text:
        return text
    lowered = text.lower()
    if not any(name in lowered for name in names):
        return text
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return _hide_if_named(text, names)
    offset = len(text) - len(text.lstrip())
    lines = text.strip().splitlines(keepends=True)
    if len(lines) != 1:
        return _hide_if_named(text, names)
    spans: list[tuple[int, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and isinstance(key.value, str)
                    and key.value.lower() in names
                ):
                    spans.append(_span(value))
        elif isinstance(node, ast.keyword) and node.arg and node.arg.lower() in names:
            spans.append(_span(node.value))
    if not spans:
        return text
    # A secret inside a secret goes with the outer one.
    outer: list[tuple[int, int]] = []
    for start, end in sorted(set(spans), key=lambda span: (span[0], -span[1])):
        if not outer or start >= outer[-1][1]:
            outer.append((start, end))
    # ast offsets count UTF-8 bytes; replace from the end so earlier offsets stay valid.
    data = text.strip().encode()
    for start, end in reversed(outer):
        data = data[:start] + repr(REDACTED).encode() + data[end:]
    return text[:offset] + data.decode()


def redact_headers(headers: dict[str, Any], names: frozenset[str] | None = None) -> dict[str, Any]:
    names = redacted_names() if names is None else names
    if not names:
        return headers
    shown = redact_value(headers, names)
    for key in REPR_HEADERS:
        if isinstance(shown.get(key), str):
            shown[key] = redact_repr(shown[key], names)
    return shown


def _span(node: ast.expr) -> tuple[int, int]:
    return node.col_offset, node.end_col_offset or node.col_offset


def _hide_if_named(text: str, names: frozenset[str]) -> str:
    for name in names:
        if re.search(rf"(['\"]){re.escape(name)}\1\s*:|\b{re.escape(name)}\s*=", text, re.I):
            return HIDDEN_REPR
    return text
