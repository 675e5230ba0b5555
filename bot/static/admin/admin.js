// Guidance admin: the editor's live preview. Without this script the
// "Preview" button does the same with a round trip to the server.
(function () {
  "use strict";

  var DELAY_MS = 400;

  function startPreview(form) {
    var url = form.getAttribute("data-preview-url");
    var body = form.querySelector("#body");
    var web = document.getElementById("preview-web");
    var plain = document.getElementById("preview-plain");
    var note = document.getElementById("preview-status");
    var token = form.querySelector("input[name=csrf_token]");
    if (!url || !body || !web || !plain || !token) {
      return;
    }
    var timer = null;
    var sequence = 0;

    function country() {
      var field = form.querySelector("#country") || form.querySelector("#preview-country");
      return field ? field.value : "";
    }

    function refresh() {
      var mine = ++sequence;
      var data = new FormData();
      data.append("csrf_token", token.value);
      data.append("body", body.value);
      data.append("country", country());
      fetch(url, { method: "POST", body: data, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("preview failed: " + response.status);
          }
          return response.json();
        })
        .then(function (shown) {
          if (mine !== sequence) {
            return; // a newer preview is on its way
          }
          // The server's HTML is sanitised with an allow-list (bot/guidance/render.py).
          web.innerHTML = shown.html;
          plain.textContent = shown.plain;
          if (note) {
            note.textContent = "Showing the text as you type it. It has not been saved.";
          }
        })
        .catch(function () {
          if (note) {
            note.textContent = "The preview could not be refreshed. Select “Preview” to try again.";
          }
        });
    }

    function later() {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, DELAY_MS);
    }

    body.addEventListener("input", later);
    var countryField = form.querySelector("#country");
    if (countryField) {
      countryField.addEventListener("input", later);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form.admin-editor");
    if (form) {
      startPreview(form);
    }
  });
})();
