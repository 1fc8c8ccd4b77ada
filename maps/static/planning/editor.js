/* The draft editor (Districtr manner): units coloured by grid; pick a grid, then click or brush
 * units into it. Counts change live while brushing; the server checks the band and contiguity
 * and refuses with its reasons. Undo/redo, locks and re-split are kept with the plan. */
(function () {
  "use strict";
  var root = document.getElementById("workspace");
  if (!root) return;
  var planId = root.dataset.plan, lo = +root.dataset.min, hi = +root.dataset.max;
  var words = JSON.parse(root.dataset.words || "{}");
  function t(w, vals) {
    var s = words[w] || w;
    Object.keys(vals || {}).forEach(function (k) { s = s.replace("%(" + k + ")s", vals[k]); });
    return s;
  }
  var map = window.gridworkBaseMap(document.getElementById("planmap"));
  window.gwPlanMap = map;  // for the browser tests and the console: the editor's Leaflet map
  var msg = document.getElementById("message"), target = document.getElementById("target");
  var brush = document.getElementById("brush"), table = document.querySelector("#grids tbody");
  var unitLayer = null, outlineLayer = null, byUnit = {}, layerOf = {}, colours = {};
  var locked = {}, stroke = {}, painting = false, busy = false, first = true;
  var checking = false, checkAgain = false, shownHistory = [];
  // Moves and checks go through the page's route: the same rules, reasons in the page's language.
  function move(units, to, checkOnly) {
    return api("POST", "/moves", { units: units.map(Number), to_grid: to, check_only: !!checkOnly }, "/app/plans/");
  }

  function say(text, cls) { msg.textContent = text; msg.className = "message " + (cls || ""); }

  function api(method, path, body, base) {
    return fetch((base || "/plans/") + planId + path, {
      method: method, credentials: "same-origin",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) { return r.json().then(function (j) { return { status: r.status, body: j }; }); });
  }

  function gridOf(u) { return stroke[u] !== undefined ? stroke[u] : byUnit[u].grid; }

  function counts() {
    var c = {};
    Object.keys(colours).forEach(function (g) { c[g] = 0; });
    Object.keys(byUnit).forEach(function (u) { var g = gridOf(u); c[g] = (c[g] || 0) + byUnit[u].households; });
    return c;
  }

  function styleOf(u) {
    var g = gridOf(u), pending = stroke[u] !== undefined;
    return { color: pending ? "#000" : "#555", weight: pending ? 2 : 0.4, fillColor: colours[g] || "#999",
      fillOpacity: pending ? 0.75 : (locked[g] ? 0.25 : 0.5) };
  }

  function renderTable() {
    var c = counts();
    table.innerHTML = "";
    Object.keys(colours).sort().forEach(function (g) {
      var n = c[g] || 0, band = window.gridworkBandClass(n, lo, hi);
      var word = band === "under" ? t("under the range") : band === "over" ? t("over the range") : t("within the range");
      var tr = document.createElement("tr");
      tr.dataset.grid = g;
      if (target.value === g) tr.className = "target";
      tr.innerHTML = '<td><span class="swatch" style="background:' + colours[g] + '"></span></td>' +
        '<td><button type="button" class="pick code">' + g + '</button></td>' +
        '<td class="' + band + '" title="' + word + '"><span class="count">' + n + '</span> <small>' + word + '</small></td>' +
        '<td><input type="checkbox" class="lock" aria-label="' + t("locked") + ' ' + g + '"' + (locked[g] ? " checked" : "") + '></td>';
      table.appendChild(tr);
    });
  }

  function fillTargets() {
    var keep = target.value;
    target.innerHTML = '<option value="">—</option>';
    Object.keys(colours).sort().forEach(function (g) {
      var o = document.createElement("option"); o.value = g; o.textContent = g; target.appendChild(o);
    });
    if (colours[keep]) target.value = keep;
  }

  function restyle() { Object.keys(layerOf).forEach(function (u) { layerOf[u].setStyle(styleOf(u)); }); renderTable(); }

  function load() {
    return Promise.all([
      api("GET", "/units"), api("GET", "/grids"), api("GET", "/metrics", null, "/app/plans/"),
      api("GET", "/steps"), api("GET", "/history", null, "/app/plans/")
    ]).then(function (res) {
      var units = res[0].body, grids = res[1].body, rows = res[2].body, steps = res[3].body;
      var history = res[4].body;
      shownHistory = history;
      byUnit = {}; layerOf = {}; stroke = {}; locked = {};
      grids.features.forEach(function (f) { if (f.properties.locked) locked[f.properties.code] = true; });
      colours = window.gridworkPlanColours(grids.features.map(function (f) { return f.properties.code; }));
      units.features.forEach(function (f) { byUnit[f.properties.unit] = f.properties; });
      if (unitLayer) map.removeLayer(unitLayer);
      if (outlineLayer) map.removeLayer(outlineLayer);
      unitLayer = L.geoJSON(units, {
        style: function (f) { return styleOf(f.properties.unit); },
        onEachFeature: function (f, l) {
          var u = f.properties.unit;
          layerOf[u] = l;
          l.on("click", function () { if (!brush.checked) submit([u]); });
          l.on("mouseover", function () { if (painting) paint(u); });
          l.on("mousedown", function () { if (brush.checked) { painting = true; paint(u); } });
        }
      }).addTo(map);
      outlineLayer = L.geoJSON(grids, { interactive: false, style: { color: "#111", weight: 2.5, fill: false } }).addTo(map);
      if (first && unitLayer.getBounds().isValid()) { map.fitBounds(unitLayer.getBounds()); first = false; }
      fillTargets(); renderTable();
      // The panel's words come from the server, as the page first drew them.
      rows.forEach(function (m) {
        var td = document.querySelector('[data-metric="' + m.key + '"]');
        if (td) td.textContent = m.value;
      });
      document.getElementById("undo").disabled = !steps.can_undo;
      document.getElementById("redo").disabled = !steps.can_redo;
      // The changes as the server says them (the page's language, local time).
      var hist = document.getElementById("history");
      hist.innerHTML = "";
      history.forEach(function (s) {
        var li = document.createElement("li"), who = document.createElement("span");
        li.className = "step-" + s.state;
        who.className = "muted";
        who.textContent = s.by + (s.note ? " · " + s.note : "");
        li.appendChild(document.createTextNode(s.text + " "));
        li.appendChild(who);
        hist.appendChild(li);
      });
      if (!history.length) {
        var none = document.createElement("li");
        none.className = "muted"; none.textContent = hist.dataset.empty;
        hist.appendChild(none);
      }
    });
  }

  function paint(u) {
    if (!target.value || byUnit[u].grid === target.value) return;
    stroke[u] = target.value;
    layerOf[u].setStyle(styleOf(u));
    renderTable();
    check();
  }

  // While brushing, ask the server whether the stroke so far would be accepted (one
  // question at a time; the latest stroke is asked again when the answer comes).
  function check() {
    if (checking) { checkAgain = true; return; }
    var units = Object.keys(stroke);
    if (!units.length || !target.value) return;
    checking = true; say(t("Checking…"));
    move(units, target.value, true).then(function (r) {
      checking = false;
      if (!painting) { checkAgain = false; return; }  // the stroke is over: its move answers
      if (checkAgain) { checkAgain = false; check(); return; }
      if (r.status === 200) say(t("Can be moved."), "");
      else say(t("Would be refused:") + " " + (r.body.problems || []).join("; "), "warn");
    });
  }

  function submit(units) {
    if (!target.value) { say(t("Choose the grid to paint into first."), "problem"); stroke = {}; restyle(); return; }
    units = units.filter(function (u) { return byUnit[u].grid !== target.value; });
    if (!units.length || busy) { stroke = {}; restyle(); return; }
    busy = true; say(t("Working…"));
    var to = target.value;
    move(units, to, false).then(function (r) {
      busy = false;
      if (r.status === 200) { say(t("Moved %(n)s unit(s) into %(grid)s.", { n: units.length, grid: to }), "ok"); return load(); }
      var reasons = r.body.problems || [r.body.detail || r.body.title || ""];
      say(t("Refused:") + " " + reasons.join("; "), "problem");
      stroke = {}; restyle();
    });
  }

  map.on("mouseup", function () {
    if (!painting) return;
    painting = false;
    submit(Object.keys(stroke));
  });
  document.addEventListener("mouseup", function () { if (painting) { painting = false; submit(Object.keys(stroke)); } });
  brush.addEventListener("change", function () {
    if (brush.checked) map.dragging.disable(); else map.dragging.enable();
  });
  target.addEventListener("change", renderTable);
  table.addEventListener("click", function (e) {
    var tr = e.target.closest("tr");
    if (!tr) return;
    if (e.target.classList.contains("pick")) { target.value = tr.dataset.grid; renderTable(); }
  });
  table.addEventListener("change", function (e) {
    if (!e.target.classList.contains("lock")) return;
    var g = e.target.closest("tr").dataset.grid;
    api("POST", "/locks", { grids: [g], locked: e.target.checked }).then(function (r) {
      if (r.status !== 200) say(t("Refused:") + " " + (r.body.detail || ""), "problem");
      load();
    });
  });
  function step(path, ok) {
    say(t("Working…"));
    api("POST", path).then(function (r) {
      if (r.status !== 200) {
        say(t(path === "/undo" ? "Nothing to undo." : "Nothing to redo."), "problem");
        return load();
      }
      // Said as the list of changes says it (the page's language), not the API's English.
      var seq = r.body.undone !== undefined ? r.body.undone : r.body.redone;
      return load().then(function () {
        var done = shownHistory.filter(function (h) { return h.seq === seq; })[0];
        say(t(ok) + " " + (done ? done.text : ""), "ok");
      });
    });
  }
  document.getElementById("undo").addEventListener("click", function () { step("/undo", "Undone:"); });
  document.getElementById("redo").addEventListener("click", function () { step("/redo", "Redone:"); });
  document.getElementById("resplit").addEventListener("click", function () {
    // The variant is checked here, where the planner typed it: the API's refusal of a number
    // past the splitter's 32 bits names its field in English ("seed: Input should be ...").
    var box = document.getElementById("seed"), seed = Number(box.value), most = +box.max;
    if (!box.value.trim() || !Number.isInteger(seed) || seed < 0 || seed > most) {
      say(t("Variant number: from 0 to %(max)s.", { max: box.max }), "problem");
      box.focus();
      return;
    }
    say(t("Working…"));
    api("POST", "/resplit", { seed: seed }).then(function (r) {
      if (r.status === 200) say(t("Re-split done: %(n)s unit(s) moved.", { n: r.body.moved_units }), "ok");
      else say(t("Refused:") + " " + (r.body.detail || ""), "problem");
      load();
    });
  });
  load();
})();
