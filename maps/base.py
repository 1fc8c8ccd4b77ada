"""Offline folium maps: every script, style and image comes from gridwork, never from the internet.

Government intranets cannot reach CDNs, and folium's defaults load Leaflet, jQuery, Bootstrap,
Font Awesome and awesome-markers from five of them. An `OfflineMap` carries only the Leaflet
that gridwork vendors in `maps/static/leaflet/` (see `maps/static/README.md`), either linked
from gridwork's own `/static` route or inlined into the page for standalone files. Markers are
CircleMarkers and legends are plain HTML, so nothing else is needed; `external_urls` is the
check that keeps it that way.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeAlias

import folium
import geopandas as gpd
import numpy as np
import shapely
from branca.element import Element, Figure, MacroElement
from folium.template import Template
from pyproj import CRS

from maps.words import Gettext, english

STATIC_DIR = Path(__file__).parent / "static"
"""Directory the API mounts at `/static`; `leaflet/` inside it is what url-mode pages link."""
LEAFLET_DIR = STATIC_DIR / "leaflet"
LEAFLET_VERSION = "1.9.3"
"""The Leaflet folium 0.20 is written against; the vendored copy must match it."""

OSM_COPYRIGHT_URL = "https://www.openstreetmap.org/copyright"
OSM_ATTRIBUTION_TEXT = "© OpenStreetMap contributors, ODbL"
OSM_ATTRIBUTION_HTML = f'<a href="{OSM_COPYRIGHT_URL}">{OSM_ATTRIBUTION_TEXT}</a>'
"""ODbL requires this wherever OSM-derived data is shown, so every map carries it."""

WGS84 = "EPSG:4326"
COORDINATE_DECIMALS = 6
METRES_PER_DEGREE_OF_LATITUDE = 111_320.0
"""Decimals kept in the page: 1e-6 degree is about 0.1 m, far below a screen pixel."""
DEFAULT_BACKGROUND = "#f4f3ef"

AssetMode: TypeAlias = Literal["url", "inline"]
Bounds: TypeAlias = tuple[float, float, float, float]
"""(west, south, east, north) in degrees: the order of `GeoDataFrame.total_bounds`."""
Area: TypeAlias = gpd.GeoDataFrame | gpd.GeoSeries | Bounds


class NotOfflineError(ValueError):
    """A page would fetch something from outside gridwork; the message lists every URL."""


# --------------------------------------------------------------------------- assets


class RawText(Element):
    """Text put into the page verbatim: branca's Element would compile it as a Jinja template
    (147 kB of Leaflet, or megabytes of GeoJSON)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def render(self, **kwargs: Any) -> str:
        return self.text


_SOURCE_MAP = re.compile(r"\n?//# sourceMappingURL=\S+\s*$")
_CSS_URL = re.compile(r"url\(\s*(['\"]?)(?P<ref>[^'\")]+)\1\s*\)")


@cache
def leaflet_inline_js() -> str:
    """Vendored leaflet.js ready for a <script> element in a standalone page.

    The source-map comment is dropped: next to a standalone file it names nothing.
    """
    js = _SOURCE_MAP.sub("", (LEAFLET_DIR / "leaflet.js").read_text(encoding="utf-8"))
    if "</script" in js.lower():
        raise RuntimeError("vendored leaflet.js contains '</script' and cannot be inlined")
    return js


@cache
def leaflet_inline_css() -> str:
    """Vendored leaflet.css with its images as data: URIs, so a standalone page needs no files."""
    css = (LEAFLET_DIR / "leaflet.css").read_text(encoding="utf-8")

    def embed(match: re.Match[str]) -> str:
        ref = match.group("ref")
        if ref.startswith(("#", "data:")):
            return match.group(0)
        image = LEAFLET_DIR / ref
        if not image.is_file():
            raise FileNotFoundError(f"leaflet.css refers to {ref}, not vendored in {LEAFLET_DIR}")
        data = base64.b64encode(image.read_bytes()).decode("ascii")
        return f'url("data:image/png;base64,{data}")'

    css = _CSS_URL.sub(embed, css)
    if "</style" in css.lower():
        raise RuntimeError("vendored leaflet.css contains '</style' and cannot be inlined")
    return css


