/* The report form's duplicate check (issue 18): once a category and a place are chosen, ask
 * which cases of the same category lie within 50 m and 7 days (GET /cases/duplicates) and
 * offer them, so the reporter can link the report to one instead of counting it twice.
 * Texts come translated from the page (data attributes); times in the district's zone. */
(function () {
  "use strict";
  var box = document.getElementById("dupes");
  var list = document.getElementById("dupe-list");
  var category = document.getElementById("category");
  if (!box || !list || !category) return;
  var place = null;
  var asked = 0;
  function row(c) {
    var li = document.createElement("li");
    var label = document.createElement("label");
    var radio = document.createElement("input");
    radio.type = "radio";
    radio.name = "duplicate_of";
    radio.value = String(c.id);
    label.appendChild(radio);
    var away = box.getAttribute("data-away").replace("{m}", String(Math.round(c.distance_m)));
    // In the district's zone, as every time the server writes (the footer names it), not
    // the zone this computer happens to be set to.
    var when = new Date(c.opened_at).toLocaleString(document.documentElement.lang || undefined,
                                                    { timeZone: box.getAttribute("data-zone") || undefined });
    label.appendChild(document.createTextNode(" #" + c.id + " · " + away + " · " + when + " — " + c.description));
    li.appendChild(label);
    var open = document.createElement("a");
    open.href = "/app/incidents/" + c.id;
    open.target = "_blank";
    open.rel = "noopener";
    open.textContent = " ↗";
    li.appendChild(open);
    return li;
  }
  function check() {
    if (!place || !category.value) { box.hidden = true; return; }
    var mine = ++asked;
    var query = new URLSearchParams({ category: category.value, lon: place.lon.toFixed(7), lat: place.lat.toFixed(7) });
    fetch("/cases/duplicates?" + query.toString(), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { cases: [] }; })
      .then(function (body) {
        if (mine !== asked) return; // a newer question was asked meanwhile
        list.textContent = "";
        body.cases.forEach(function (c) { list.appendChild(row(c)); });
        box.hidden = body.cases.length === 0;
      })
      .catch(function () { box.hidden = true; });
  }
  document.addEventListener("gridwork:place", function (e) { place = e.detail; check(); });
  category.addEventListener("change", check);
})();
