// Deployments list: while a deployment is in flight, refresh the statuses from
// GET /api/v1/deployments every few seconds (the page itself is complete without it).
"use strict";
(function () {
  const LABELS = {
    pending: "Pending", provisioning: "Provisioning", "tofu-applying": "Applying infrastructure",
    "flux-bootstrapping": "Bootstrapping Flux", ready: "Ready", failed: "Failed", cancelled: "Cancelled",
  };
  const TERMINAL = new Set(["ready", "failed", "cancelled"]);
  const rows = () => [...document.querySelectorAll("tr[data-id]")];
  async function refresh() {
    if (rows().every((r) => TERMINAL.has(r.dataset.status))) return;
    try {
      const res = await fetch("/api/v1/deployments?limit=500");
      if (res.ok) {
        const body = await res.json();
        const byId = new Map((body.deployments || []).map((d) => [d.id, d]));
        for (const r of rows()) {
          const d = byId.get(r.dataset.id);
          if (!d || d.status === r.dataset.status) continue;
          r.dataset.status = d.status;
          const pill = r.querySelector('[data-role="status"]');
          pill.className = `pill status-${d.status}`;
          pill.textContent = LABELS[d.status] || d.status;
        }
      }
    } catch (_) { /* try again on the next tick */ }
    setTimeout(refresh, 3000);
  }
  setTimeout(refresh, 3000);
})();
