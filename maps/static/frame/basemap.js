/* gridwork's basemap for Leaflet: the ground from gridwork's own tables (GET /basemap),
 * fetched per viewport, drawn under every other layer. No tiles, no internet: labels use the
 * system's fonts, so Chinese and Latin names both render offline.
 *
 *   gridworkBasemap(map, {url: "/basemap"})
 *   gridworkBasemap(map, {url: "/basemap", gridNames: false})  // a plan's map: its grids are
 *                                                              // named by it, not the current
 */
(function () {
  "use strict";

  var ROAD_WIDTH = { motorway: 5, trunk: 5, primary: 4.5, secondary: 4, tertiary: 3.5 };
  var STYLE = {
    buildings: { color: "#c9bfb5", weight: 0.5, fillColor: "#e4ddd4", fillOpacity: 1 },
    streets: { color: "#6b4e9b", weight: 3, opacity: 0.8, dashArray: "8 4", fill: false },
    communities: { color: "#4b5563", weight: 2, opacity: 0.8, fill: false },
    grids: { color: "#8b95a3", weight: 1, opacity: 0.9, dashArray: "3 3", fill: false }
  };

  function label(props) {
    var local = props.name_local, name = props.name;
    if (local && name && local !== name) return local + " " + name;
    return local || name || props.code || "";
  }

  function centreOf(layer) {
    var b = layer.getBounds();
    return b.isValid() ? b.getCenter() : null;
  }

  window.gridworkBasemap = function (map, options) {
    var url = (options && options.url) || "/basemap";
    map.createPane("gwBasemap");
    map.getPane("gwBasemap").style.zIndex = 250;
    map.getPane("gwBasemap").style.pointerEvents = "none";
    map.createPane("gwLabels");
    map.getPane("gwLabels").style.zIndex = 450;  // above the areas, under markers and tooltips
    map.getPane("gwLabels").style.pointerEvents = "none";
    var group = L.layerGroup().addTo(map);
    var pending = null, timer = null, lastKey = "";

    function draw(data) {
      group.clearLayers();
      placed = [];
      var zoom = data.zoom, layers = data.layers;
      var common = { pane: "gwBasemap", interactive: false };
      L.geoJSON(layers.buildings, L.extend({ style: STYLE.buildings }, common)).addTo(group);
      // Roads: a casing, then the road, wider for main roads.
      L.geoJSON(layers.roads, L.extend({ style: function (f) {
        var w = (ROAD_WIDTH[f.properties.kind] || 2.5) + Math.max(0, zoom - 15);
        return { color: "#b8b1a8", weight: w + 1.5, opacity: 1 };
      } }, common)).addTo(group);
      L.geoJSON(layers.roads, L.extend({ style: function (f) {
        var w = (ROAD_WIDTH[f.properties.kind] || 2.5) + Math.max(0, zoom - 15);
        return { color: ROAD_WIDTH[f.properties.kind] ? "#fbe8a6" : "#ffffff", weight: w, opacity: 1 };
      } }, common)).addTo(group);
      ["grids", "communities", "streets"].forEach(function (name) {
        L.geoJSON(layers[name], L.extend({ style: STYLE[name] }, common)).addTo(group);
      });
      // Names: areas first (at their centre), then one per road name (its middle piece).
      // A plan's map names its own grids: the current ones would sit beside them, named alike.
      var gridNames = !(options && options.gridNames === false);
      var areaLayer = zoom >= 16 && gridNames ? "grids" : zoom >= 13 ? "communities" : "streets";
      L.geoJSON(layers[areaLayer]).eachLayer(function (layer) {
        var text = areaLayer === "grids" ? layer.feature.properties.code : label(layer.feature.properties);
        var c = centreOf(layer);
        if (text && c) addLabel(c, text, "gw-area-label");
      });
      var seen = {}, count = 0;
      if (zoom >= 15) {
        L.geoJSON(layers.roads).eachLayer(function (layer) {
          var text = label(layer.feature.properties);
          if (!text || seen[text] || count > 150) return;
          seen[text] = true; count += 1;
          var lls = layer.getLatLngs(), mid = lls[Math.floor(lls.length / 2)];
          if (mid && mid.lat !== undefined) addLabel(mid, text, "gw-road-label");
        });
      }
    }

    var placed = [];
    function addLabel(latlng, text, cls) {
      // Keep labels apart: one within ~70 x 18 px of another is left out.
      var p = map.latLngToContainerPoint(latlng);
      for (var i = 0; i < placed.length; i++) {
        if (Math.abs(placed[i].x - p.x) < 70 && Math.abs(placed[i].y - p.y) < 18) return;
      }
      placed.push(p);
      var span = document.createElement("span");
      span.textContent = text;  // text, never HTML: names come from imported files
      L.marker(latlng, {
        pane: "gwLabels", interactive: false, keyboard: false,
        icon: L.divIcon({ className: cls, html: span.outerHTML, iconSize: null })
      }).addTo(group);
    }

    function refresh() {
      // The server draws whole zoom levels; a map with fractional zoom (the planner's snaps
      // to quarters) asks for the nearest one, or it is refused and shows no ground.
      var b = map.getBounds(), z = Math.round(map.getZoom());
      var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) {
        return v.toFixed(5);
      });
      bbox[0] = Math.max(-180, bbox[0]); bbox[2] = Math.min(180, bbox[2]);
      bbox[1] = Math.max(-90, bbox[1]); bbox[3] = Math.min(90, bbox[3]);
      var key = bbox.join(",") + "/" + z;
      if (key === lastKey) return;
      lastKey = key;
      if (pending && pending.abort) pending.abort();
      pending = new AbortController();
      fetch(url + "?bbox=" + bbox.join(",") + "&zoom=" + z, {
        credentials: "same-origin", signal: pending.signal, headers: { Accept: "application/json" }
      }).then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) draw(data); })
        .catch(function () { /* offline file or aborted: the map still works without it */ });
    }

    map.on("moveend", function () { clearTimeout(timer); timer = setTimeout(refresh, 120); });
    // A map made without a view yet (pages that fit it to their data later) asks once it has one.
    map.whenReady(refresh);
    return group;
  };

  var css = document.createElement("style");
  css.textContent =
    ".gw-road-label span{font:11px system-ui,'WenQuanYi Micro Hei',sans-serif;color:#4b4033;" +
    "white-space:nowrap;text-shadow:0 0 3px #fff,0 0 3px #fff;position:relative;left:-50%}" +
    ".gw-area-label span{font:600 12px system-ui,'WenQuanYi Micro Hei',sans-serif;color:#374151;" +
    "white-space:nowrap;text-shadow:0 0 3px #fff,0 0 3px #fff;position:relative;left:-50%}" +
    ".leaflet-container{background:#f2efe9}";
  document.head.appendChild(css);
})();
