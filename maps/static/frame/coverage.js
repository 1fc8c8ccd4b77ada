// The coverage form: while the server still builds its walking graph (seconds, just after
// a start), say so on submit; once it is built, answers come at once.
(function () {
  var form = document.getElementById("coverage-form");
  var busy = document.getElementById("coverage-busy");
  var text = document.getElementById("coverage-busy-text");
  if (!form || !busy) return;
  form.addEventListener("submit", function () {
    form.querySelector("button[type=submit]").disabled = true;
    if (form.dataset.building !== "true") return;
    text.hidden = false;
    busy.classList.add("on");
  });
  // Back from the next page (bfcache): the form is usable again.
  window.addEventListener("pageshow", function () {
    busy.classList.remove("on");
    text.hidden = true;
    form.querySelector("button[type=submit]").disabled = false;
  });
})();

// The landing page's table: every kind of facility at the chosen walking time, asked of
// /coverage one kind after another (two cores serve everyone; the page itself came at once).
(function () {
  var table = document.getElementById("coverage-glance");
  if (!table || !window.fetch) return;
  var minutes = table.dataset.minutes;
  var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr"));
  function cell(row, name, text) {
    var td = row.querySelector('[data-f="' + name + '"]');
    td.textContent = text;
  }
  function percent(share) { return Math.round(share * 100) + " %"; }
  function fill(row, answer) {
    cell(row, "share", percent(answer.household_share) + " (" + answer.covered_households +
         " / " + answer.households + ")");
    var least = null;
    (answer.areas || []).forEach(function (a) {
      if (a.households > 0 && (least === null || a.household_share < least.household_share)) least = a;
    });
    cell(row, "least", least ? least.code + " · " + percent(least.household_share) : "—");
    cell(row, "none", String(answer.uncovered));
  }
  function next(i) {
    if (i >= rows.length) return;
    var row = rows[i];
    var url = "/coverage?kind=" + encodeURIComponent(row.dataset.kind) + "&minutes=" +
              encodeURIComponent(minutes);
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (answer) { fill(row, answer); })
      .catch(function () {
        ["share", "least", "none"].forEach(function (f) { cell(row, f, table.dataset.failed); });
      })
      .then(function () { next(i + 1); });
  }
  next(0);
})();
