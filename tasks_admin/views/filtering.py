"""What the console's filter forms share: times typed as ``1h`` or ISO, and one-line errors.

The task list, the audit log and the dead letters each take their filters from the query
string, so a view can be bookmarked; bad values become form errors shown above the list.
"""

import datetime as dt
import re
from typing import Any, ClassVar

from django import forms

_RELATIVE = re.compile(r"^(\d{1,6})\s*(s|m|min|h|d|w)$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_moment(text: str, now: dt.datetime) -> dt.datetime:
    """``now``, ``15m``/``1h``/``7d`` ago, or an ISO 8601 date or date-time (UTC if naive)."""
    text = text.strip()
    if text.lower() == "now":
        return now
    relative = _RELATIVE.match(text)
    try:
        if relative:
            seconds = int(relative[1]) * _UNIT_SECONDS[relative[2].lower()]
            return now - dt.timedelta(seconds=seconds)
        moment = dt.datetime.fromisoformat(text)
    except (ValueError, OverflowError) as exc:
        raise ValueError(text) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class FilterForm(forms.Form):
    """A list's query string; ``error_messages`` puts each error on one labelled line."""

    # Field name → label in error lines, where capitalizing the name reads badly.
    error_labels: ClassVar[dict[str, str]] = {}

    def error_messages(self) -> list[str]:
        return [
            f"{self.error_labels.get(key, key.replace('_', ' ').capitalize())}: {message}"
            for key, messages in self.errors.items()
            for message in messages
        ]


class TimeRangeForm(FilterForm):
    """A filter form with ``from`` and ``to``, each ``now``, relative to ``now`` or ISO."""

    error_labels: ClassVar[dict[str, str]] = {"from": "From", "to": "To"}

    def __init__(self, data: Any, *, now: dt.datetime) -> None:
        super().__init__(data)
        self.now = now
        # "from" and "to" read best in a URL, and are Python keywords.
        self.fields["from"] = forms.CharField(required=False, max_length=64)
        self.fields["to"] = forms.CharField(required=False, max_length=64)

    def _moment(self, key: str) -> dt.datetime | None:
        text = self.cleaned_data.get(key) or ""
        if not text:
            return None
        try:
            return parse_moment(text, self.now)
        except ValueError:
            raise forms.ValidationError(
                "“%(value)s” is not a time: use an ISO date-time such as 2025-01-31T14:00 "
                "or a relative one such as 15m, 1h, 24h or 7d.",
                params={"value": text},
            ) from None

    def clean_from(self) -> dt.datetime | None:
        return self._moment("from")

    def clean_to(self) -> dt.datetime | None:
        return self._moment("to")
