// The Sovereign wizard. Seven steps; the state survives a reload through localStorage, but
// secrets (provider tokens, the registrar token, the generated private key) live only in memory.
"use strict";
(function () {
  const KEY = "catalyst-wizard";
  const DATA = JSON.parse(document.getElementById("wizard-data").textContent);
  const STEPS = 7;
  const $ = (id) => document.getElementById(id);
  const form = $("wizard");
  const providers = Object.fromEntries(DATA.providers.map((p) => [p.code, p]));
  const components = Object.fromEntries(DATA.components.map((c) => [c.name, c]));
  const SSH_RE = /^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521)\s+([A-Za-z0-9+/=]{30,})(\s+.+)?$/;
  const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
  const LABEL_RE = /^[a-z]([a-z0-9-]*[a-z0-9])?$/;

  // Memory only: never written anywhere.
  const secrets = { tokens: {}, validated: {}, privateKey: "", registrarToken: "", registrarValidated: "" };
  let domainCheck = { key: "", available: false, pending: false };

  const fresh = () => ({
    step: 1, orgName: "", orgHeadquarters: "", orgIndustry: "Financial Services",
    orgSize: "2,000–10,000", compliance: [], topology: DATA.defaultTopology, airgap: false,
    regions: null, hetznerProjectID: "", sshMode: "generate", sshPublicKey: "",
    sshFingerprint: "", sshGenerated: false, components: [], domainMode: "pool", subdomain: "",
    poolDomain: DATA.poolDomains[0] || "", byoDomain: "", registrar: "cloudflare", orgEmail: "",
  });
  let state = fresh();
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) || "null");
    if (saved && typeof saved === "object") state = Object.assign(fresh(), saved);
  } catch (_) { /* a damaged saved state is ignored */ }
  if (!DATA.topologies.some((t) => t.code === state.topology)) state.topology = DATA.defaultTopology;
  if (!["pool", "byo-manual", "byo-api"].includes(state.domainMode)) state.domainMode = "pool";

  // Only non-secret fields are saved: `state` never holds a token or a private key.
  function save() {
    try { localStorage.setItem(KEY, JSON.stringify(state)); } catch (_) { /* storage full or disabled */ }
  }

  // ---- regions -------------------------------------------------------------------------
  function regionLabels() {
    const t = DATA.topologies.find((x) => x.code === state.topology);
    const labels = t ? t.regions.slice() : [];
    if (state.airgap) labels.push(DATA.airgapRegion);
    return labels;
  }
  function defaultRegion(i) {
    const p = providers.hetzner || DATA.providers[0];
    const rec = (p.sizes.find((s) => s.recommended) || p.sizes[0]).id;
    return { provider: p.code, cloudRegion: p.regions[i % p.regions.length].code,
      controlPlaneSize: rec, workerSize: rec, workerCount: 0 };
  }
  function ensureRegions() {
    const n = regionLabels().length;
    if (!Array.isArray(state.regions)) state.regions = [];
    state.regions = state.regions.slice(0, n);
    while (state.regions.length < n) state.regions.push(defaultRegion(state.regions.length));
  }
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v == null) continue;
      if (k === "text") e.textContent = v; else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c != null) e.append(c);
    return e;
  }
  function select(id, label, options, value, onChange) {
    const s = el("select", { id });
    for (const [v, text, disabled] of options) s.append(el("option", { value: v, text, disabled: !!disabled, selected: v === value }));
    s.addEventListener("change", () => onChange(s.value));
    return el("div", { class: "field" }, el("label", { for: id, text: label }), s);
  }
  function sizeText(s) {
    return `${s.id} · ${s.vcpu} vCPU / ${s.ramGb} GB${s.eurPerHour != null ? ` · €${s.eurPerHour.toFixed(4)}/h` : ""}${s.recommended ? " ★" : ""}`;
  }
  function renderRegions() {
    ensureRegions();
    const box = $("regions");
    box.replaceChildren();
    regionLabels().forEach((label, i) => {
      const r = state.regions[i];
      const p = providers[r.provider] || DATA.providers[0];
      const upd = (k) => (v) => {
        r[k] = k === "workerCount" ? Math.max(0, Math.min(50, parseInt(v, 10) || 0)) : v;
        if (k === "provider") {
          const np = providers[v];
          const rec = (np.sizes.find((s) => s.recommended) || np.sizes[0]).id;
          Object.assign(r, { cloudRegion: np.regions[0].code, controlPlaneSize: rec, workerSize: rec });
        }
        save(); renderRegions(); updateGate();
      };
      const sizes = p.sizes.map((s) => [s.id, sizeText(s)]);
      const count = el("input", { id: `r${i}-workers`, type: "number", min: "0", max: "50", value: String(r.workerCount) });
      count.addEventListener("change", () => upd("workerCount")(count.value));
      const grid = el("div", { class: "region-grid" },
        select(`r${i}-provider`, "Provider", DATA.providers.map((x) => [x.code, x.provisionable ? x.name : `${x.name} (not provisionable yet)`, !x.provisionable]), r.provider, upd("provider")),
        select(`r${i}-region`, "Cloud region", p.regions.map((x) => [x.code, `${x.name} (${x.code})`]), r.cloudRegion, upd("cloudRegion")),
        select(`r${i}-cp`, "Control-plane size", sizes, r.controlPlaneSize, upd("controlPlaneSize")),
        el("div", { class: "field" }, el("label", { for: `r${i}-workers`, text: "Workers (0–50)" }), count),
        r.workerCount > 0 ? select(`r${i}-worker`, "Worker size", sizes, r.workerSize, upd("workerSize")) : null);
      box.append(el("div", { class: "region-card" }, el("h3", { text: label }), grid));
    });
    const c = cost();
    $("cost").textContent = c.known
      ? `Estimated cost: €${c.hour.toFixed(4)} per hour · €${(c.hour * 730).toFixed(2)} per month`
      : `Estimated cost: €${c.hour.toFixed(4)} per hour for the sizes with a known price (some prices are unknown)`;
  }
  function cost() {
    let hour = 0, known = true;
    for (const r of state.regions || []) {
      const p = providers[r.provider]; if (!p) continue;
      const price = (id) => { const s = p.sizes.find((x) => x.id === id); if (!s || s.eurPerHour == null) { known = false; return 0; } return s.eurPerHour; };
      hour += price(r.controlPlaneSize);
      if (r.workerCount > 0) hour += r.workerCount * price(r.workerSize);
    }
    return { hour, known };
  }

  // ---- credentials ---------------------------------------------------------------------
  function usedProviders() { return [...new Set((state.regions || []).map((r) => r.provider))]; }
  function renderCredentials() {
    const box = $("credentials");
    box.replaceChildren();
    for (const code of usedProviders()) {
      const p = providers[code]; if (!p) continue;
      const input = el("input", { id: `token-${code}`, type: "password", autocomplete: "off", spellcheck: "false" });
      input.value = secrets.tokens[code] || "";
      const status = el("p", { id: `token-${code}-status`, role: "status" });
      const btn = el("button", { type: "button", id: `token-${code}-validate`, text: "Validate" });
      const show = () => {
        status.className = secrets.validated[code] ? "ok-text" : "muted";
        if (secrets.validated[code]) status.textContent = "✓ Token accepted.";
      };
      input.addEventListener("input", () => { secrets.tokens[code] = input.value.trim(); secrets.validated[code] = false; status.textContent = ""; updateGate(); });
      btn.addEventListener("click", async () => {
        const token = (secrets.tokens[code] = input.value.trim());
        status.className = "muted"; status.textContent = "Checking…"; btn.disabled = true;
        try {
          const res = await fetch("/api/v1/credentials/validate", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token, provider: code }) });
          const body = await res.json().catch(() => ({}));
          secrets.validated[code] = res.ok && body.valid === true;
          status.className = secrets.validated[code] ? "ok-text" : "error-text";
          status.textContent = secrets.validated[code] ? "✓ Token accepted." : (body.message || body.detail || `The check failed (HTTP ${res.status}).`);
        } catch (_) {
          secrets.validated[code] = false; status.className = "error-text"; status.textContent = "Could not reach this server to check the token.";
        } finally { btn.disabled = false; updateGate(); }
      });
      let skip = null;
      if (DATA.dryRun) {
        // A dry run applies nothing and never uses the token: let people without a cloud
        // account try the whole flow. The placeholder is not a secret.
        skip = el("button", { type: "button", id: `token-${code}-dry-run`, text: "Skip: this server only does dry runs" });
        skip.addEventListener("click", () => {
          input.value = secrets.tokens[code] = `dry-run-placeholder-${code}`;
          secrets.validated[code] = true;
          status.className = "ok-text";
          status.textContent = "✓ Placeholder token: the dry-run provisioner applies nothing and does not use it.";
          updateGate();
        });
      }
      box.append(el("div", { class: "cred" },
        el("label", { for: `token-${code}`, text: `${p.name} API token (read & write)` }),
        el("div", { class: "row" }, input, btn, skip), status));
      show();
    }
  }
  function sshValid() { return SSH_RE.test((state.sshPublicKey || "").trim()); }
  function renderSsh() {
    const gen = state.sshMode === "generate";
    $("ssh-generate").hidden = !gen; $("ssh-paste").hidden = gen;
    for (const r of form.elements.sshMode) r.checked = r.value === state.sshMode;
    $("ssh-private-box").hidden = !secrets.privateKey;
    $("ssh-private").value = secrets.privateKey;
    if (!gen) $("ssh-public").value = state.sshPublicKey || "";
    const st = $("ssh-status");
    if (gen && state.sshGenerated && state.sshFingerprint) {
      st.textContent = `Key pair generated: ${state.sshFingerprint}.` + (secrets.privateKey ? "" : " Its private key is no longer shown; generate a new pair if you did not save it.");
      st.className = "ok-text";
    } else if (!gen && state.sshPublicKey) {
      st.textContent = sshValid() ? "✓ Public key looks valid." : "This is not an OpenSSH public key (ssh-ed25519, ssh-rsa or ecdsa-sha2-nistp*).";
      st.className = sshValid() ? "ok-text" : "error-text";
    } else { st.textContent = ""; }
  }
  async function generateKey() {
    const btn = $("ssh-generate-btn"); btn.disabled = true;
    $("ssh-status").textContent = "Generating…";
    try {
      const res = await fetch("/api/v1/sshkey/generate", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ fqdn: fqdn() }) });
      const body = await res.json();
      if (!res.ok) throw new Error(body.detail || body.error || `HTTP ${res.status}`);
      secrets.privateKey = body.privateKey;
      Object.assign(state, { sshPublicKey: body.publicKey, sshFingerprint: body.fingerprint, sshGenerated: true });
      save();
    } catch (e) {
      $("ssh-status").textContent = `Could not generate a key pair: ${e.message}`;
    } finally { btn.disabled = false; renderSsh(); updateGate(); }
  }
  function downloadKey() {
    if (!secrets.privateKey) return;
    const a = el("a", { href: URL.createObjectURL(new Blob([secrets.privateKey], { type: "application/x-pem-file" })), download: `${fqdn() || "catalyst"}.pem` });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  // ---- components ----------------------------------------------------------------------
  // The closure of the chosen components: name -> the chosen/pulled-in component that needs it.
  function closure() {
    const need = new Map();
    const queue = state.components.filter((n) => components[n]);
    for (const n of queue) need.set(n, null);
    while (queue.length) {
      const n = queue.shift();
      for (const d of (components[n] && components[n].depends) || []) {
        if (!need.has(d)) { need.set(d, n); queue.push(d); }
      }
    }
    return need;
  }
  function renderComponents() {
    const list = $("components"); if (!list) return;
    const q = ($("comp-search").value || "").trim().toLowerCase();
    const fam = (form.elements.compFamily && [...form.querySelectorAll('input[name="compFamily"]')].find((r) => r.checked)?.value) || "";
    const need = closure();
    list.replaceChildren();
    for (const c of DATA.components) {
      const pulled = need.has(c.name) && need.get(c.name) !== null;
      if (!c.listed && !need.has(c.name)) continue;
      if (fam && c.family !== fam) continue;
      if (q && ![c.name, c.title, c.summary, c.family].some((f) => (f || "").toLowerCase().includes(q))) continue;
      const id = `comp-${c.name}`;
      const box = el("input", { type: "checkbox", id, value: c.name });
      box.checked = need.has(c.name); box.disabled = pulled;
      box.addEventListener("change", () => {
        state.components = box.checked ? [...new Set([...state.components, c.name])].sort() : state.components.filter((n) => n !== c.name);
        save(); renderComponents();
      });
      list.append(el("li", { class: pulled ? "required" : null, "data-name": c.name },
        el("label", { for: id }, box, el("span", {},
          el("strong", { text: c.title }), " ", el("span", { class: "muted", text: c.version ? `v${c.version}` : "" }),
          pulled ? el("span", {}, " ", el("span", { class: "tag dep", text: `dependency of ${need.get(c.name)}` })) : null,
          el("br"), el("span", { class: "muted", text: c.summary || "" })))));
    }
    const chosen = state.components.length, deps = [...need.values()].filter((v) => v !== null).length;
    $("comp-summary").textContent = `${chosen} chosen, ${deps} added as dependencies.`;
  }

  // ---- domain --------------------------------------------------------------------------
  function fqdn() {
    if (state.domainMode === "pool") return state.subdomain && state.poolDomain ? `${state.subdomain}.${state.poolDomain}` : "";
    return (state.byoDomain || "").trim().toLowerCase().replace(/\.$/, "");
  }
  function domainValid(d) {
    const labels = d.split(".");
    return d.length <= 253 && labels.length >= 2 && labels.every((l) => l.length <= 63 && LABEL_RE.test(l));
  }
  let checkTimer = null;
  function scheduleCheck() {
    clearTimeout(checkTimer);
    checkTimer = setTimeout(runCheck, 400);
  }
  async function runCheck() {
    let sub, pool;
    if (state.domainMode === "pool") { sub = state.subdomain; pool = state.poolDomain; }
    else {
      const d = fqdn(); if (!domainValid(d)) { renderDomainStatus(); return; }
      const i = d.indexOf("."); sub = d.slice(0, i); pool = d.slice(i + 1);
    }
    if (!sub) { renderDomainStatus(); return; }
    const key = `${state.domainMode}|${sub}.${pool}`;
    domainCheck = { key, available: false, pending: true };
    renderDomainStatus();
    try {
      const res = await fetch("/api/v1/subdomains/check", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ subdomain: sub, poolDomain: pool }) });
      const body = await res.json();
      if (domainCheck.key !== key) return; // a newer check is running
      domainCheck = { key, available: body.available === true, pending: false, reason: body.reason, detail: body.detail, fqdn: body.fqdn };
    } catch (_) {
      if (domainCheck.key === key) domainCheck = { key, available: false, pending: false, detail: "Could not reach this server to check the name." };
    }
    renderDomainStatus(); updateGate();
  }
  function currentKey() {
    const d = fqdn(); return `${state.domainMode}|${d}`;
  }
  function renderDomainStatus() {
    const st = $("domain-status");
    const d = fqdn();
    $("console-preview").textContent = d ? `console.${d}` : "console.<your domain>";
    if (!d) { st.textContent = ""; return; }
    if (state.domainMode !== "pool" && !domainValid(d)) { st.className = "error-text"; st.textContent = "Enter a domain such as sovereign.example.com."; return; }
    if (domainCheck.key !== currentKey()) { st.className = "muted"; st.textContent = "Checking availability…"; return; }
    if (domainCheck.pending) { st.className = "muted"; st.textContent = "Checking availability…"; return; }
    if (state.domainMode === "pool") {
      st.className = domainCheck.available ? "ok-text" : "error-text";
      st.textContent = domainCheck.available ? `✓ ${d} is available.` : (domainCheck.detail || `${d} is not available.`);
    } else {
      st.className = domainCheck.available ? "ok-text" : "warn";
      st.textContent = domainCheck.available ? `✓ ${d} does not resolve yet.` : (domainCheck.reason === "exists" ? `${d} already resolves in DNS: make sure you own it and may delegate it.` : (domainCheck.detail || ""));
    }
  }
  function renderDomain() {
    for (const r of form.elements.domainMode) r.checked = r.value === state.domainMode;
    $("mode-pool").hidden = state.domainMode !== "pool";
    $("mode-byo").hidden = state.domainMode === "pool";
    $("byo-manual-ns").hidden = state.domainMode !== "byo-manual";
    $("byo-api-fields").hidden = state.domainMode !== "byo-api";
    renderDomainStatus();
  }

  // The registrar token is validated for one registrar, domain and token.
  function registrarKey() { return `${state.registrar}|${fqdn()}|${secrets.registrarToken}`; }
  async function validateRegistrar() {
    const st = $("registrar-status"); const btn = $("registrar-validate");
    const key = registrarKey();
    if (!domainValid(fqdn()) || !secrets.registrarToken) { st.className = "error-text"; st.textContent = "Enter the domain and the token first."; return; }
    btn.disabled = true; st.className = "muted"; st.textContent = "Checking with the registrar…";
    try {
      const res = await fetch(`/api/v1/registrar/${encodeURIComponent(state.registrar)}/validate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ domain: fqdn(), token: secrets.registrarToken }) });
      const body = await res.json().catch(() => ({}));
      const ok = res.ok && body.valid === true;
      secrets.registrarValidated = ok ? key : "";
      st.className = ok ? "ok-text" : "error-text";
      st.textContent = ok ? "✓ The registrar accepted the token for this domain." : (body.detail || body.error || `The check failed (HTTP ${res.status}).`);
    } catch (_) {
      st.className = "error-text"; st.textContent = "Could not reach this server to check the token.";
    } finally { btn.disabled = false; updateGate(); }
  }

  // ---- gates and review ----------------------------------------------------------------
  function gate(step) {
    switch (step) {
      case 1: return state.orgName.trim() ? "" : "Enter the organisation's name.";
      case 2: return state.topology ? "" : "Choose a topology.";
      case 3: {
        ensureRegions();
        for (const [i, r] of state.regions.entries()) {
          const p = providers[r.provider];
          if (!p || !p.provisionable) return `Region ${i + 1}: Catalyst can provision only ${DATA.providers.filter((x) => x.provisionable).map((x) => x.name).join(", ")} today.`;
          if (!r.cloudRegion || !r.controlPlaneSize) return `Region ${i + 1}: choose a cloud region and a control-plane size.`;
          if (r.workerCount > 0 && !r.workerSize) return `Region ${i + 1}: choose a worker size.`;
        }
        return "";
      }
      case 4: {
        for (const code of usedProviders()) if (!secrets.validated[code]) return `Validate the ${providers[code] ? providers[code].name : code} token.`;
        if (!state.hetznerProjectID.trim()) return "Enter the Hetzner project ID.";
        if (!sshValid()) return state.sshMode === "generate" ? "Generate an SSH key pair." : "Paste a valid SSH public key.";
        return "";
      }
      case 5: return "";
      case 6: {
        const d = fqdn();
        if (state.domainMode === "pool") {
          if (!LABEL_RE.test(state.subdomain || "")) return "Enter a subdomain: a-z, 0-9 and hyphens, starting with a letter.";
          if (domainCheck.key !== currentKey() || domainCheck.pending) return "Checking the subdomain…";
          if (!domainCheck.available) return "Choose an available subdomain.";
        } else if (!domainValid(d)) return "Enter your domain.";
        if (state.domainMode === "byo-api" && secrets.registrarValidated !== registrarKey()) return "Validate the registrar API token.";
        if (!EMAIL_RE.test(state.orgEmail.trim())) return "Enter a valid admin contact email.";
        return "";
      }
      default: return "";
    }
  }
  function firstBlocked() {
    for (let s = 1; s < STEPS; s++) if (gate(s)) return s;
    return STEPS;
  }
  function mask(t) { return t ? `${"•".repeat(8)}${t.slice(-4)}` : "—"; }
  function renderReview() {
    const dl = $("review"); dl.replaceChildren();
    const row = (k, v) => dl.append(el("dt", { text: k }), el("dd", { text: v }));
    const topo = DATA.topologies.find((t) => t.code === state.topology);
    row("Organisation", state.orgName);
    row("Headquarters · industry · size", [state.orgHeadquarters || "—", state.orgIndustry, state.orgSize].join(" · "));
    row("Compliance", state.compliance.length ? state.compliance.join(", ") : "none");
    row("Topology", `${topo ? topo.name : state.topology}${state.airgap ? " + air-gapped region" : ""}`);
    regionLabels().forEach((label, i) => {
      const r = state.regions[i]; const p = providers[r.provider];
      row(label, `${p ? p.name : r.provider} · ${r.cloudRegion} · control plane ${r.controlPlaneSize} · ${r.workerCount} worker${r.workerCount === 1 ? "" : "s"}${r.workerCount > 0 ? ` of ${r.workerSize}` : ""}`);
    });
    const c = cost(); row("Estimated cost", `€${(c.hour * 730).toFixed(2)} per month${c.known ? "" : " (some prices unknown)"}`);
    for (const code of usedProviders()) row(`${providers[code].name} token`, `${mask(secrets.tokens[code])} (validated)`);
    row("Hetzner project ID", state.hetznerProjectID);
    row("SSH key", state.sshFingerprint && state.sshGenerated && state.sshMode === "generate" ? `generated · ${state.sshFingerprint}` : `${(state.sshPublicKey || "").split(/\s+/)[0]} (pasted)`);
    const need = closure();
    row("Components", need.size ? [...need.entries()].map(([n, by]) => by ? `${n} (dependency of ${by})` : n).join(", ") : "none");
    row("Domain", `${fqdn()} (${{ pool: "pool domain", "byo-manual": "own domain, nameservers by hand", "byo-api": "own domain, through the registrar API" }[state.domainMode]})`);
    if (state.domainMode === "byo-api") row("Registrar", `${state.registrar} · token ${mask(secrets.registrarToken)}`);
    row("Admin contact", state.orgEmail);
  }
  async function launch() {
    const btn = $("launch"); const err = $("launch-error");
    const blocked = firstBlocked();
    if (blocked < STEPS) { go(blocked); return; }
    btn.disabled = true; err.textContent = "";
    const regions = state.regions.map((r) => ({ provider: r.provider, cloudRegion: r.cloudRegion, controlPlaneSize: r.controlPlaneSize, workerSize: r.workerCount > 0 ? r.workerSize : "", workerCount: r.workerCount }));
    const body = {
      orgName: state.orgName.trim(), orgEmail: state.orgEmail.trim(), sovereignFQDN: fqdn(),
      sovereignDomainMode: state.domainMode,
      sovereignPoolDomain: state.domainMode === "pool" ? state.poolDomain : "",
      sovereignSubdomain: state.domainMode === "pool" ? state.subdomain : "",
      hetznerToken: secrets.tokens.hetzner || "", hetznerProjectID: state.hetznerProjectID.trim(),
      region: regions[0].cloudRegion, controlPlaneSize: regions[0].controlPlaneSize,
      workerSize: regions[0].workerSize, workerCount: regions[0].workerCount, haEnabled: false,
      regions, sshPublicKey: state.sshPublicKey.trim(),
      components: state.components.filter((n) => components[n]),
    };
    try {
      const res = await fetch("/api/v1/deployments", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      const out = await res.json().catch(() => ({}));
      if (res.status === 401) {
        // Answers stay in localStorage; secrets must be entered again after signing in.
        err.textContent = "The deployment was not started: your session has ended. ";
        err.append(window.catalystSignInLink());
        btn.disabled = false;
        return;
      }
      if (res.status !== 201 || !out.id) throw new Error(out.detail || out.error || `HTTP ${res.status}`);
      localStorage.removeItem(KEY);
      location.assign(`/sovereign/provision/${encodeURIComponent(out.id)}`);
    } catch (e) {
      err.textContent = `The deployment was not started: ${e.message}`;
      btn.disabled = false;
    }
  }

  // ---- navigation ----------------------------------------------------------------------
  function renderStep() {
    for (const s of form.querySelectorAll(".step")) s.hidden = Number(s.dataset.step) !== state.step;
    const blocked = firstBlocked();
    for (const b of document.querySelectorAll("#steps button")) {
      const n = Number(b.dataset.goto);
      if (n === state.step) b.setAttribute("aria-current", "step"); else b.removeAttribute("aria-current");
      b.classList.toggle("done", n < blocked && n !== state.step);
      b.disabled = n > blocked;
    }
    $("back").disabled = state.step === 1;
    $("next").hidden = state.step === STEPS;
    if (state.step === 3) renderRegions();
    if (state.step === 4) { renderCredentials(); renderSsh(); }
    if (state.step === 5) renderComponents();
    if (state.step === 6) { renderDomain(); if (fqdn() && domainCheck.key !== currentKey()) runCheck(); }
    if (state.step === 7) renderReview();
    updateGate();
  }
  function updateGate() {
    const g = state.step < STEPS ? gate(state.step) : "";
    $("gate").textContent = g;
    $("next").setAttribute("aria-disabled", g ? "true" : "false");
    const blocked = firstBlocked();
    for (const b of document.querySelectorAll("#steps button")) b.disabled = Number(b.dataset.goto) > blocked;
  }
  function go(n, focus = true) {
    state.step = Math.max(1, Math.min(STEPS, n)); save(); renderStep();
    if (focus) { const h = form.querySelector(`.step[data-step="${state.step}"] h2`); if (h) h.focus(); }
  }

  // ---- wiring --------------------------------------------------------------------------
  function bindInput(id, key, after) {
    const e = $(id); if (!e) return;
    e.value = state[key] ?? "";
    e.addEventListener("input", () => { state[key] = e.value; save(); if (after) after(); updateGate(); });
  }
  bindInput("org-name", "orgName");
  bindInput("org-hq", "orgHeadquarters");
  $("org-industry").value = state.orgIndustry; $("org-industry").addEventListener("change", (e) => { state.orgIndustry = e.target.value; save(); });
  $("org-size").value = state.orgSize; $("org-size").addEventListener("change", (e) => { state.orgSize = e.target.value; save(); });
  for (const c of form.querySelectorAll('input[name="compliance"]')) {
    c.checked = state.compliance.includes(c.value);
    c.addEventListener("change", () => { state.compliance = [...form.querySelectorAll('input[name="compliance"]:checked')].map((x) => x.value); save(); });
  }
  for (const r of form.querySelectorAll('input[name="topology"]')) {
    r.checked = r.value === state.topology;
    r.addEventListener("change", () => { state.topology = r.value; state.regions = null; secrets.tokens = {}; secrets.validated = {}; ensureRegions(); save(); updateGate(); });
  }
  $("airgap").checked = !!state.airgap;
  $("airgap").addEventListener("change", (e) => { state.airgap = e.target.checked; ensureRegions(); save(); updateGate(); });
  bindInput("hetzner-project", "hetznerProjectID");
  for (const r of form.querySelectorAll('input[name="sshMode"]')) r.addEventListener("change", () => {
    state.sshMode = r.value; state.sshPublicKey = ""; state.sshFingerprint = ""; state.sshGenerated = false; secrets.privateKey = ""; save(); renderSsh(); updateGate();
  });
  $("ssh-public").addEventListener("input", (e) => { state.sshPublicKey = e.target.value.trim(); save(); renderSsh(); updateGate(); });
  $("ssh-generate-btn").addEventListener("click", generateKey);
  $("ssh-download").addEventListener("click", downloadKey);
  if ($("comp-search")) {
    $("comp-search").addEventListener("input", renderComponents);
    for (const r of form.querySelectorAll('input[name="compFamily"]')) r.addEventListener("change", renderComponents);
  }
  for (const r of form.querySelectorAll('input[name="domainMode"]')) r.addEventListener("change", () => {
    state.domainMode = r.value;
    if (r.value === "pool") state.byoDomain = ""; else state.subdomain = "";
    secrets.registrarToken = ""; $("registrar-token").value = "";
    $("subdomain").value = state.subdomain; $("byo-domain").value = state.byoDomain;
    save(); renderDomain(); if (fqdn()) scheduleCheck(); updateGate();
  });
  const sub = $("subdomain");
  sub.value = state.subdomain;
  sub.addEventListener("input", () => { state.subdomain = sub.value.toLowerCase().replace(/\s+/g, ""); save(); renderDomainStatus(); scheduleCheck(); updateGate(); });
  const pool = $("pool-domain");
  if (state.poolDomain) pool.value = state.poolDomain;
  state.poolDomain = pool.value;
  pool.addEventListener("change", () => { state.poolDomain = pool.value; save(); renderDomainStatus(); scheduleCheck(); updateGate(); });
  bindInput("byo-domain", "byoDomain", () => { renderDomainStatus(); scheduleCheck(); });
  $("registrar").value = state.registrar;
  $("registrar").addEventListener("change", (e) => { state.registrar = e.target.value; save(); $("registrar-status").textContent = ""; updateGate(); });
  $("registrar-token").addEventListener("input", (e) => { secrets.registrarToken = e.target.value.trim(); $("registrar-status").textContent = ""; updateGate(); });
  $("registrar-validate").addEventListener("click", validateRegistrar);
  bindInput("org-email", "orgEmail");
  $("back").addEventListener("click", () => go(state.step - 1));
  $("next").addEventListener("click", () => {
    const g = gate(state.step);
    if (g) { $("gate").textContent = g; return; }
    go(state.step + 1);
  });
  for (const b of document.querySelectorAll("#steps button")) b.addEventListener("click", () => go(Number(b.dataset.goto)));
  $("launch").addEventListener("click", launch);
  form.addEventListener("submit", (e) => e.preventDefault());
  // Enter in a text field means Continue (buttons and text areas keep their own Enter).
  form.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || e.target.tagName !== "INPUT" || ["checkbox", "radio"].includes(e.target.type)) return;
    e.preventDefault();
    if (state.step < STEPS) $("next").click();
  });

  ensureRegions();
  // Secrets are not restored after a reload: resume no later than the first step that needs them.
  state.step = Math.min(state.step, firstBlocked());
  renderStep();
  if (fqdn() && domainCheck.key !== currentKey()) runCheck();
  document.documentElement.dataset.wizardReady = "1";
})();
