/* mixwise pages: CSRF header for htmx requests, and Plotly charts from embedded JSON. */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  function drawCharts(root) {
    if (!window.Plotly) {
      return;
    }
    root.querySelectorAll("[data-figure]").forEach(function (el) {
      if (el.getAttribute("data-drawn")) {
        return;
      }
      var source = document.getElementById(el.getAttribute("data-figure"));
      if (!source) {
        return;
      }
      var figure = JSON.parse(source.textContent);
      window.Plotly.newPlot(el, figure.data, figure.layout, {
        responsive: true,
        displaylogo: false,
        modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"]
      });
      el.setAttribute("data-drawn", "1");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    drawCharts(event.target);
  });
  // Back/forward restores a snapshot of the page: its charts are lifeless copies, draw anew.
  document.addEventListener("htmx:historyRestore", function () {
    document.querySelectorAll("[data-figure][data-drawn]").forEach(function (el) {
      el.removeAttribute("data-drawn");
      el.innerHTML = "";
    });
    drawCharts(document);
  });
})();
