// Shared chart helpers on top of TradingView lightweight-charts (window.LightweightCharts, from npm).
(function () {
  "use strict";
  var LC = window.LightweightCharts;

  function base(el, height) {
    return LC.createChart(el, {
      height: height,
      autoSize: true,
      // The logo injects a <style> element, which the CSP forbids; the attribution is in the page footer.
      layout: {
        background: { color: "#ffffff" }, textColor: "#1d2430", attributionLogo: false,
        panes: { separatorColor: "#d8dde6" },
      },
      grid: { vertLines: { color: "#eef1f5" }, horzLines: { color: "#eef1f5" } },
      timeScale: { timeVisible: true, secondsVisible: false },
      rightPriceScale: { borderColor: "#d8dde6" },
    });
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } }).then(function (r) {
      if (r.status === 401) { window.location.assign("/login"); throw new Error("logged out"); }
      if (!r.ok) { throw new Error(url + ": " + r.status); }
      return r.json();
    });
  }

  function whenChanged(prefixes, fn) {
    var timer = null;
    document.addEventListener("bastion:change", function (e) {
      var key = e.detail.key;
      if (prefixes.some(function (p) { return key.indexOf(p) === 0; }) && timer === null) {
        timer = window.setTimeout(function () { timer = null; fn(); }, 150);
      }
    });
  }

  function drawn(el, count) {
    el.dataset.bars = String(count);
    if (!el.dataset.drawnAt && count > 0) {
      window.requestAnimationFrame(function () { el.dataset.drawnAt = String(performance.now()); });
    }
  }

  window.BastionCharts = { LC: LC, base: base, getJSON: getJSON, whenChanged: whenChanged, drawn: drawn };
})();
