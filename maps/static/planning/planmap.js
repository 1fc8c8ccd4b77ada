/* gridwork planning maps: a plan's grids coloured distinctly over the basemap, with codes and
 * households; compare maps side by side. Vendored Leaflet only (no internet). */
(function () {
  "use strict";
  var PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
    "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6", "#ff7f00", "#6a3d9a", "#b15928", "#8dd3c7",
    "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69"];

  function colourOf(codes) {
    var sorted = codes.slice().sort(), out = {};
    sorted.forEach(function (c, i) { out[c] = PALETTE[i % PALETTE.length]; });
    return out;
  }

  function bandClass(n, lo, hi) { return n < lo ? "under" : n > hi ? "over" : "inband"; }

  function baseMap(el) {
    var map = L.map(el, { preferCanvas: false, zoomSnap: 0.25 });
    if (window.gridworkBasemap) window.gridworkBasemap(map, { url: "/basemap", gridNames: false });
    return map;
  }

  function overlaps(r, s) {
    return r.left < s.right && s.left < r.right && r.top < s.bottom && s.top < r.bottom;
  }

  // Permanent labels that would lie over one another (a small map, a phone) are hidden, the
  // larger grids' kept: zooming in shows the rest. Sorted out again at every zoom.
  function declutter(map, layer) {
    var labelled = [];
    layer.eachLayer(function (l) {
      var tip = l.getTooltip && l.getTooltip(), el = tip && tip.getElement();
      if (!el) return;
      var b = l.getBounds(), ne = map.latLngToLayerPoint(b.getNorthEast());
      var sw = map.latLngToLayerPoint(b.getSouthWest());
      labelled.push({ el: el, size: Math.abs((ne.x - sw.x) * (ne.y - sw.y)) });
    });
    labelled.sort(function (a, b) { return b.size - a.size; });
    var kept = [];
    labelled.forEach(function (x) {
      x.el.style.visibility = "";
      var r = x.el.getBoundingClientRect();
      var clash = kept.some(function (k) { return overlaps(r, k); });
      x.el.style.visibility = clash ? "hidden" : "";
      if (!clash) kept.push(r);
    });
  }

  function drawGrids(map, geojson, lo, hi, opts) {
    var codes = geojson.features.map(function (f) { return f.properties.code; });
    var colours = colourOf(codes);
    var layer = L.geoJSON(geojson, {
      style: function (f) {
        return { color: "#222", weight: 2, fillColor: colours[f.properties.code], fillOpacity: opts && opts.fill === false ? 0 : 0.45 };
      },
      onEachFeature: function (f, l) {
        var p = f.properties, label = (p.published_code || p.code) + "<br>" + p.households;
        l.bindTooltip(label, { permanent: !!(opts && opts.labels), direction: "center", className: "grid-label " + bandClass(p.households, lo, hi) });
      }
    }).addTo(map);
    if (layer.getBounds().isValid()) map.fitBounds(layer.getBounds(), { padding: [8, 8] });
    if (opts && opts.labels) {
      declutter(map, layer);
      map.on("zoomend resize", function () { declutter(map, layer); });
    }
    return layer;
  }

  window.gridworkPlanColours = colourOf;
  window.gridworkBandClass = bandClass;
  window.gridworkBaseMap = baseMap;

  window.gridworkPlanView = function (root) {
    var el = root.querySelector(".planmap"), map = baseMap(el);
    var lo = +root.dataset.min, hi = +root.dataset.max;
    fetch("/plans/" + root.dataset.plan + "/grids", { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (g) { drawGrids(map, g, lo, hi, { labels: true }); });
    return map;
  };

  window.gridworkCompare = function (ids) {
    var maps = [];
    ids.forEach(function (id) {
      var el = document.getElementById(id);
      if (!el) return;
      var map = baseMap(el), url;
      if (el.dataset.current) url = "/app/plans/current.geojson?community=" + encodeURIComponent(el.dataset.current);
      else url = "/plans/" + el.dataset.plan + "/grids";
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (g) {
        drawGrids(map, g, +(el.dataset.min || 150), +(el.dataset.max || 180), { labels: true });
      });
      maps.push(map);
    });
    // Moving one map moves the others: the same streets side by side.
    var syncing = false;
    maps.forEach(function (m) {
      m.on("moveend", function () {
        if (syncing) return;
        syncing = true;
        maps.forEach(function (o) { if (o !== m) o.setView(m.getCenter(), m.getZoom(), { animate: false }); });
        syncing = false;
      });
    });
  };
})();
