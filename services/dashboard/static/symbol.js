// Symbol page: candles with SMA/EMA/Bollinger overlays, RSI and MACD panes, signal and fill markers.
(function () {
  "use strict";
  var C = window.BastionCharts;
  var el = document.getElementById("price-chart");
  if (!el || !C) { return; }
  var LC = C.LC;
  var chart = C.base(el, 620);
  var candles = chart.addSeries(LC.CandlestickSeries, {
    upColor: "#1a9850", downColor: "#d73027", borderVisible: false, wickUpColor: "#1a9850", wickDownColor: "#d73027",
  });
  function line(color, pane, extra) {
    var opts = { color: color, lineWidth: 1, priceLineVisible: false, lastValueVisible: false };
    Object.keys(extra || {}).forEach(function (k) { opts[k] = extra[k]; });
    return chart.addSeries(LC.LineSeries, opts, pane);
  }
  var series = {
    sma_20: line("#1f77b4", 0),
    ema_20: line("#ff7f0e", 0),
    bb_upper: line("#9467bd", 0, { lineStyle: LC.LineStyle.Dashed }),
    bb_middle: line("#9467bd", 0, { lineStyle: LC.LineStyle.Dotted }),
    bb_lower: line("#9467bd", 0, { lineStyle: LC.LineStyle.Dashed }),
    rsi_14: line("#6a3d9a", 1, { lastValueVisible: true }),
    macd: line("#1f77b4", 2, { lastValueVisible: true }),
    macd_signal: line("#ff7f0e", 2),
  };
  var hist = chart.addSeries(LC.HistogramSeries, { priceLineVisible: false, lastValueVisible: false }, 2);
  series.rsi_14.createPriceLine({ price: 70, color: "#999", lineWidth: 1, lineStyle: LC.LineStyle.Dashed, title: "70" });
  series.rsi_14.createPriceLine({ price: 30, color: "#999", lineWidth: 1, lineStyle: LC.LineStyle.Dashed, title: "30" });
  var panes = chart.panes();
  if (panes.length === 3) { panes[0].setStretchFactor(3); panes[1].setStretchFactor(1); panes[2].setStretchFactor(1.2); }
  var markers = LC.createSeriesMarkers(candles, []);

  // Beyond this many markers their words overlap into a smear: shapes and colours alone then (the table
  // under the chart lists them).
  var WORDS_UP_TO = 40;

  function toMarker(m, words) {
    var up = m.side === "long" || m.side === "buy";
    var down = m.side === "short" || m.side === "sell";
    return {
      time: m.time,
      position: up ? "belowBar" : (down ? "aboveBar" : "inBar"),
      shape: m.kind === "fill" ? "square" : (up ? "arrowUp" : (down ? "arrowDown" : "circle")),
      color: m.kind === "fill" ? (up ? "#0b6e2f" : "#8c1c13") : (up ? "#1a9850" : (down ? "#d73027" : "#777")),
      text: !words ? "" : (m.kind === "fill" ? "fill " + m.side : m.side),
    };
  }

  var first = true;
  function load() {
    C.getJSON(el.dataset.api).then(function (v) {
      candles.setData(v.candles);
      Object.keys(series).forEach(function (name) { series[name].setData(v.lines[name] || []); });
      hist.setData((v.lines.macd_hist || []).map(function (p) {
        return { time: p.time, value: p.value, color: p.value >= 0 ? "rgba(26,152,80,0.5)" : "rgba(215,48,39,0.5)" };
      }));
      var words = v.markers.length <= WORDS_UP_TO;
      markers.setMarkers(v.markers.map(function (m) { return toMarker(m, words); }));
      el.dataset.markerWords = words ? "yes" : "no";
      if (first && v.candles.length) { chart.timeScale().fitContent(); first = false; }
      el.dataset.last = v.candles.length ? String(v.candles[v.candles.length - 1].time) : "";
      C.drawn(el, v.candles.length);
    }).catch(function () {});
  }
  load();
  var sym = el.dataset.api.split("/").pop();
  C.whenChanged(["analytics." + decodeURIComponent(sym), "strategy.signals", "execution.trades"], load);
})();
