// Filter by cause and verdict, search by name / Call-ID / number, copy the reproduce command.
// Plain DOM, no library: the page must work offline from a file:// URL.
(function () {
  "use strict";
  var cards = Array.prototype.slice.call(document.querySelectorAll("section.scenario"));
  var cause = document.getElementById("filter-cause");
  var verdict = document.getElementById("filter-verdict");
  var search = document.getElementById("search");
  var shown = document.getElementById("shown");
  var noMatch = document.getElementById("no-match");

  function apply() {
    var c = cause.value, v = verdict.value, q = search.value.trim().toLowerCase();
    var n = 0;
    cards.forEach(function (el) {
      var ok = (!c || el.dataset.cause === c) && (!v || el.dataset.verdict === v) &&
        (!q || el.dataset.search.indexOf(q) >= 0);
      el.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = n + " of " + cards.length + " shown";
    noMatch.hidden = n !== 0 || cards.length === 0;
  }

  cause.addEventListener("change", apply);
  verdict.addEventListener("change", apply);
  search.addEventListener("input", apply);

  // a click on a count filters by its cause (and verdict, for a number cell)
  document.querySelectorAll("#counts [data-cause]").forEach(function (el) {
    if (el.tagName === "TR") { return; }
    el.style.cursor = "pointer";
    el.addEventListener("click", function () {
      cause.value = el.dataset.cause;
      verdict.value = el.dataset.verdict || "";
      apply();
    });
  });

  function copied(button, text) {
    button.textContent = text;
    window.setTimeout(function () { button.textContent = "copy"; }, 1500);
  }

  function fallbackCopy(button, text) {
    // file:// pages may not get the async clipboard: a selected textarea and execCommand still work
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    copied(button, ok ? "copied" : "select and copy");
  }

  document.querySelectorAll("button.copy").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = button.dataset.copy;
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(
          function () { copied(button, "copied"); },
          function () { fallbackCopy(button, text); }
        );
      } else {
        fallbackCopy(button, text);
      }
    });
  });

  apply();
})();
