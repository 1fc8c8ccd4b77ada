"""A vector-tile viewer: MapLibre GL JS over gridwork's own MVT endpoint, nothing else.

The style has only our own vector sources (streets, grids, buildings, roads, facilities from
``/ogc``), so the ground is drawn as on every other map: buildings, roads, and the names of
roads, grids, streets and facilities. It has no ``glyphs`` and no sprite: since MapLibre GL JS
5.11 a style without ``glyphs`` draws its text with the device's own fonts (``text-font`` is a
list of font families), so the page needs no font server, which an intranet does not have.
MapLibre itself is vendored (``maps/static/maplibre/``, an ES module whose worker is a
same-origin module script, which the pages' Content-Security-Policy allows). Hovering a grid
shows its code, worker and households in a popup built with text nodes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html import escape
from typing import Any

from tipg.settings import MVTSettings

from maps.base import OSM_ATTRIBUTION_HTML, Bounds
from maps.grids import ABOVE, BELOW, COMMUNITY_OUTLINE, WITHIN
from maps.style import NO_DATA_COLOUR, OTHER_COLOUR, categorical_colours
from maps.words import Gettext, english

MAPLIBRE_VERSION = "6.17.0"
TILES = "/ogc/collections/ogc.{layer}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}"
SOURCE_LAYER = "default"
"""tipg names every tile's layer 'default' (TIPG_SET_MVT_LAYERNAME unset)."""

STREET_OUTLINE = COMMUNITY_OUTLINE
"""The streets' (街道) outlines: the dark line the Leaflet maps draw around communities."""

BUILDING_FILL = "#d6cfc7"
"""Buildings, in the warm grey of the offline basemap under the Leaflet maps."""

FONTS = ["Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", "sans-serif"]
"""The font families labels are drawn in, the first one the device has (no glyph server)."""

NAME_ZOOM = {"streets": (11, 15), "grids": (13, 24), "roads": (14, 24), "facilities": (16, 24)}
"""The map zooms between which each layer's names are drawn: a street's name over the
district (not close in, where it would sit over the roads' names), grid codes once grids are a
finger wide, road and facility names close in. A grid wider than a tile is named once in each
tile it reaches (MapLibre labels a polygon per tile), which keeps its code in sight."""

TILE_FEATURES = MVTSettings().max_features_per_tile
"""tipg puts at most this many features in a tile (``ORDER BY id LIMIT``; 10,000 unless
``TIPG_MAX_FEATURES_PER_TILE`` says otherwise): past it a tile comes back cut off."""
_EARTH_KM = 40075.016686


def feature_minzoom(features: int, bounds: Bounds, *, share: float = 0.5) -> int:
    """The lowest tile zoom at which a tile over ``bounds`` should hold at most ``share`` of
    :data:`TILE_FEATURES` of a layer of ``features`` spread over them (the share leaves room
    for uneven density). A district of 783 grids: 0, every zoom. The megacity's 60,000 grids
    over ~112 km: 10, as a z9 tile there would hold ~15,000 (an estimate from the density,
    not a count). Below it the viewer asks for none of that layer's tiles and, for grids,
    says to zoom in; the streets' outlines stay."""
    west, south, east, north = bounds
    if features <= TILE_FEATURES * share:
        return 0
    km_per_degree = _EARTH_KM / 360
    cos = math.cos(math.radians((south + north) / 2))
    area = max((east - west) * km_per_degree * cos * (north - south) * km_per_degree, 1e-9)
    for zoom in range(23):
        tile = (_EARTH_KM * cos / 2**zoom) ** 2
        if features * min(1.0, tile / area) <= TILE_FEATURES * share:
            return zoom
    return 22