class OfflineMap(folium.Map):
    """A folium Map whose only library is gridwork's vendored Leaflet.

    asset_mode="url" links `{static_url}/leaflet/leaflet.{js,css}` for pages the API serves;
    "inline" puts Leaflet into the page for files opened straight from disk.
    """

    def __init__(self, *, asset_mode: AssetMode, static_url: str = "/static", **kwargs: Any):
        if asset_mode not in ("url", "inline"):
            raise ValueError(f"asset_mode must be 'url' or 'inline', not {asset_mode!r}")
        super().__init__(**kwargs)
        self.asset_mode: AssetMode = asset_mode
        self.static_url = static_url.rstrip("/")
        # New lists per instance: folium's defaults are shared module lists and add_js_link
        # mutates in place, so assigning on the class would leak between maps.
        self.default_js: list[tuple[str, str]] = []
        self.default_css: list[tuple[str, str]] = []
        if asset_mode == "url":
            self.default_js.append(("leaflet", f"{self.static_url}/leaflet/leaflet.js"))
            self.default_css.append(("leaflet_css", f"{self.static_url}/leaflet/leaflet.css"))

    def render(self, **kwargs: Any) -> Any:
        """Put inline Leaflet into the header first, where the CDN links would have gone."""
        if self.asset_mode == "inline":
            figure = self.get_root()
            if not isinstance(figure, Figure):
                raise TypeError("an OfflineMap renders only inside a branca Figure")
            figure.header.add_child(
                RawText(f"<script>{leaflet_inline_js()}</script>"), name="leaflet"
            )
            figure.header.add_child(
                RawText(f"<style>{leaflet_inline_css()}</style>"), name="leaflet_css"
            )
        return super().render(**kwargs)


def _js_string(text: str) -> str:
    """A JS string literal safe inside <script>: readable UTF-8, with '</' broken up."""
    return json.dumps(text, ensure_ascii=False).replace("</", "<\\/")


class _Attribution(MacroElement):
    """Map-level attribution (always shown, unlike a layer's, which hides with the layer).

    Leaflet's own prefix links to leafletjs.com; on an intranet that link leads nowhere, so the
    credit stays as plain text.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.attributionControl.setPrefix({{ this.prefix_js }});
            {{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.text_js }});
        {% endmacro %}
        """
    )

    def __init__(self, attribution_html: str, *, prefix: str = "Leaflet") -> None:
        super().__init__()
        self._name = "Attribution"
        self.text_js = _js_string(attribution_html)
        self.prefix_js = _js_string(html.escape(prefix))


class _Background(MacroElement):
    """Plain background colour: without tiles our vector layers are the base map."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}
            <style>.leaflet-container { background: {{ this.colour }}; }
            @media (max-width: 599px) {
              .leaflet-container .leaflet-control-attribution { font-size: 10px; }
            }</style>
        {% endmacro %}
        """
    )

    def __init__(self, colour: str) -> None:
        super().__init__()
        if not re.fullmatch(r"#[0-9a-fA-F]{3,8}|[a-zA-Z]+", colour):
            raise ValueError(f"background must be a hex or named CSS colour, not {colour!r}")
        self.colour = colour


