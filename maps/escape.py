"""Escaping for text from data on its way into an HTML page.

Data strings (names, addresses, incident descriptions) are untrusted. The maps keep them out of
generated JavaScript entirely: they travel in a JSON block that :func:`json_for_html` makes safe
inside ``<script type="application/json">``, and the page's script shows them with
``textContent``. :func:`escape_html` covers the few places text lands in HTML markup.

Examples
--------
>>> json_for_html({"d": "</script><b>&"})
'{"d":"\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e\\\\u0026"}'
>>> escape_html('<img src=x onerror="1">')
'&lt;img src=x onerror=&quot;1&quot;&gt;'
"""

from __future__ import annotations

import html
import re
from typing import Any

from jinja2.utils import htmlsafe_json_dumps

from geo.jsonvalue import json_value

__all__ = ["css_string", "escape_html", "json_for_html"]

# Before ES2019 these ended a JavaScript string; htmlsafe_json_dumps leaves them as they are.
_LINE_SEPARATORS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029"})
# ``{`` before ``{``, ``%`` or ``#`` opens a Jinja2 tag. JSON's own ``{`` is always followed by
# ``"`` or ``}``, so such a ``{`` sits inside a string, where ``\u007b`` reads back the same.
_TEMPLATE_OPENER = re.compile(r"\{(?=[{%#])")


def json_for_html(value: Any) -> str:
    """JSON text that is safe inside an HTML ``<script>`` element and parses back to ``value``.

    Built on jinja2's ``htmlsafe_json_dumps`` (``<``, ``>``, ``&`` and ``'`` as ``\\u``
    escapes: no ``</script>``, ``<!--`` or entity can appear in the page source), plus U+2028 and
    U+2029, and the ``{`` of any ``{{``, ``{%`` or ``{#``: the text is inert even if something
    ever put it through a template engine. All of these occur only inside JSON strings, so the
    JSON stays equal. Values go through :func:`geo.jsonvalue.json_value` first, the one rule for
    JSON answers: NaN and infinities become ``null``, numpy numbers Python ones, times ISO text.

    Parameters
    ----------
    value : Any
        Data :func:`geo.jsonvalue.json_value` takes (dicts, lists, scalars, pandas/numpy values).

    Returns
    -------
    str

    Examples
    --------
    >>> json_for_html(["a\\u2028b", float("nan")])
    '["a\\\\u2028b",null]'
    >>> json_for_html({"d": "{{ 7*7 }} {# c"})
    '{"d":"\\\\u007b{ 7*7 }} \\\\u007b# c"}'
    """
    text = htmlsafe_json_dumps(
        json_value(value),
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
    )
    return _TEMPLATE_OPENER.sub(r"\\u007b", str(text).translate(_LINE_SEPARATORS))


def escape_html(text: Any) -> str:
    """``text`` escaped for HTML element content and quoted attribute values.

    Examples
    --------
    >>> escape_html("a & b")
    'a &amp; b'
    """
    return html.escape("" if text is None else str(text), quote=True)


def css_string(text: str) -> str:
    """``text`` as a double-quoted CSS string with every non-alphanumeric character escaped.

    Examples
    --------
    >>> css_string('容"')
    '"\\\\5bb9 \\\\22 "'
    """
    return (
        '"'
        + "".join(ch if ch.isascii() and ch.isalnum() else f"\\{ord(ch):x} " for ch in text)
        + '"'
    )