def viewer_style(
    *,
    kinds: Sequence[str],
    household_min: int,
    household_max: int,
    maxzoom: int = 16,
    grid_minzoom: int = 0,
    road_minzoom: int = 0,
    building_minzoom: int = 0,
) -> dict[str, Any]:
    """A MapLibre style (v8) with relative tile paths; the page makes them absolute. The grid,
    road and building tiles are asked for from their min zooms (:func:`feature_minzoom`)."""
    colours = categorical_colours(list(kinds))
    kind_match: list[Any] = ["match", ["get", "kind"]]
    for kind, colour in colours.items():
        kind_match += [kind, colour]
    kind_match.append(OTHER_COLOUR)
    if len(kind_match) == 3:  # no kinds: a match needs at least one label
        kind_match = ["literal", OTHER_COLOUR]
    households = ["coalesce", ["get", "households"], 0]
    band = [
        "case",
        ["<=", households, 0],
        NO_DATA_COLOUR,
        ["<", households, household_min],
        BELOW,
        ["<=", households, household_max],
        WITHIN,
        ABOVE,
    ]

    def source(layer: str, minzoom: int = 0) -> dict[str, Any]:
        return {
            "type": "vector",
            "tiles": [TILES.format(layer=layer)],
            "minzoom": minzoom,
            "maxzoom": maxzoom,
            "attribution": OSM_ATTRIBUTION_HTML,
        }

    return {
        "version": 8,
        "name": "gridwork",
        "sources": {
            "streets": source("streets"),
            "grids": source("grids", grid_minzoom),
            "buildings": source("buildings", building_minzoom),
            "roads": source("roads", road_minzoom),
            "facilities": source("facilities"),
        },
        "layers": [
            {"id": "background", "type": "background", "paint": {"background-color": "#f4f3ef"}},
            {
                "id": "buildings",
                "type": "fill",
                "source": "buildings",
                "source-layer": SOURCE_LAYER,
                "paint": {"fill-color": BUILDING_FILL, "fill-outline-color": "#b9b0a6"},
            },
            {
                "id": "grids-fill",
                "type": "fill",
                "source": "grids",
                "source-layer": SOURCE_LAYER,
                "paint": {"fill-color": band, "fill-opacity": 0.6},
            },
            {
                "id": "roads",
                "type": "line",
                "source": "roads",
                "source-layer": SOURCE_LAYER,
                "paint": {"line-color": "#8c8c8c", "line-width": 1},
            },
            {
                "id": "grids-line",
                "type": "line",
                "source": "grids",
                "source-layer": SOURCE_LAYER,
                "paint": {"line-color": "#d94801", "line-width": 1.2},
            },
            {
                "id": "streets-line",
                "type": "line",
                "source": "streets",
                "source-layer": SOURCE_LAYER,
                "paint": {"line-color": STREET_OUTLINE, "line-width": 2},
            },
            {
                "id": "facilities",
                "type": "circle",
                "source": "facilities",
                "source-layer": SOURCE_LAYER,
                "paint": {
                    "circle-radius": 5,
                    "circle-color": kind_match,
                    "circle-stroke-color": "#333333",
                    "circle-stroke-width": 1,
                },
            },
            _names("street-names", "streets", "name", size=15, colour=STREET_OUTLINE),
            _names("road-names", "roads", "name", size=11, colour="#444444", along=True),
            _names("grid-codes", "grids", "code", size=12, colour="#7f2704"),
            _names("facility-names", "facilities", "name", size=11, colour="#222222"),
        ],
    }