class _Scale(MacroElement):
    """A metric scale bar. Folium's has a second line in feet, which nobody here reads and
    which, on a phone, ran under the attribution."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            L.control.scale({imperial: false}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )


class _Basemap(MacroElement):
    """The ground under the map (roads, names, buildings, outlines) from ``GET /basemap``,
    drawn by ``static/frame/basemap.js`` below every other layer (served pages only)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            gridworkBasemap({{ this._parent.get_name() }}, {url: {{ this.url_js }}});
        {% endmacro %}
        """
    )

    def __init__(self, url: str) -> None:
        super().__init__()
        self._name = "Basemap"
        self.url_js = _js_string(url)


# --------------------------------------------------------------------------- legend


OPEN_FROM_PX = 600
"""Legends and title boxes start open on maps at least this wide (CSS pixels)."""


def collapsible(title: str, body_html: str) -> str:
    """``body_html`` under ``title`` (escaped here) in a ``<details>``, closed until the
    legend's script opens it on a wide map or a reader taps the title."""
    return f"<details><summary><h4>{html.escape(title)}</h4></summary>{body_html}</details>"


@dataclass(frozen=True)
class LegendEntry:
    """One legend row: a swatch drawn like the layer it explains, then a label."""

    label: str
    colour: str
    symbol: Literal["fill", "line", "dashed", "circle"] = "fill"


_LEGEND_CSS = """<style>
.gridwork-legend { background: rgba(255,255,255,0.92); padding: 6px 8px; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,0.3); font: 12px/1.4 sans-serif; color: #222; max-width: 240px; }
.gridwork-legend h4 { margin: 0 0 4px; font-size: 12px; }
.gridwork-legend summary { cursor: pointer; }
.gridwork-legend summary h4 { display: inline; }
.gridwork-legend details:not([open]) summary h4 { margin: 0; }
.gridwork-legend div { display: flex; align-items: center; gap: 6px; }
.gridwork-legend i { display: inline-block; flex: none; width: 14px; height: 12px; }
.gridwork-legend i.fill { border: 1px solid #777; }
.gridwork-legend i.line { height: 0; border-top: 3px solid; }
.gridwork-legend i.dashed { height: 0; border-top: 2px dashed; }
.gridwork-legend i.circle { width: 10px; height: 10px; border-radius: 50%;
  border: 1px solid #333; margin: 0 2px; }
</style>"""


class Legend(MacroElement):
    """A Leaflet control of plain HTML swatches.

    Exists because branca's colormap legend loads d3 from a CDN. Labels are HTML-escaped here;
    the CSS goes into the header once however many legends a map has. Its content is a
    ``<details>`` under its title, open where the map is wider than :data:`OPEN_FROM_PX`:
    on a 390 px phone the workload map's title box (a line per worker) and its legend
    covered the whole map; there they start closed, a tap on the title opens them.

    Given ``layer``, the legend is on the map only while that layer is: the incidents map's
    closed-incidents legend stood beside the open one while its layer was hidden.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
            {{ this.get_name() }}.onAdd = function () {
                var div = L.DomUtil.create("div", "gridwork-legend");
                div.innerHTML = {{ this.html_js }};
                var box = div.querySelector("details");
                if (box && {{ this._parent.get_name() }}.getSize().x >= {{ this.open_from }}) {
                    box.open = true;
                }
                L.DomEvent.disableClickPropagation(div);
                return div;
            };
            {% if this.layer %}
            (function (control, layer, map) {
                function follow() {
                    if (map.hasLayer(layer)) { control.addTo(map); } else { control.remove(); }
                }
                layer.on("add remove", follow);
                follow();
            })({{ this.get_name() }}, {{ this.layer.get_name() }}, {{ this._parent.get_name() }});
            {% else %}
            {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
            {% endif %}
        {% endmacro %}
        """
    )

    def __init__(
        self,
        title: str,
        entries: Sequence[LegendEntry],
        *,
        position: Literal["topleft", "topright", "bottomleft", "bottomright"] = "bottomright",
        layer: MacroElement | None = None,
    ) -> None:
        super().__init__()
        self._name = "Legend"
        self.position = position
        self.layer = layer
        self.open_from = OPEN_FROM_PX
        rows = []
        for entry in entries:
            colour = html.escape(entry.colour, quote=True)
            style = (
                f"background:{colour}"
                if entry.symbol in ("fill", "circle")
                else f"border-top-color:{colour}"
            )
            rows.append(
                f'<div><i class="{entry.symbol}" style="{style}"></i>'
                f"<span>{html.escape(entry.label)}</span></div>"
            )
        self.html_js = _js_string(collapsible(title, "".join(rows)))

    def render(self, **kwargs: Any) -> Any:
        figure = self.get_root()
        if isinstance(figure, Figure):
            figure.header.add_child(RawText(_LEGEND_CSS), name="gridwork_legend_css")
        return super().render(**kwargs)


