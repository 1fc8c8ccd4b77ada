/* The registers of points a worker keeps (api/routers/household_pages.py, facility_pages.py):
 * the points of a grid or an area on the offline basemap, and the map of one point's form,
 * where a tap places it. Everything comes from the page or from gridwork: no request leaves
 * the server. */
(function () {
  "use strict";
  var GRID = { color: "#1f5f8b", weight: 3, fill: true, fillOpacity: 0.04, className: "gw-pt-area" };

  // The view is fitted before the basemap is attached (it asks the map for its bounds).
  function areaMap(id, data) {
    var map = L.map(id, { zoomControl: true });
    var bounds = L.latLngBounds([]);
    if (data.outline) bounds.extend(L.geoJSON(data.outline, { style: GRID, interactive: false }).addTo(map).getBounds());
    if (data.extent) bounds.extend([[data.extent[1], data.extent[0]], [data.extent[3], data.extent[2]]]);
    (data.points || []).forEach(function (p) { bounds.extend(L.latLng(p.lat, p.lon)); });
    if (bounds.isValid()) map.fitBounds(bounds, { padding: [12, 12], maxZoom: 18 });
    else map.setView([0, 0], 2);
    if (window.gridworkBasemap) window.gridworkBasemap(map, { url: "/basemap" });
    return map;
  }
  function dot(marked) {
    return {
      radius: 6, weight: 2, fillOpacity: 0.9,
      color: marked ? "#7f1d1d" : "#1e3a8a",
      fillColor: marked ? "#dc2626" : "#2563eb",
      className: "gw-pt" + (marked ? " gw-pt-marked" : "")
    };
  }

  var gwPoints = {};

  // Each point: lon, lat, label (its tooltip), marked (drawn red), href (opened on a tap).
  gwPoints.list = function (id, data) {
    var map = areaMap(id, data);
    window.gwMap = map;
    data.points.forEach(function (p) {
      var marker = L.circleMarker(L.latLng(p.lat, p.lon), dot(p.marked)).bindTooltip(p.label).addTo(map);
      if (p.href) marker.on("click", function () { location.href = p.href; });
    });
  };

  gwPoints.place = function (id, data) {
    var map = areaMap(id, data);
    window.gwMap = map;
    var lon = document.getElementById("gw-lon"), lat = document.getElementById("gw-lat");
    var moved = document.getElementById("gw-moved");
    var marker = null;
    function put(latlng) {
      if (marker) marker.setLatLng(latlng);
      else marker = L.circleMarker(latlng, dot(false)).bindTooltip(data.labels.here).addTo(map);
    }
    if (data.point) put(L.latLng(Number(data.point[1]), Number(data.point[0])));
    map.on("click", function (e) {
      put(e.latlng);
      lon.value = e.latlng.lng.toFixed(7);
      lat.value = e.latlng.lat.toFixed(7);
      if (moved) moved.value = "1";
    });
  };

  window.gwPoints = gwPoints;
})();