def _names(
    layer: str, source: str, field: str, *, size: int, colour: str, along: bool = False
) -> dict[str, Any]:
    """A layer of text: ``field`` of each feature of ``source`` from its :data:`NAME_ZOOM`,
    along the line for roads, in the device's fonts, haloed in white to read over anything;
    names that would overlap are left out."""
    layout: dict[str, Any] = {
        "text-field": ["coalesce", ["get", field], ""],
        "text-font": FONTS,
        "text-size": size,
        "text-max-width": 8,
    }
    if along:
        layout["symbol-placement"] = "line"
    return {
        "id": layer,
        "type": "symbol",
        "source": source,
        "source-layer": SOURCE_LAYER,
        "minzoom": NAME_ZOOM[source][0],
        "maxzoom": NAME_ZOOM[source][1],
        "layout": layout,
        "paint": {"text-color": colour, "text-halo-color": "#ffffff", "text-halo-width": 1.5},
    }


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>__GW_TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="__GW_STATIC__/maplibre/maplibre-gl.css">
<style>
.gw-viewer{position:relative;height:calc(100vh - 16rem);min-height:20rem;
border:1px solid #d5dbe3;border-radius:6px;overflow:hidden}
#map{position:absolute;inset:0;margin:0}
.gw-zoom-hint{position:absolute;top:.6rem;left:50%;transform:translateX(-50%);z-index:2;
background:rgba(255,255,255,.94);border:1px solid #d5dbe3;border-radius:4px;
padding:.3rem .7rem;font-size:.9rem}
.gw-key{display:flex;flex-wrap:wrap;gap:.2rem 1.2rem;align-items:center;margin-top:.5rem;
font-size:.85rem}
.gw-key i{display:inline-block;width:12px;height:10px;margin-right:4px;border:1px solid #777}
.gw-key i.line{height:0;border:0;border-top:3px solid}
.gw-key i.circle{width:10px;height:10px;border-radius:50%;border-color:#333}
.gw-key b{flex-basis:100%;margin-top:.3rem}
</style></head><body><div class="gw-viewer"><div id="map"></div>
<div class="gw-zoom-hint" id="gw-zoom-hint" role="status" hidden>__GW_ZOOM_HINT__</div></div>
<div class="gw-key gridwork-legend" id="gw-key" role="group" aria-label="__GW_LEGEND__"></div>
<script type="module">
import * as maplibregl from "__GW_STATIC__/maplibre/maplibre-gl.mjs";
const style = __GW_STYLE__;
for (const source of Object.values(style.sources)) {
  source.tiles = source.tiles.map((t) => window.location.origin + t);
}
const key = __GW_KEY__;
const words = __GW_WORDS__;
const box = document.getElementById("gw-key");
for (const [label, colour, symbol] of key) {
  const row = document.createElement(symbol === "title" ? "b" : "div");
  if (symbol !== "title") {
    const swatch = document.createElement("i");
    swatch.className = symbol;
    if (symbol === "line") swatch.style.borderTopColor = colour;
    else swatch.style.background = colour;
    row.appendChild(swatch);
  }
  row.appendChild(document.createTextNode(label));
  box.appendChild(row);
}
const map = new maplibregl.Map({container: "map", style, bounds: __GW_BOUNDS__,
  fitBoundsOptions: {padding: 20}, attributionControl: {compact: false}});
map.addControl(new maplibregl.NavigationControl({showCompass: false}));
window.gwMap = map;
const popup = new maplibregl.Popup({closeButton: false, closeOnClick: false});
map.on("mousemove", "grids-fill", (e) => {
  const p = e.features[0].properties;
  const div = document.createElement("div");
  div.className = "gw-popup";
  for (const [k, label] of words) {
    if (p[k] === undefined || p[k] === null) continue;
    const line = document.createElement("div");
    line.textContent = label + ": " + p[k];
    div.appendChild(line);
  }
  popup.setLngLat(e.lngLat).setDOMContent(div).addTo(map);
  map.getCanvas().style.cursor = "pointer";
});
map.on("mouseleave", "grids-fill", () => { popup.remove(); map.getCanvas().style.cursor = ""; });
map.on("zoomstart", () => popup.remove());  // a grid's words stay only over it
const hint = document.getElementById("gw-zoom-hint");
// A vector source's tiles are 512 px unless it says otherwise: its tile zoom z is drawn from
// map zoom z + 1, so below that map zoom the grid tiles are not asked for.
const grids = style.sources.grids;
const gridZoom = grids.minzoom + Math.log2((grids.tileSize || 512) / 256);
const showHint = () => { hint.hidden = map.getZoom() >= gridZoom; };
map.on("load", showHint);
map.on("zoomend", showHint);
map.once("idle", () => { window.gwReady = true; });
map.on("error", (e) => { window.gwErrors = (window.gwErrors || []).concat(String(e.error)); });
</script></body></html>"""


def viewer_page(
    bounds: Bounds,
    *,
    kinds: Sequence[str],
    household_min: int,
    household_max: int,
    static_url: str = "/static",
    kind_names: dict[str, str] | None = None,
    gettext: Gettext = english,
    grid_minzoom: int = 0,
    road_minzoom: int = 0,
    building_minzoom: int = 0,
) -> str:
    """The viewer's HTML, in the words ``gettext`` gives; ``bounds`` (west, south, east,
    north) is where it opens.

    The legend is HTML beside the map: grids by households against the band, buildings, the
    lines, and every facility kind's colour.
    """
    style = viewer_style(
        kinds=kinds,
        household_min=household_min,
        household_max=household_max,
        grid_minzoom=grid_minzoom,
        road_minzoom=road_minzoom,
        building_minzoom=building_minzoom,
    )
    names = kind_names or {}
    _ = gettext
    key = [
        [_("Households per grid"), "", "title"],
        [f"< {household_min} " + _("under the band"), BELOW, "fill"],
        [f"{household_min}–{household_max} " + _("in the band"), WITHIN, "fill"],
        [f"> {household_max} " + _("over the band"), ABOVE, "fill"],
        [_("no households"), NO_DATA_COLOUR, "fill"],
        [_("Ground"), "", "title"],
        [_("building"), BUILDING_FILL, "fill"],
        [_("Lines"), "", "title"],
        [_("grid boundary"), "#d94801", "line"],
        [_("street boundary"), STREET_OUTLINE, "line"],
        [_("road"), "#8c8c8c", "line"],
    ]
    words = [
        ["code", _("grid")],
        ["worker_name", _("worker")],
        ["households", _("households")],
    ]
    if kinds:
        key.append([_("Facilities"), "", "title"])
        for kind, colour in categorical_colours(list(kinds)).items():
            key.append([names.get(kind, kind), colour, "circle"])
    west, south, east, north = bounds

    def js(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")

    return (
        _PAGE.replace("__GW_STATIC__", static_url.rstrip("/"))
        .replace("__GW_BOUNDS__", js([[west, south], [east, north]]))
        .replace("__GW_TITLE__", escape(_("Vector-tile viewer")))
        .replace("__GW_LEGEND__", escape(_("Legend")))
        .replace("__GW_ZOOM_HINT__", escape(_("Zoom in to see the grids")))
        .replace("__GW_KEY__", js(key))
        .replace("__GW_WORDS__", js(words))
        .replace("__GW_STYLE__", js(style))  # last: it holds imported names
    )
