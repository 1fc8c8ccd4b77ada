/* The care staff's console (api/routers/care_pages.py): small maps, the locate page, the safe
 * zone editor, the household search of the enrolment form and the live alerts inbox.
 * Everything comes from the page itself or from gridwork: no request leaves the server. */
(function () {
  "use strict";
  var ZONE = { color: "#15803d", weight: 2, fillColor: "#22c55e", fillOpacity: 0.12 };

  // The view is set before the basemap is attached: it asks the map for its bounds at once.
  function baseMap(id, centre) {
    var map = L.map(id, { zoomControl: true }).setView(centre, 16);
    if (window.gridworkBasemap) window.gridworkBasemap(map, { url: "/basemap" });
    return map;
  }
  function centreOf(data) {
    if (data.fix) return L.latLng(data.fix.lat, data.fix.lon);
    if (data.home) return L.latLng(data.home[1], data.home[0]);
    if (data.zone) return L.geoJSON(data.zone).getBounds().getCenter();
    return L.latLng(0, 0);
  }
  function ll(lon, lat) { return L.latLng(lat, lon); }
  function homeMarker(map, home, label) {
    if (!home) return null;
    return L.circleMarker(ll(home[0], home[1]), {
      radius: 7, color: "#1e3a8a", weight: 2, fillColor: "#3b82f6", fillOpacity: 1, className: "gw-home"
    }).bindTooltip(label).addTo(map);
  }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  var gwCare = {};

  gwCare.zoneMap = function (id, data) {
    if (!data.zone) { document.getElementById(id).style.display = "none"; return; }
    var map = baseMap(id, centreOf(data));
    var layer = L.geoJSON(data.zone, { style: ZONE }).addTo(map);
    map.fitBounds(layer.getBounds(), { padding: [10, 10] });
  };

  gwCare.locate = function (id, data) {
    var map = baseMap(id, centreOf(data));
    window.gwMap = map;
    var bounds = L.latLngBounds([]);
    var labels = data.labels;
    if (data.zone) {
      var z = L.geoJSON(data.zone, { style: ZONE }).bindTooltip(labels.zone).addTo(map);
      bounds.extend(z.getBounds());
    }
    if (data.grid) {  // the grid the last position lies in: whose ground it is
      L.geoJSON(data.grid.outline, {
        style: { color: "#1f2937", weight: 2.5, dashArray: "8 5", fill: false, className: "gw-fix-grid" }
      }).bindTooltip(labels.grid + data.grid.label, { sticky: true }).addTo(map);
    }
    homeMarker(map, data.home, labels.home);
    var trail = data.trail || [];
    var trailLine = null, walked = null, cursor = null;
    if (trail.length > 1) {
      var pts = trail.map(function (t) { return ll(t.lon, t.lat); });
      trailLine = L.polyline(pts, { color: "#64748b", weight: 3, opacity: 0.6, dashArray: "4 4", className: "gw-trail" }).addTo(map);
      walked = L.polyline([], { color: "#7c3aed", weight: 4, opacity: 0.9, className: "gw-trail-walked" }).addTo(map);
      cursor = L.circleMarker(pts[pts.length - 1], { radius: 6, color: "#4c1d95", weight: 2, fillColor: "#a78bfa", fillOpacity: 1, className: "gw-cursor" }).addTo(map);
    }
    // No fix yet (a watch just handed out): the map shows the home and the safe zone alone.
    var fix = data.fix;
    var here = fix ? ll(fix.lon, fix.lat) : null;
    if (fix && fix.accuracy_m) {
      L.circle(here, { radius: fix.accuracy_m, color: "#dc2626", weight: 1, fillColor: "#f87171", fillOpacity: 0.2, className: "gw-accuracy" })
        .bindTooltip(labels.accuracy.replace("%(m)s", Math.round(fix.accuracy_m))).addTo(map);
    }
    if (fix) {
      L.circleMarker(here, { radius: 8, color: "#7f1d1d", weight: 2, fillColor: "#dc2626", fillOpacity: 1, className: "gw-fix" })
        .bindTooltip(labels.fix + " · " + fix.when).addTo(map);
      bounds.extend(here);
    }
    if (data.alert) {
      var a = ll(data.alert.lon, data.alert.lat);
      L.circleMarker(a, { radius: 8, color: "#9a3412", weight: 3, fillColor: "#fb923c", fillOpacity: 1, className: "gw-alert-pos" })
        .bindTooltip(labels.alert + " · " + data.alert.kind + " · " + data.alert.when, { permanent: false }).addTo(map);
      bounds.extend(a);
    }
    var routeLayer = null;
    var facilities = data.facilities || [];
    facilities.forEach(function (f, i) {
      L.circleMarker(ll(f.lon, f.lat), { radius: 6, color: "#065f46", weight: 2, fillColor: "#10b981", fillOpacity: 1, className: "gw-facility" })
        .bindTooltip(f.name).on("click", function () { showRoute(i); }).addTo(map);
    });
    function showRoute(i) {
      if (routeLayer) map.removeLayer(routeLayer);
      routeLayer = null;
      var f = facilities[i];
      document.querySelectorAll(".gw-route-btn").forEach(function (b) {
        b.setAttribute("aria-pressed", String(Number(b.dataset.i) === i));
      });
      if (!f || !f.route) return;
      routeLayer = L.geoJSON(f.route.geometry, { style: { color: "#2563eb", weight: 5, opacity: 0.85, className: "gw-route" } })
        .bindTooltip(labels.route + " · " + f.name + " · " + Math.round(f.route.length_m) + " m").addTo(map);
      return routeLayer;
    }
    document.querySelectorAll(".gw-route-btn").forEach(function (b) {
      b.addEventListener("click", function () {
        var r = showRoute(Number(b.dataset.i));
        if (r) map.fitBounds(here ? r.getBounds().extend(here) : r.getBounds(), { padding: [30, 30] });
      });
    });
    if (facilities.length) {
      var first = showRoute(0);
      if (first) bounds.extend(first.getBounds());
    }
    var slider = document.getElementById("gw-slider");
    var when = document.getElementById("gw-slider-time");
    function moveTo(i) {
      if (!trail.length || !cursor) return;
      var t = trail[i];
      cursor.setLatLng(ll(t.lon, t.lat));
      walked.setLatLngs(trail.slice(0, i + 1).map(function (p) { return ll(p.lon, p.lat); }));
      if (when) when.textContent = t.when;
    }
    if (slider) {
      slider.addEventListener("input", function () { moveTo(Number(slider.value)); });
      var start = trail.length - 1;
      if (data.alert) {  // open at the moment of the alert
        var best = 0;
        trail.forEach(function (t, i) { if (Math.abs(t.t - data.alert.t) < Math.abs(trail[best].t - data.alert.t)) best = i; });
        start = best;
      }
      slider.value = String(start);
      moveTo(start);
    }
    // Without a fix or a zone the view stays on the home, where baseMap centred it.
    if (bounds.isValid()) map.fitBounds(bounds, { padding: [30, 30], maxZoom: 17 });
    window.gwReady = true;
  };

  gwCare.zoneEditor = function (id, data) {
    var map = baseMap(id, centreOf(data));
    window.gwMap = map;
    var form = document.getElementById("gw-zone-form");
    var lon = document.getElementById("gw-lon"), lat = document.getElementById("gw-lat");
    var geometry = document.getElementById("gw-geometry");
    var radius = document.getElementById("radius_m");
    var corners = [];
    var drawn = null, current = null;
    if (data.zone) current = L.geoJSON(data.zone, { style: ZONE }).bindTooltip(data.labels.zone).addTo(map);
    var home = homeMarker(map, data.home, data.labels.home);
    function kind() { var c = form.querySelector("input[name=kind]:checked"); return c ? c.value : "home_grid"; }
    function redraw() {
      if (drawn) map.removeLayer(drawn);
      drawn = null;
      var k = kind();
      form.querySelectorAll("[data-for]").forEach(function (d) { d.hidden = d.dataset.for !== k; });
      var style = { color: "#b45309", weight: 3, fillColor: "#f59e0b", fillOpacity: 0.15, dashArray: "6 4", className: "gw-drawn" };
      if (k === "circle" && lon.value && lat.value) {
        drawn = L.circle(ll(Number(lon.value), Number(lat.value)), Object.assign({ radius: Number(radius.value) || 300 }, style)).addTo(map);
      } else if (k === "polygon" && corners.length) {
        drawn = (corners.length > 2 ? L.polygon(corners, style) : L.polyline(corners, style)).addTo(map);
        var ring = corners.map(function (c) { return [c.lng, c.lat]; });
        ring.push(ring[0]);
        geometry.value = corners.length > 2 ? JSON.stringify({ type: "Polygon", coordinates: [ring] }) : "";
      }
      document.getElementById("gw-corners").textContent = corners.length ? String(corners.length) : "";
    }
    if (geometry.value) {
      try { JSON.parse(geometry.value).coordinates[0].slice(0, -1).forEach(function (c) { corners.push(ll(c[0], c[1])); }); } catch (e) { corners = []; }
    }
    map.on("click", function (e) {
      var k = kind();
      if (k === "circle") { lon.value = e.latlng.lng.toFixed(7); lat.value = e.latlng.lat.toFixed(7); }
      if (k === "polygon") corners.push(e.latlng);
      redraw();
    });
    form.addEventListener("change", redraw);
    radius.addEventListener("input", redraw);
    document.getElementById("gw-clear").addEventListener("click", function () { corners = []; geometry.value = ""; redraw(); });
    redraw();
    if (current) map.fitBounds(current.getBounds(), { padding: [20, 20] });
    else if (home) map.setView(home.getLatLng(), 16);
    window.gwReady = true;
  };

  gwCare.enrol = function (labels) {
    var input = document.getElementById("gw-hh-q");
    var list = document.getElementById("gw-hh-results");
    var code = document.getElementById("household_code");
    var chosen = document.getElementById("gw-hh-chosen");
    function find() {
      var q = input.value.trim();
      if (q.length < 2) return;
      fetch("/app/elders/households?q=" + encodeURIComponent(q), { headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (body) {
          list.textContent = "";
          var found = body.households || [];
          if (!found.length) list.appendChild(el("li", { "class": "muted" }, labels.none));
          found.forEach(function (h) {
            var li = el("li");
            var b = el("button", { type: "button", "class": "gw-hh", "data-code": h.code }, labels.choose);
            b.addEventListener("click", function () {
              code.value = h.code;
              chosen.textContent = labels.chosen + " " + h.code + " · " + labels.grid + " " + h.grid_code;
              list.textContent = "";
            });
            li.appendChild(b);
            li.appendChild(el("span", {}, " " + h.code + " · " + labels.grid + " " + h.grid_code +
              (h.road ? " · " + labels.near + " " + h.road : "") + (h.building ? " · " + h.building : "")));
            list.appendChild(li);
          });
        });
    }
    document.getElementById("gw-hh-find").addEventListener("click", find);
    input.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); find(); } });
  };

  gwCare.inbox = function (data) {
    var labels = data.labels;
    var list = document.getElementById("gw-inbox");
    var live = document.getElementById("gw-live");
    var audio = null;
    window.gwBeeps = 0;
    window.gwNotified = [];
    function beep() {
      try {
        audio = audio || new (window.AudioContext || window.webkitAudioContext)();
        if (audio.state === "suspended") audio.resume();
        [0, 0.25].forEach(function (at) {
          var osc = audio.createOscillator(), gain = audio.createGain();
          osc.type = "sine"; osc.frequency.value = 880;
          gain.gain.setValueAtTime(0.0001, audio.currentTime + at);
          gain.gain.exponentialRampToValueAtTime(0.3, audio.currentTime + at + 0.02);
          gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + at + 0.18);
          osc.connect(gain).connect(audio.destination);
          osc.start(audio.currentTime + at); osc.stop(audio.currentTime + at + 0.2);
        });
        window.gwBeeps += 1;
      } catch (e) { /* no sound on this device */ }
    }
    function notify(a) {
      if (!("Notification" in window) || Notification.permission !== "granted") return;
      try {
        var n = new Notification(a.kind_label + " · " + a.elder_name, { body: a.when + (a.grid_code ? " · " + labels.grid + " " + a.grid_code : ""), tag: "gw-alert-" + a.id });
        n.onclick = function () { window.focus(); location.href = "/app/elders/" + a.elder_id + "/locate?alert=" + a.id; };
        window.gwNotified.push(a.id);
      } catch (e) { /* notifications refused */ }
    }
    document.getElementById("gw-loud").addEventListener("click", function () {
      beep();
      if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
    });
    // One note for whichever button is pressed: two note boxes side by side (one per button)
    // left staff guessing which note went with which.
    function actionForm(a) {
      var base = "/app/alerts/" + a.id + "/";
      var f = el("form", { method: "post", action: base + "close", "class": "gw-act" });
      f.appendChild(el("input", { name: "note", maxlength: "500", placeholder: labels.note, "aria-label": labels.note }));
      if (a.status === "open") f.appendChild(el("button", { type: "submit", "class": "primary", formaction: base + "ack" }, labels.ack));
      f.appendChild(el("button", { type: "submit", formaction: base + "close" }, labels.close));
      return f;
    }
    function item(a, fresh) {
      var li = el("li", { "class": "gw-alert gw-" + a.kind + " gw-status-" + a.status + (fresh ? " gw-fresh" : ""), id: "alert-" + a.id, "data-kind": a.kind, "data-elder": String(a.elder_id) });
      var head = el("div", { "class": "gw-alert-head" });
      if (fresh) head.appendChild(el("span", { "class": "gw-new" }, labels["new"]));
      head.appendChild(el("strong", {}, a.kind_label));
      head.appendChild(el("span", {}, " · " + a.elder_name));
      head.appendChild(el("span", { "class": "muted" }, " · " + a.when));
      li.appendChild(head);
      var info = el("div", { "class": "muted" }, (a.grid_code ? labels.grid + " " + a.grid_code : "") +
        (a.home_grid_code && a.home_grid_code !== a.grid_code ? " · " + labels.home_grid + " " + a.home_grid_code : "") +
        " · " + a.status_label + (a.acknowledged_by ? " (" + labels.by + " " + a.acknowledged_by + ")" : ""));
      li.appendChild(info);
      if (a.by_itself && labels.by_itself[a.kind]) li.appendChild(el("div", { "class": "gw-back gw-back-" + a.kind }, labels.by_itself[a.kind]));
      if (a.recipients.length) {
        var who = el("div", { "class": "gw-routed" }, labels.routed);
        a.recipients.forEach(function (r) {
          who.appendChild(document.createTextNode(r.name + " "));
          if (r.phone) who.appendChild(el("a", { href: "tel:" + r.phone.replace(/\s/g, ""), "class": "gw-call" }, labels.call + " " + r.phone));
          who.appendChild(document.createTextNode(" "));
        });
        li.appendChild(who);
      }
      var acts = el("div", { "class": "gw-acts" });
      acts.appendChild(el("a", { href: "/app/elders/" + a.elder_id + "/locate?alert=" + a.id, "class": "button primary gw-locate" }, labels.locate));
      if (a.status !== "closed") acts.appendChild(actionForm(a));
      li.appendChild(acts);
      return li;
    }
    data.alerts.forEach(function (a) { list.appendChild(item(a, false)); });
    // The last closed ones, folded away below; unfolded when one was just handled here.
    var closed = document.getElementById("gw-closed");
    if (data.closed.length) {
      closed.hidden = false;
      closed.querySelector("summary").textContent = labels.closed_lately.replace("__N__", String(data.closed.length));
      var closedList = document.getElementById("gw-closed-list");
      data.closed.forEach(function (a) {
        var li = closedList.appendChild(item(a, false));
        if (a.id === data.done) li.classList.add("gw-fresh", "gw-done");
      });
      if (data.closed.some(function (a) { return a.id === data.done; })) closed.open = true;
    }
    function empty() {
      if (!list.children.length) list.appendChild(el("li", { "class": "muted gw-empty" }, labels.none));
    }
    empty();
    if (!window.EventSource) return;
    var source = new EventSource("/app/alerts/stream?after=" + data.after);
    source.onopen = function () { live.textContent = labels.live; window.gwLive = true; };
    source.onerror = function () { live.textContent = labels.offline; window.gwLive = false; };
    source.addEventListener("alert", function (e) {
      var a = JSON.parse(e.data);
      var gone = list.querySelector(".gw-empty");
      if (gone) gone.remove();
      if (document.getElementById("alert-" + a.id)) return;
      // A zone alert closes the elder's earlier ones on the server (back in: the exit;
      // out again: the last return); say so on their cards, whose buttons would be refused.
      if (labels.zone_kinds.indexOf(a.kind) >= 0) {
        labels.zone_kinds.forEach(function (kind) {
          list.querySelectorAll('li[data-kind="' + kind + '"][data-elder="' + a.elder_id + '"]').forEach(function (old) {
            if (old.classList.contains("gw-status-closed")) return;
            old.classList.remove("gw-status-open", "gw-status-acknowledged");
            old.classList.add("gw-status-closed");
            old.querySelectorAll("form").forEach(function (f) { f.remove(); });
            old.insertBefore(el("div", { "class": "gw-back gw-back-" + kind }, labels.by_itself[kind]), old.querySelector(".gw-acts"));
          });
        });
      }
      list.insertBefore(item(a, true), list.firstChild);
      if (data.loud.indexOf(a.kind) >= 0) { beep(); notify(a); }
    });
    // An alert acknowledged or closed elsewhere (a colleague, or by itself when the watch
    // reported again): its card says so at once; a closed one moves down into the fold.
    source.addEventListener("status", function (e) {
      var a = JSON.parse(e.data);
      var old = document.getElementById("alert-" + a.id);
      if (!old || old.classList.contains("gw-status-" + a.status)) return;
      var now = item(a, false);
      now.classList.add("gw-changed");
      if (a.status === "closed") {
        old.remove();
        var folded = document.getElementById("gw-closed-list");
        closed.hidden = false;
        folded.insertBefore(now, folded.firstChild);
        closed.querySelector("summary").textContent = labels.closed_lately.replace("__N__", String(folded.children.length));
        empty();
      } else {
        old.replaceWith(now);
      }
    });
  };

  window.gwCare = gwCare;
})();
