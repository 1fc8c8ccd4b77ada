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
