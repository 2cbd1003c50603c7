// Marketplace: filters the server-rendered grid as you type (the form also works without JS).
"use strict";
(function () {
  const form = document.getElementById("market-filter");
  if (!form) return;
  const q = document.getElementById("market-q");
  const family = document.getElementById("market-family");
  const cards = [...document.querySelectorAll("#market-grid > li")];
  const count = document.getElementById("market-count");
  const total = count ? count.textContent.replace(/^.* of /, "") : "";
  function apply() {
    const text = q.value.trim().toLowerCase();
    const fam = family.value;
    let shown = 0;
    for (const c of cards) {
      const ok = (!fam || c.dataset.family === fam) && (!text || c.dataset.search.includes(text));
      c.hidden = !ok;
      if (ok) shown += 1;
    }
    if (count) count.textContent = `${shown} of ${total}`;
    const params = new URLSearchParams();
    if (text) params.set("q", q.value.trim());
    if (fam) params.set("family", fam);
    history.replaceState(null, "", params.toString() ? `?${params}` : location.pathname);
  }
  q.addEventListener("input", apply);
  family.addEventListener("change", apply);
  form.addEventListener("submit", (e) => { e.preventDefault(); apply(); });
  document.documentElement.dataset.marketReady = "1";
})();
