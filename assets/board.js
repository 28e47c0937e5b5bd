// Live refresh for the status board (served as /assets/board.js: the CSP allows no inline
// script). Every 30 s, while the tab is visible, it fetches the page again and swaps in its
// <main>. The page works the same without it: reload to refresh.
"use strict";
(function () {
  var EVERY_MS = 30000;
  function refresh() {
    if (document.hidden) { return; }
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (!response.ok || response.redirected) { throw new Error("not refreshed"); }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("board");
        var current = document.getElementById("board");
        var focused = document.activeElement;
        // Leave the page alone while someone types in the filter form.
        if (fresh && current && !(focused && current.contains(focused) && focused.tagName === "INPUT")) {
          current.replaceWith(fresh);
        }
      })
      .catch(function () { /* keep what is shown; the next tick tries again */ });
  }
  window.setInterval(refresh, EVERY_MS);
})();
