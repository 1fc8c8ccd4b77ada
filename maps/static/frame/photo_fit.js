/* Phone photos are often larger than a case accepts (8 MB by default; many phones take 10 MB
 * and more), and the server then refuses the whole report. A file box marked data-fit-bytes
 * shrinks such a photo here, before it is sent: drawn again as JPEG at most 2560 px on its
 * long side (then 1920, 1280 if still too large), which also drops what the camera wrote into
 * it (place, device). So is one of more pixels than the server takes (data-fit-pixels: a
 * 48-megapixel mode's photo may be under the bytes). A photo within both is sent as it is.
 * While it is being shrunk the form cannot be sent. Texts come translated from the page
 * (data attributes). */
(function () {
  "use strict";
  var SIDES = [2560, 1920, 1280];

  function mb(bytes) { return (bytes / 1048576).toFixed(1) + " MB"; }

  function drawn(file, side) {
    return createImageBitmap(file).then(function (bitmap) {
      var scale = Math.min(1, side / Math.max(bitmap.width, bitmap.height));
      var canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(bitmap.width * scale));
      canvas.height = Math.max(1, Math.round(bitmap.height * scale));
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      if (bitmap.close) bitmap.close();
      return new Promise(function (resolve) { canvas.toBlob(resolve, "image/jpeg", 0.85); });
    });
  }

  function smallEnough(file, max, i) {
    return drawn(file, SIDES[i]).then(function (blob) {
      if (blob && blob.size <= max) return blob;
      if (i + 1 < SIDES.length) return smallEnough(file, max, i + 1);
      throw new Error("still too large");
    });
  }

  // Whether the photo holds more pixels than the server takes (decoded to find out).
  function tooManyPixels(file, most) {
    if (!(most > 0)) return Promise.resolve(false);
    return createImageBitmap(file).then(function (bitmap) {
      var n = bitmap.width * bitmap.height;
      if (bitmap.close) bitmap.close();
      return n > most;
    }, function () { return false; });  // the server says what is wrong with it
  }

  function fit(input) {
    var max = Number(input.getAttribute("data-fit-bytes"));
    var most = Number(input.getAttribute("data-fit-pixels"));
    var note = document.createElement("p");
    note.className = "muted photo-fit";
    note.setAttribute("role", "status");
    input.insertAdjacentElement("afterend", note);
    input.addEventListener("change", function () {
      input.setCustomValidity("");
      note.textContent = "";
      note.className = "muted photo-fit";
      var file = input.files && input.files[0];
      if (!file || !/^image\//.test(file.type)) return;
      var working = input.getAttribute("data-fit-working");
      input.setCustomValidity(working);  // not sent half-done
      (file.size > max ? Promise.resolve(true) : tooManyPixels(file, most)).then(function (shrink) {
        if (!shrink) { input.setCustomValidity(""); return; }
        note.textContent = working;
        return shrinkInto(file);
      });
    });

    function shrinkInto(file) {
      return smallEnough(file, max, 0).then(function (blob) {
        var smaller = new DataTransfer();
        var name = file.name.replace(/\.[^.]*$/, "") + ".jpg";
        smaller.items.add(new File([blob], name, { type: "image/jpeg" }));
        input.files = smaller.files;  // no change event: not shrunk twice
        input.setCustomValidity("");
        note.textContent = input.getAttribute("data-fit-done")
          .replace("%(before)s", mb(file.size)).replace("%(after)s", mb(blob.size));
      }).catch(function () {
        input.value = "";  // nothing the server would refuse is kept
        input.setCustomValidity("");
        note.textContent = input.getAttribute("data-fit-failed");
        note.className = "field-error photo-fit";
      });
    }
  }

  document.querySelectorAll("input[type=file][data-fit-bytes]").forEach(fit);
})();
