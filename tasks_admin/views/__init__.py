"""Views: parse the request, call a selector or service, render. One module per page group.

Every page renders a full template for a plain request and its named partial for an htmx
request (``HX-Request``), so pages work without JavaScript and htmx swaps only what changed.
"""
