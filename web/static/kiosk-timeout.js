// The kiosk's return to its start screen after a quiet spell, without a timed meta refresh (WCAG 2.2.1).
// <script data-seconds="N" data-url="/kiosk">: a page with a form waits N seconds after the last key, tap or click,
// warns 20 seconds before (the warning's button gives the full time again), then goes back; other pages just go
// back after N seconds. Without JavaScript the meta refresh in <noscript> does the same.
(function () {
  "use strict";
  var script = document.currentScript;
  var seconds = Number(script.getAttribute("data-seconds"));
  var url = script.getAttribute("data-url");
  var WARN = 20;
  var warnTimer = null;
  var leaveTimer = null;

  function leave() {
    window.location.replace(url);
  }

  function start() {
    var warning = document.getElementById("kiosk-timeout-warning");
    if (!document.querySelector("form") || !warning || seconds <= WARN * 2) {
      leaveTimer = window.setTimeout(leave, seconds * 1000);
      return;
    }
    function reset() {
      window.clearTimeout(warnTimer);
      window.clearTimeout(leaveTimer);
      warning.hidden = true;
      warnTimer = window.setTimeout(function () {
        warning.hidden = false;
        leaveTimer = window.setTimeout(leave, WARN * 1000);
      }, (seconds - WARN) * 1000);
    }
    ["keydown", "pointerdown", "input"].forEach(function (name) {
      document.addEventListener(name, reset, true);
    });
    reset();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
