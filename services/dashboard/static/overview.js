// Overview: the equity curve from /api/overview, redrawn when execution.equity changes.
(function () {
  "use strict";
  var C = window.BastionCharts;
  var el = document.getElementById("equity-chart");
  if (!el || !C) { return; }
  var chart = C.base(el, 220);
  var series = chart.addSeries(C.LC.AreaSeries, {
    lineColor: "#2b6cb0", topColor: "rgba(43,108,176,0.35)", bottomColor: "rgba(43,108,176,0.02)", lineWidth: 2,
  });

  function load() {
    C.getJSON(el.dataset.api).then(function (v) {
      series.setData(v.equity);
      chart.timeScale().fitContent();
      C.drawn(el, v.equity.length);
    }).catch(function () {});
  }
  load();
  C.whenChanged(["execution.equity"], load);
})();
