// The coverage form: while the server walks the roads (seconds the first time), say so.
(function () {
  var form = document.getElementById("coverage-form");
  var busy = document.getElementById("coverage-busy");
  var text = document.getElementById("coverage-busy-text");
  if (!form || !busy) return;
  form.addEventListener("submit", function () {
    text.hidden = false;
    busy.classList.add("on");
    form.querySelector("button[type=submit]").disabled = true;
  });
  // Back from the next page (bfcache): the form is usable again.
  window.addEventListener("pageshow", function () {
    busy.classList.remove("on");
    text.hidden = true;
    form.querySelector("button[type=submit]").disabled = false;
  });
})();