# --------------------------------------------------------------------------- geometry


def to_wgs84(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The layer in WGS-84; a layer without a CRS is refused rather than guessed."""
    if gdf.crs is None:
        raise ValueError("layer has no CRS; maps need it to place the data (expected EPSG:4326)")
    if CRS.from_user_input(gdf.crs).equals(CRS.from_user_input(WGS84)):
        return gdf
    return gdf.to_crs(WGS84)


def area_bounds(area: Area) -> Bounds:
    """(west, south, east, north) of a layer or of explicit bounds, checked to be lon/lat."""
    if isinstance(area, gpd.GeoDataFrame | gpd.GeoSeries):
        frame = area if isinstance(area, gpd.GeoDataFrame) else gpd.GeoDataFrame(geometry=area)
        frame = to_wgs84(frame)
        nonempty = frame[~(frame.geometry.isna() | frame.geometry.is_empty)]
        if nonempty.empty:
            raise ValueError("cannot place a map on a layer with no geometry")
        west, south, east, north = (float(v) for v in nonempty.total_bounds)
    else:
        west, south, east, north = (float(v) for v in area)
    problems = []
    if not (-180 <= west <= east <= 180):
        problems.append(f"longitudes must satisfy -180 <= west <= east <= 180, got {west}, {east}")
    if not (-90 <= south <= north <= 90):
        problems.append(f"latitudes must satisfy -90 <= south <= north <= 90, got {south}, {north}")
    if problems:
        raise ValueError("bad map bounds: " + "; ".join(problems))
    return west, south, east, north


def fit_bounds(m: folium.Map, area: Area, *, padding_px: int = 10) -> None:
    """Open the map on `area`: folium wants [[south, west], [north, east]], our bounds do not."""
    west, south, east, north = area_bounds(area)
    m.fit_bounds([[south, west], [north, east]], padding=(padding_px, padding_px))


def metric_crs(area: Area) -> CRS:
    """The UTM zone of the area's centre: metres for simplification tolerances."""
    west, south, east, north = area_bounds(area)
    lon, lat = (west + east) / 2, (south + north) / 2
    zone = int((lon + 180) // 6) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _simplified(geoms: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker, kept where it left every part and ring and a valid shape; elsewhere
    the topology-preserving simplifier, which costs ~10× more (0.11 s for a district of
    3,345 grids, the largest part of drawing its grid page)."""
    fast = shapely.simplify(geoms, tolerance, preserve_topology=False)
    kept = shapely.is_missing(geoms) | (
        shapely.is_valid(fast)
        & (shapely.get_num_geometries(fast) == shapely.get_num_geometries(geoms))
        & (shapely.get_num_interior_rings(fast) == shapely.get_num_interior_rings(geoms))
    )
    if not kept.all():
        fast[~kept] = shapely.simplify(geoms[~kept], tolerance, preserve_topology=True)
    return fast


def display_geometry(gdf: gpd.GeoDataFrame, *, tolerance_m: float) -> gpd.GeoSeries:
    """WGS-84 geometry reduced for the browser, so a district's map stays a few hundred kB.

    Douglas-Peucker (topology-preserving where the fast one would break a shape, see
    :func:`_simplified`) in degrees, with ``tolerance_m`` read as degrees of latitude: a
    vertex moves at most ``tolerance_m`` north-south and ``tolerance_m × cos(latitude)``
    east-west, never more than ``tolerance_m``. Simplifying in a metric CRS instead meant
    projecting every vertex there and back, a large part of drawing a district-wide grid page
    at the megacity's full size, for about the same vertices left. Then
    coordinates rounded to COORDINATE_DECIMALS (display only: never write these geometries
    back). Neighbouring polygons are simplified independently, so shared edges may part by up
    to the tolerance: keep it below a pixel at the zoom the map opens on (a few metres).
    """
    wgs = to_wgs84(gdf).geometry
    values = np.asarray(wgs.values)
    if tolerance_m > 0 and not wgs.empty:
        values = _simplified(values, tolerance_m / METRES_PER_DEGREE_OF_LATITUDE)
    rounded = shapely.transform(values, lambda xy: np.round(xy, COORDINATE_DECIMALS))
    return gpd.GeoSeries(rounded, index=wgs.index, crs=WGS84)


# --------------------------------------------------------------------------- the map


def offline_map(
    area: Area,
    *,
    asset_mode: AssetMode,
    static_url: str = "/static",
    tiles_url: str | None = None,
    tiles_attribution: str | None = None,
    background: str = DEFAULT_BACKGROUND,
    height: str = "100%",
    basemap_url: str = "/basemap",
    gettext: Gettext = english,
) -> OfflineMap:
    """A map of `area` that works without internet; gridwork's layers are its base map.

    No tile layer unless `tiles_url` names one, for deployments with an intranet tile server
    (prefer a same-origin path like "/tiles/{z}/{x}/{y}.png"; `external_urls` reports any
    absolute URL). Its attribution must then be given. The OSM/ODbL attribution is always on.
    """
    west, south, east, north = area_bounds(area)
    m = OfflineMap(
        asset_mode=asset_mode,
        static_url=static_url,
        location=[(south + north) / 2, (west + east) / 2],
        zoom_start=14,
        tiles=None,
        control_scale=False,
        height=height,
    )
    _Background(background).add_to(m)
    _Scale().add_to(m)
    if asset_mode == "url":
        # Served pages draw the ground from gridwork's own tables; a standalone file (inline)
        # has no server to ask, and shows its layers on the plain background.
        m.default_js.append(("gridwork_basemap", f"{m.static_url}/frame/basemap.js"))
        _Basemap(basemap_url).add_to(m)
    if tiles_url is not None:
        if not tiles_attribution:
            raise ValueError("a tile layer needs its tiles_attribution")
        folium.TileLayer(
            tiles=tiles_url, attr=tiles_attribution, name=gettext("basemap"), overlay=False
        ).add_to(m)
    _Attribution(OSM_ATTRIBUTION_HTML).add_to(m)
    fit_bounds(m, (west, south, east, north))
    return m


def layer_control(m: folium.Map, *, collapsed: bool = False) -> folium.LayerControl:
    """Layer switcher; expanded by default because a handful of layers fit on screen, but
    folded into its button on a map narrower than :data:`OPEN_FROM_PX` (a phone), where the
    open list covered the title box beside it."""
    control = folium.LayerControl(collapsed=collapsed)
    control.add_to(m)
    if not collapsed:
        _FoldedWhenNarrow(control).add_to(m)
    return control


class _FoldedWhenNarrow(MacroElement):
    """Adds ``control`` to the map again as collapsed when the map is narrow: Leaflet wires
    the button that opens a layer control only for one made collapsed."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            if ({{ this._parent.get_name() }}.getSize().x < {{ this.open_from }}) {
                {{ this.control }}.remove();
                {{ this.control }}.options.collapsed = true;
                {{ this.control }}.addTo({{ this._parent.get_name() }});
            }
        {% endmacro %}
        """
    )

    def __init__(self, control: folium.LayerControl) -> None:
        super().__init__()
        self._name = "FoldedWhenNarrow"
        self.control = control.get_name()
        self.open_from = OPEN_FROM_PX


# --------------------------------------------------------------------------- offline check

ALLOWED_LINKS = re.compile(r"https?://(?:www\.)?openstreetmap\.org/copyright/?", re.IGNORECASE)
"""The one external link a page may carry: the ODbL attribution, which the user clicks and the
browser never fetches."""

_ABSOLUTE_URL = re.compile(r"https?://[^\s\"'`<>()\\]+", re.IGNORECASE)
_LABEL = r"[a-z0-9{}](?:[a-z0-9{}-]*[a-z0-9{}])?"
# `//host` counts only where a URL can start (after a quote, '(', '=', ',' or whitespace), so a
# `// comment` does not; the host needs a dot, as every internet host name does.
_PROTOCOL_RELATIVE = re.compile(
    rf"(?<=[\"'`(=,\s])//{_LABEL}(?:\.{_LABEL})+(?::\d+)?(?:[/?#][^\s\"'`<>()\\]*)?",
    re.IGNORECASE,
)
_ANCHOR_HREF = re.compile(
    r"<a\s[^>]*?\bhref\s*=\s*([\"']?)(?P<href>[^\"'\s>]+)\1", re.IGNORECASE | re.DOTALL
)
_JS_UNICODE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _normalise(page: str) -> str:
    """Undo the escapes that hide URLs from a text search: JSON/JS escapes, HTML entities."""
    page = _JS_UNICODE.sub(lambda m: chr(int(m.group(1), 16)), page)
    page = page.replace("\\/", "/").replace('\\"', '"').replace("\\'", "'")
    return html.unescape(page)


def _vendored_texts() -> tuple[str, ...]:
    """Vendored library text, audited when vendored (maps/static/README.md) and skipped here.

    leaflet.js holds two URLs, neither fetched: the SVG namespace name and the leafletjs.com link
    in its attribution prefix (which OfflineMap replaces); leaflet.css holds one, in a comment.
    Only text identical to the vendored files is skipped, so nothing else can hide behind this.
    """
    raw = (LEAFLET_DIR / "leaflet.js").read_text(encoding="utf-8")
    return (leaflet_inline_js(), raw, leaflet_inline_css())


def external_urls(page: str, *, allow: Iterable[str] = ()) -> list[str]:
    """Every http(s):// or protocol-relative //host URL in the page, in order, once each.

    Deliberately a search of the whole text, not of tags the browser is known to fetch: script
    src, link href, img src, CSS url()/@import, tile templates and URLs built in JS all show up,
    and a false alarm is cheaper than a map that stays blank on an intranet. Exempt are the
    vendored Leaflet source (exact text only), `<a href>` links matching ALLOWED_LINKS, and URLs
    starting with one of `allow` (a deployment's own intranet tile server, say).
    """
    for text in _vendored_texts():
        page = page.replace(text, "")
    page = _normalise(page)
    allowed_spans = [
        match.span("href")
        for match in _ANCHOR_HREF.finditer(page)
        if ALLOWED_LINKS.fullmatch(match.group("href"))
    ]
    prefixes = tuple(allow)
    found: dict[str, None] = {}
    matches = [*_ABSOLUTE_URL.finditer(page), *_PROTOCOL_RELATIVE.finditer(page)]
    for match in sorted(matches, key=lambda m: m.start()):
        url = match.group(0).rstrip(".,;:")
        if any(start <= match.start() < end for start, end in allowed_spans):
            continue
        if prefixes and url.startswith(prefixes):
            continue
        found.setdefault(url, None)
    return list(found)


def assert_offline(page: str, *, allow: Iterable[str] = ()) -> None:
    """Refuse a page that would fetch anything from outside gridwork, naming every URL at once."""
    urls = external_urls(page, allow=allow)
    if urls:
        listing = "\n  ".join(urls)
        raise NotOfflineError(
            f"page would fetch {len(urls)} external URL(s); serve or inline them:\n  {listing}"
        )
