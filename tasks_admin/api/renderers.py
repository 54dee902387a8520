"""JSON for every API answer: DRF's JSONRenderer output, written by orjson.

The task list is the API's busiest answer (scripts poll it), and json.dumps with DRF's
encoder was the largest single cost of turning a page into bytes. orjson writes the same
JSON for what the API sends (strings, numbers, lists, dicts); everything it does not
handle natively goes through DRF's encoder (datetimes included, so they keep DRF's
format), and anything it refuses is left to DRF's renderer.
"""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework import renderers

# DRF escapes these so the output is also valid JavaScript; orjson writes them raw.
_LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class JSONRenderer(renderers.JSONRenderer):
    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> bytes:
        # Indented output (the browsable API, "; indent=4") and non-default JSON settings
        # are rare: DRF's own path writes them.
        plain = self.compact and self.strict and not self.ensure_ascii
        if (
            data is None
            or not plain
            or self.get_indent(accepted_media_type, renderer_context or {})
        ):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            out = orjson.dumps(data, default=self.encoder_class().default, option=_OPTIONS)
        except (TypeError, orjson.JSONEncodeError):
            # Integers past 64 bits, non-string keys, lone surrogates: DRF's path decides.
            return super().render(data, accepted_media_type, renderer_context)
        for raw, escaped in _LINE_SEPARATORS:
            if raw in out:
                out = out.replace(raw, escaped)
        return out
