// Copy buttons: <button data-copy-target="ID" data-copied="Copied"> copies the text of element ID.
// Progressive enhancement: the button's row is hidden until this script runs, and the link stays visible anyway.
(function () {
  "use strict";
  document.querySelectorAll("[data-copy-target]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    var row = button.closest("[hidden]");
    if (!target || !navigator.clipboard) {
      return;
    }
    if (row) {
      row.hidden = false;
    }
    var status = row ? row.querySelector("[data-copy-status]") : null;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(function () {
        if (status) {
          status.textContent = button.getAttribute("data-copied");
        }
      });
    });
  });
})();
