// Shared chart helpers on top of TradingView lightweight-charts (window.LightweightCharts, from npm).
(function () {
  "use strict";
  var LC = window.LightweightCharts;
  // The zone the page shows times in (BASTION_DASHBOARD_TZ); the data's times stay UTC seconds.
  var ZONE = document.body.dataset.tz || "UTC";
  var PARTS = new Intl.DateTimeFormat("en-GB", {
    timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", hourCycle: "h23",
  });
  var MONTH = new Intl.DateTimeFormat("en-GB", { timeZone: ZONE, month: "short" });

  function parts(seconds) {
    var out = {};
    PARTS.formatToParts(new Date(seconds * 1000)).forEach(function (p) { out[p.type] = p.value; });
    return out;
  }

  // "2024-01-02 09:15" in ZONE: the crosshair's label.
  function timeText(seconds) {
    var p = parts(seconds);
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute;
  }

  // The time axis' labels in ZONE, by the kind of tick (lightweight-charts' TickMarkType: 0 year, 1 month,
  // 2 day of month, 3 time, 4 time with seconds).
  function tickText(seconds, kind) {
    var p = parts(seconds);
    if (kind === 0) { return p.year; }
    if (kind === 1) { return MONTH.format(new Date(seconds * 1000)); }
    if (kind === 2) { return p.day; }
    return p.hour + ":" + p.minute + (kind === 4 ? ":" + p.second : "");
  }

  function zoned() {
    if (ZONE === "UTC") { return {}; }  // the library's own labels are UTC
    return { localization: { timeFormatter: timeText }, tickMarkFormatter: tickText };
  }

  // Prices as the page's tables show them: 1,000,372.02, not 1000372.02.
  var PRICE = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  function priceText(value) { return PRICE.format(value); }

  // Every chart's options: times labelled in ZONE, prices with thousands separators.
  function options(height) {
    var z = zoned();
    var localization = Object.assign({ priceFormatter: priceText }, z.localization || {});
    return {
      height: height,
      autoSize: true,
      // The logo injects a <style> element, which the CSP forbids; the attribution is in the page footer.
      layout: {
        background: { color: "#ffffff" }, textColor: "#1d2430", attributionLogo: false,
        panes: { separatorColor: "#d8dde6" },
      },
      grid: { vertLines: { color: "#eef1f5" }, horzLines: { color: "#eef1f5" } },
      timeScale: { timeVisible: true, secondsVisible: false, tickMarkFormatter: z.tickMarkFormatter },
      localization: localization,
      rightPriceScale: { borderColor: "#d8dde6" },
    };
  }

  function base(el, height) {
    return LC.createChart(el, options(height));
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

  window.BastionCharts = {
    LC: LC, base: base, options: options, getJSON: getJSON, whenChanged: whenChanged, drawn: drawn, zone: ZONE,
  };
})();
