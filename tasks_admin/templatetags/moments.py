"""``{% moment at %}``: a moment as the pages show it.

The exact UTC time, readable without JavaScript; console.js turns it into "3 min ago" with
the exact time on hover. A tag, not an included template: pages show dozens of moments (a
task list shows three per row) and an include costs a template context per moment.
"""

import datetime as dt

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

NO_MOMENT = mark_safe('<span class="muted">—</span>')


@register.simple_tag
def moment(at: dt.datetime | None) -> SafeString:
    if not at:
        return NO_MOMENT
    if timezone.is_aware(at):
        at = timezone.localtime(at)
    return format_html(
        '<time datetime="{}" title="{} UTC">{}</time>',
        at.isoformat(),
        at.strftime("%Y-%m-%d %H:%M:%S.%f"),
        at.strftime("%Y-%m-%d %H:%M:%S"),
    )
