/* The household register (api/routers/household_pages.py): the grid's households on the
 * offline basemap, and the map of one household's form, where a tap places it.
 * Everything comes from the page itself or from gridwork: no request leaves the server. */
(function () {
  "use strict";
  var GRID = { color: "#1f5f8b", weight: 3, fill: true, fillOpacity: 0.04, className: "gw-hh-grid" };

  // The view is fitted to the grid before the basemap is attached (it asks for its bounds).
  function gridMap(id, outline) {
    var map = L.map(id, { zoomControl: true });
    var grid = L.geoJSON(outline, { style: GRID, interactive: false }).addTo(map);
    map.fitBounds(grid.getBounds(), { padding: [12, 12] });
    if (window.gridworkBasemap) window.gridworkBasemap(map, { url: "/basemap" });
    return map;
  }
  function dot(h) {
    return {
      radius: 6, weight: 2, fillOpacity: 0.9,
      color: h.lives_alone ? "#7f1d1d" : "#1e3a8a",
      fillColor: h.lives_alone ? "#dc2626" : "#2563eb",
      className: "gw-hh" + (h.lives_alone ? " gw-hh-alone" : "")
    };
  }

  var gwHouseholds = {};

  gwHouseholds.list = function (id, data) {
    var map = gridMap(id, data.outline);
    window.gwMap = map;
    data.households.forEach(function (h) {
      var words = h.code + " · " + data.labels.people + " " + h.size + (h.lives_alone ? " · " + data.labels.alone : "");
      var marker = L.circleMarker(L.latLng(h.lat, h.lon), dot(h)).bindTooltip(words).addTo(map);
      if (data.edit) marker.on("click", function () { location.href = "/app/households/" + encodeURIComponent(h.code); });
    });
  };

  gwHouseholds.place = function (id, data) {
    var map = gridMap(id, data.outline);
    window.gwMap = map;
    var lon = document.getElementById("gw-lon"), lat = document.getElementById("gw-lat");
    var moved = document.getElementById("gw-moved");
    var marker = null;
    function put(latlng) {
      if (marker) marker.setLatLng(latlng);
      else marker = L.circleMarker(latlng, dot({})).bindTooltip(data.labels.here).addTo(map);
    }
    if (data.point) put(L.latLng(Number(data.point[1]), Number(data.point[0])));
    map.on("click", function (e) {
      put(e.latlng);
      lon.value = e.latlng.lng.toFixed(7);
      lat.value = e.latlng.lat.toFixed(7);
      if (moved) moved.value = "1";
    });
  };

  window.gwHouseholds = gwHouseholds;
})();
