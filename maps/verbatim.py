"""Text that branca and folium put on a page goes there as it is: never run as a template again.

Why this module exists (issue #13, item 1): branca's ``MacroElement.render`` renders an element's
``header``/``html``/``script`` macros and then wraps their *output* in ``Element(output)``, and
``Element(text)`` compiles ``text`` as a Jinja2 template and renders it a second time when the
page is assembled. ``Div.render``, folium's ``Popup.render``, ``Class.render``, the GeoJson
tooltips and the Vega elements do the same. Every data string a macro wrote out (a case
description, a building name in our JSON data block) was therefore evaluated: ``{{ 7*7 }}``
showed ``49``, ``{{ ...__import__('os').popen('id').read() }}`` ran a command on the server, and a
description holding ``{#`` made every map fail with ``TemplateSyntaxError``.

The fix sits where the second pass happens, once, for every element of both libraries:
``Element`` built from a string keeps that string and renders it verbatim (:class:`VerbatimText`
stands in for the compiled template). Elements with their own class-level template (every macro
element, the figure) are untouched: their templates are ours or the libraries', never data.
``Div`` is the one library class that hands ``Element`` a real template (its children loop); it
gets the plain children loop back. Unpickling keeps the text verbatim as well.

:func:`install` is applied when :mod:`maps` is imported, so no map gridmap renders can re-template
data. ``tests/test_template_corpus.py`` puts template syntax and script payloads into every field
the store holds and renders every page and CLI map.
"""

from __future__ import annotations

from typing import Any

from branca.element import Div, Element

__all__ = ["VerbatimText", "install"]

_element_init = Element.__init__
_element_setstate = Element.__setstate__
_div_init = Div.__init__


class VerbatimText:
    """A stand-in for a compiled Jinja2 template that renders to its text, whatever it is given."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def render(self, *args: Any, **kwargs: Any) -> str:
        return self.text


def _verbatim_init(
    self: Element, template: str | None = None, template_name: str | None = None
) -> None:
    _element_init(self, template_name=template_name)
    if template is not None:
        self._template_str = template
        self._template = VerbatimText(template)  # type: ignore[assignment]


def _verbatim_setstate(self: Element, state: dict) -> None:
    _element_setstate(self, {**state, "_template_str": None})
    if state.get("_template_str") is not None:
        self._template_str = state["_template_str"]
        self._template = VerbatimText(state["_template_str"])  # type: ignore[assignment]


def _div_with_children_loop(self: Div, *args: Any, **kwargs: Any) -> None:
    _div_init(self, *args, **kwargs)
    # Div's html part is the only real template branca passes to Element: the children loop,
    # which Element's class-level template already is.
    self.html._template_str = None
    del self.html._template


def install() -> None:
    """Make every branca/folium ``Element(text)`` render ``text`` verbatim (idempotent)."""
    Element.__init__ = _verbatim_init  # type: ignore[method-assign]
    Element.__setstate__ = _verbatim_setstate  # type: ignore[method-assign]
    Div.__init__ = _div_with_children_loop  # type: ignore[method-assign]


def installed() -> bool:
    """Whether :func:`install` is in force (the tests check it after importing :mod:`maps`)."""
    return Element.__init__ is _verbatim_init and Div.__init__ is _div_with_children_loop
