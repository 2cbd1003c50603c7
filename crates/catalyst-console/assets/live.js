// Live pages: follow the event stream named by #live[data-live] (from the event the page was
// rendered at: its `lastEventId`) and re-render #live from the
// server after each event (the page reads the projection, so an event seen twice changes
// nothing). EventSource resumes with Last-Event-ID after a network blip or a server restart.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  // The first event after a quiet spell re-renders at once; events that arrive while a re-render
  // is under way, or within GAP ms of the last one starting, are coalesced into one more. So a
  // single change shows without delay, and a burst costs at most one page load per GAP.
  var GAP = 100;
  var busy = false, dirty = false, last = 0;
  function refresh() {
    dirty = true;
    if (busy) return;
    busy = true;
    var wait = last + GAP - Date.now();
    if (wait > 0) setTimeout(load, wait); else load();
  }
  function load() {
    dirty = false;
    last = Date.now();
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (next) {
          live.innerHTML = next.innerHTML;
          live.setAttribute("data-refreshed", String(Date.now()));
          document.dispatchEvent(new CustomEvent("catalyst:refreshed"));
        }
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (dirty) refresh();
      });
  }
  var source = new EventSource(live.getAttribute("data-live"), { withCredentials: true });
  source.onmessage = refresh;
  // Every event is named by its CloudEvents type; these are the ones the pages show.
  var kinds = [
    "organization.created", "organization.updated", "organization.deleted", "organization.imported",
    "environment.created", "environment.deleted", "member.set", "member.removed",
    "application.installed", "application.upgraded", "application.values-changed",
    "application.rolled-back", "application.uninstalled", "application.promoted",
    "application.approved", "flux.ready", "flux.failed", "flux.reconciling"
  ];
  kinds.forEach(function (k) { source.addEventListener("io.openova.catalyst." + k, refresh); });
})();
