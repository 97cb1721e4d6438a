// Live updates: one EventSource on /api/stream; a change to a key this page shows re-fetches the page's
// server-rendered content block (#live, escaped by the server) and tells the charts (event "bastion:change").
(function () {
  "use strict";
  var live = document.getElementById("live");
  var status = document.getElementById("live-status");
  var charts = document.querySelectorAll("[data-api]");
  var keys = live ? (live.dataset.keys || "").split(",").filter(Boolean) : [];
  var pending = null;
  var REFRESH_MS = 10000;

  function setStatus(state, text) {
    if (!status) { return; }
    status.dataset.state = state;
    status.textContent = text;
  }

  function matches(key) {
    return keys.length === 0 || keys.some(function (p) { return key.indexOf(p) === 0; });
  }

  function refresh() {
    pending = null;
    if (!live || !live.dataset.partial) { return; }
    fetch(live.dataset.partial, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.redirected && new URL(r.url).pathname === "/login") { window.location.assign("/login"); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined) {
          live.innerHTML = html;
          live.dataset.refreshedAt = String(Date.now());
        }
      })
      .catch(function () { setStatus("down", "dashboard unreachable"); });
  }

  function schedule() {
    if (pending === null) { pending = window.setTimeout(refresh, 200); }
  }

  if (!status && !live && charts.length === 0) { return; }
  var source = new EventSource("/api/stream");
  source.addEventListener("hello", function () { setStatus("live", "live"); });
  source.addEventListener("change", function (e) {
    var change = JSON.parse(e.data);
    setStatus("live", "live");
    if (matches(change.key)) { schedule(); }
    document.dispatchEvent(new CustomEvent("bastion:change", { detail: change }));
  });
  source.onerror = function () { setStatus("down", "reconnecting…"); };
  window.setInterval(schedule, REFRESH_MS);  // ages and staleness move on even when nothing is written
})();
