"""A GeoJSON layer of areas styled in the browser by one property, for maps of many areas.

folium's ``GeoJson`` calls the Python style function on every feature, groups the features by
the resulting style into a ``switch`` over feature ids, and puts the whole GeoJSON inside the
layer's script, which branca then compiles once more as a Jinja template. Here the style is
looked up in the browser from a small table keyed by one property (``_colour``: a grid's
class), and the data goes into the page as plain text after the layer's script. With both
gone, the grid page of a district-wide coordinator of the full megacity (5,814 grids) takes
0.39 s instead of 1.18 s (``python -m bench.megacity grid-page``, docs/scale.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from branca.element import Figure
from folium.map import Layer
from folium.template import Template
from folium.utilities import JsCode

from maps.base import RawText


def script_json(value: Any) -> str:
    """``value`` as JSON safe inside ``<script>`` (see :func:`script_safe`)."""
    return script_safe(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def script_safe(json_text: str) -> str:
    """JSON text safe inside ``<script>``: ``<``, ``>`` and ``&`` only occur in strings in
    JSON, so writing them as ``\\u`` escapes cannot end the element or open a comment."""
    return json_text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class AreaLayer(Layer):
    """Areas from a GeoJSON FeatureCollection (a dict or its JSON text), each styled by
    ``styles[properties[key]]``.

    ``styles`` maps every value ``key`` takes to a Leaflet path style; a value not in it gets
    ``styles[""]`` when given. The pointer-over style is ``highlight``; ``on_each_feature`` is
    called for every feature first (tooltips).
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }}_styles = {{ this.styles_js }};
        var {{ this.get_name() }} = L.geoJson(null, {
            style: function (feature) {
                var styles = {{ this.get_name() }}_styles;
                return styles[feature.properties[{{ this.key_js }}]] || styles[""] || {};
            },
            onEachFeature: function (feature, layer) {
                {%- if this.on_each_feature %}
                ({{ this.on_each_feature.js_code }})(feature, layer);
                {%- endif %}
                {%- if this.highlight_js %}
                layer.on({
                    mouseover: function (e) { e.target.setStyle({{ this.highlight_js }}); },
                    mouseout: function (e) { {{ this.get_name() }}.resetStyle(e.target); }
                });
                {%- endif %}
            }
        });
        {% endmacro %}
        """
    )

    def __init__(
        self,
        data: Mapping[str, Any] | str,
        *,
        key: str,
        styles: Mapping[str, Mapping[str, Any]],
        name: str | None = None,
        highlight: Mapping[str, Any] | None = None,
        on_each_feature: JsCode | None = None,
        show: bool = True,
    ) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        # The name folium gives its own GeoJson layers, so pages and their tests read alike.
        self._name = "GeoJson"
        self.data_js = script_safe(data) if isinstance(data, str) else script_json(data)
        self.key_js = script_json(key)
        self.styles_js = script_json({str(k): dict(v) for k, v in styles.items()})
        self.highlight_js = script_json(dict(highlight)) if highlight else ""
        self.on_each_feature = on_each_feature

    def render(self, **kwargs: Any) -> Any:
        """The layer's script as folium renders it, then the data as plain text after it."""
        rendered = super().render(**kwargs)
        figure = self.get_root()
        if not isinstance(figure, Figure):
            raise TypeError("an AreaLayer renders only inside a branca Figure")
        figure.script.add_child(
            RawText(f"{self.get_name()}.addData({self.data_js});"),
            name=self.get_name() + "_data",
        )
        return rendered


__all__ = ["AreaLayer", "script_json", "script_safe"]
