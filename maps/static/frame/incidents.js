/* The case pages' maps (issue 18): cases as dots (overdue in red), and the report form's
 * place picker (tap the map or use the phone's location). Leaflet + gridwork's basemap only. */
(function () {
  "use strict";
  function centreOf(el) {
    var c = el.getAttribute("data-centre");
    return c ? c.split(",").map(Number) : null;
  }
  function baseMap(el, view, zoom) {
    // the view first: the basemap asks the map for its bounds as soon as it is added
    var map = L.map(el, { zoomControl: true }).setView(view || [0, 0], view ? zoom : 2);
    if (window.gridworkBasemap) window.gridworkBasemap(map, { url: "/basemap" });
    return map;
  }
  var list = document.getElementById("casemap");
  if (list) {
    var points = JSON.parse(list.getAttribute("data-points") || "[]");
    var first = points.length ? [points[0].lat, points[0].lon] : centreOf(list);
    var map = baseMap(list, first, 15);
    var group = L.featureGroup().addTo(map);
    points.forEach(function (p) {
      var colour = p.overdue ? "#c62828" : (p.open ? "#1565c0" : "#6b7280");
      L.circleMarker([p.lat, p.lon], { radius: 7, color: "#fff", weight: 2, fillColor: colour, fillOpacity: 0.95 })
        .bindTooltip(p.label).on("click", function () { window.location = "/app/incidents/" + p.id; })
        .addTo(group);
    });
    if (points.length) map.fitBounds(group.getBounds().pad(0.2), { maxZoom: 17 });
  }
  var pick = document.getElementById("pickmap");
  if (pick) {
    var pmap = baseMap(pick, centreOf(pick), 15);
    // The caller's grids fill the picker (a worker's two grids, not a fixed zoom around the
    // middle of their area, which left half of it off the phone's screen).
    var extent = (pick.getAttribute("data-extent") || "").split(",").map(Number);
    if (extent.length === 4 && extent.every(isFinite)) {
      pmap.fitBounds([[extent[1], extent[0]], [extent[3], extent[2]]], { padding: [8, 8], maxZoom: 17 });
    }
    pick.gridworkMap = pmap; // for the browser tests: what the picker shows
    var marker = null;
    var where = document.getElementById("where");
    function choose(lat, lon) {
      document.getElementById("lat").value = lat.toFixed(7);
      document.getElementById("lon").value = lon.toFixed(7);
      if (marker) marker.setLatLng([lat, lon]); else marker = L.marker([lat, lon]).addTo(pmap);
      where.textContent = lat.toFixed(5) + ", " + lon.toFixed(5);
      pick.dispatchEvent(new CustomEvent("gridwork:place", { bubbles: true, detail: { lat: lat, lon: lon } }));
    }
    pmap.on("click", function (e) { choose(e.latlng.lat, e.latlng.lng); });
    // A refused report comes back with its place kept: show it.
    var lat0 = parseFloat(document.getElementById("lat").value);
    var lon0 = parseFloat(document.getElementById("lon").value);
    if (isFinite(lat0) && isFinite(lon0)) choose(lat0, lon0);
    var button = document.getElementById("locate");
    button.addEventListener("click", function () {
      if (!navigator.geolocation) return;
      navigator.geolocation.getCurrentPosition(function (pos) {
        choose(pos.coords.latitude, pos.coords.longitude);
        pmap.setView([pos.coords.latitude, pos.coords.longitude], 17);
      });
    });
  }
})();
