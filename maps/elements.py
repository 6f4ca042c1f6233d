"""The folium elements gridmap adds to a page: its runtime, its data block, legend, ready flag.

None of them puts a data string into a template: data travels in one JSON block
(:func:`maps.escape.json_for_html`), and legend text is HTML-escaped here.
"""

from __future__ import annotations

from functools import cache

from branca.element import Element, MacroElement
from jinja2 import Template

from .escape import css_string, escape_html, json_for_html
from .i18n import incident_classes
from .offline import ASSETS_DIR

__all__ = ["Legend", "MapData", "PageRuntime", "Ready"]


@cache
def _runtime() -> tuple[str, str]:
    js = (ASSETS_DIR / "gridmap.js").read_text(encoding="utf-8")
    css = (ASSETS_DIR / "gridmap.css").read_text(encoding="utf-8")
    return js, css


class PageRuntime(MacroElement):
    """gridmap.js and gridmap.css, inlined in the page header (both online and offline)."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <style>{{ this.css }}</style>
        <script>{{ this.js }}</script>
        {% endmacro %}
        """
    )

    def __init__(self, strings: dict[str, str]) -> None:
        super().__init__()
        self._name = "GridmapRuntime"
        js, css = _runtime()
        symbols = "".join(
            f".gm-inc-{cls}::after{{content:{css_string(strings[f'class_{cls}_symbol'])}}}"
            for cls in (*incident_classes(), "other")
        )
        self.js = js.replace("</", "<\\/")
        self.css = (css + symbols).replace("</", "<\\/")


class MapData(MacroElement):
    """The map's data as one JSON block, and the call that draws it into the feature groups."""

    _template = Template(
        """
        {% macro html(this, kwargs) %}
        <script type="application/json" id="{{ this.data_id }}">{{ this.payload }}</script>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = window.gridmap.load({{ this._parent.get_name() }}, "{{ this.data_id }}", {
            {%- for key, group in this.groups.items() %}
            {{ key }}: {{ group.get_name() }},
            {%- endfor %}
        });
        {{ this._parent.get_name() }}.getContainer().classList.add("gm-lang-{{ this.lang }}");
        {% endmacro %}
        """
    )

    def __init__(self, data: dict, groups: dict[str, Element], *, lang: str) -> None:
        super().__init__()
        self._name = "GridmapData"
        self.data_id = f"gm-data-{self._id}"
        self.payload = json_for_html(data)
        self.groups = groups
        self.lang = lang

    def marker_callback(self) -> str:
        """The FastMarkerCluster callback: builds each incident marker from the data block."""
        return f'function (row) {{ return window.gridmap.maps["{self.data_id}"].incidentMarker(row); }}'


class Legend(MacroElement):
    """A legend control that lists only the layers on the map, and folds away on a phone.

    ``sections`` are (layer key, title, [(swatch class, style, label)]); ``layers`` maps each key
    to the folium layer it describes, so that the page's script shows a section only while its
    layer is on (``gridmap.legend``). Keys are gridmap's own names, never data.
    """

    _template = Template(
        """
        {% macro html(this, kwargs) %}
        <div id="{{ this.legend_id }}" class="gm-legend" style="display:none">{{ this.body }}</div>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        window.gridmap.legend({{ this._parent.get_name() }}, "{{ this.legend_id }}", {
            {%- for key, layer in this.layers.items() %}
            {{ key }}: {{ layer.get_name() }},
            {%- endfor %}
        });
        {% endmacro %}
        """
    )

    def __init__(
        self,
        title: str,
        sections: list[tuple[str, str, list[tuple[str, str, str]]]],
        *,
        layers: dict[str, Element] | None = None,
    ) -> None:
        super().__init__()
        self._name = "GridmapLegend"
        self.legend_id = f"gm-legend-{self._id}"
        self.layers = {k: v for k, v in (layers or {}).items() if k.isidentifier()}
        parts = [
            f'<button type="button" class="gm-legend-toggle" aria-expanded="true">'
            f"{escape_html(title)}</button>",
            '<div class="gm-legend-body">',
        ]
        for key, heading, rows in sections:
            parts.append(f'<div class="gm-legend-section" data-layer="{escape_html(key)}">')
            if heading:
                parts.append(f'<div class="gm-legend-title">{escape_html(heading)}</div>')
            for swatch, style, label in rows:
                parts.append(
                    f'<div class="gm-legend-row"><span class="{escape_html(swatch)}" '
                    f'style="{escape_html(style)}"></span>{escape_html(label)}</div>'
                )
            parts.append("</div>")
        parts.append("</div>")
        self.body = "".join(parts)


class Ready(MacroElement):
    """Sets ``window.__gridmapReady`` once the layers are drawn (for tests and the benchmark)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        window.gridmap.ready({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self) -> None:
        super().__init__()
        self._name = "GridmapReady"
