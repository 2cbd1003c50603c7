// The provisioning progress page: follows /api/v1/deployments/{id}/logs over SSE. Every event
// carries `id: <seq>`; a line is shown once per seq, so a reconnect (EventSource sends
// Last-Event-ID by itself; after a hard failure we reopen with ?lastEventId=) never duplicates
// or drops a line.
"use strict";
(function () {
  const root = document.getElementById("progress");
  const $ = (id) => document.getElementById(id);
  const id = root.dataset.id;
  const PHASES = [...document.querySelectorAll("#phases li")].map((li) => li.dataset.phase);
  const STATUS = {
    pending: "Pending", provisioning: "Provisioning", "tofu-applying": "Applying infrastructure",
    "flux-bootstrapping": "Bootstrapping Flux", ready: "Ready", failed: "Failed", cancelled: "Cancelled",
  };
  let lastSeq = 0;
  let lines = 0;
  let es = null;
  let finished = root.dataset.finished ? new Date(root.dataset.finished) : null;
  let firstEventTime = null;
  let done = false;
  let reopenTimer = null;
  const started = new Date(root.dataset.started);

  function setStatus(s) {
    const pill = $("status");
    pill.className = `pill status-${s}`;
    pill.textContent = STATUS[s] || s;
    root.dataset.status = s;
  }
  function setConn(text) { $("conn").textContent = text; }
  function fmtElapsed(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return (h ? `${h}h ` : "") + `${m}m ${String(sec).padStart(2, "0")}s`;
  }
  function tick() {
    const from = isNaN(started) ? firstEventTime : started;
    if (!from) return;
    $("elapsed").textContent = fmtElapsed((finished || new Date()) - from);
  }
  setInterval(tick, 1000); tick();

  function markPhase(phase, how) {
    const i = PHASES.indexOf(phase);
    if (i < 0) return;
    document.querySelectorAll("#phases li").forEach((li, j) => {
      const state = j < i ? "done" : j === i ? how : null;
      if (!state) { if (how === "running" && !li.classList.contains("done")) { li.className = "phase"; li.querySelector(".state").textContent = "waiting"; } return; }
      li.className = `phase ${state}`;
      li.querySelector(".state").textContent = state === "running" ? "running" : state;
    });
  }
  let currentPhase = null;

  function upsertResource(r) {
    const table = $("resources");
    table.hidden = false; $("res-empty").hidden = true;
    const body = table.tBodies[0];
    let row = [...body.rows].find((tr) => tr.dataset.address === r.address);
    if (!row) {
      row = body.insertRow();
      row.dataset.address = r.address;
      for (let i = 0; i < 4; i++) row.insertCell();
      row.cells[0].textContent = r.address;
    }
    row.cells[1].textContent = r.action || "";
    row.cells[2].textContent = r.state;
    row.cells[2].className = r.state === "errored" ? "error-text" : r.state === "applied" ? "ok-text" : "";
    row.cells[3].textContent = r.elapsedSeconds != null ? `${r.elapsedSeconds}s` : "";
  }

  function appendLine(seq, ev) {
    const li = document.createElement("li");
    li.dataset.seq = String(seq);
    if (ev.level && ev.level !== "info") li.classList.add(ev.level);
    const t = document.createElement("span"); t.className = "t";
    t.textContent = (ev.time || "").replace(/^.*T/, "").replace(/Z$/, "");
    const p = document.createElement("span"); p.className = "p"; p.textContent = ` [${ev.phase}] `;
    li.append(t, p, document.createTextNode(ev.message));
    const log = $("log");
    const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(li);
    if (stick) log.scrollTop = log.scrollHeight;
    lines += 1;
    $("log-count").textContent = `${lines} line${lines === 1 ? "" : "s"}`;
  }

  function onEvent(seq, ev) {
    if (!(seq > lastSeq)) return; // already shown: a replay after a reconnect
    lastSeq = seq;
    if (!firstEventTime && ev.time) firstEventTime = new Date(ev.time);
    appendLine(seq, ev);
    if (ev.dryRun) $("dry-run").hidden = false;
    if (ev.status) setStatus(ev.status);
    if (PHASES.includes(ev.phase) && ev.phase !== currentPhase) { currentPhase = ev.phase; markPhase(ev.phase, "running"); }
    if (ev.resource) upsertResource(ev.resource);
  }

  function showResult(state) {
    const dl = $("result"); dl.replaceChildren();
    const r = state.result || {};
    const dry = !!(state.dryRun || r.dryRun);
    const add = (k, v, link) => {
      if (!v) return;
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd");
      if (link && !dry) { const a = document.createElement("a"); a.href = v; a.textContent = v; dd.append(a); } else dd.textContent = v;
      dl.append(dt, dd);
    };
    add("Sovereign", r.sovereignFQDN || state.sovereignFQDN);
    add("Console", r.consoleURL, true);
    add("GitOps repository", r.gitopsRepoURL, true);
    add("Control-plane IP", r.controlPlaneIP);
    add("Load-balancer IP", r.loadBalancerIP);
    $("success-h").textContent = dry ? "Dry run complete" : "Your Sovereign is ready";
    $("success-note").textContent = dry ? "Nothing was provisioned: these are the addresses a real run would give." : "";
  }

  function onDone(state) {
    done = true;
    if (es) { es.close(); es = null; }
    finished = state.finishedAt ? new Date(state.finishedAt) : new Date();
    tick();
    setStatus(state.status);
    setConn("finished");
    if (state.dryRun) $("dry-run").hidden = false;
    if (state.status === "ready") {
      document.querySelectorAll("#phases li").forEach((li) => { li.className = "phase done"; li.querySelector(".state").textContent = "done"; });
      showResult(state);
      $("success").hidden = false; $("failure").hidden = true;
    } else {
      if (currentPhase) markPhase(currentPhase, "failed");
      $("failure-error").textContent = state.error || `The deployment ended with status ${state.status}.`;
      $("failure").hidden = false; $("success").hidden = true;
      $("retry").disabled = false;
    }
  }

  function open() {
    clearTimeout(reopenTimer);
    if (es) es.close();
    done = false;
    const url = `/api/v1/deployments/${encodeURIComponent(id)}/logs` + (lastSeq ? `?lastEventId=${lastSeq}` : "");
    es = new EventSource(url);
    setConn("connecting…");
    es.onopen = () => setConn("live");
    es.onmessage = (m) => {
      let ev; try { ev = JSON.parse(m.data); } catch (_) { return; }
      const seq = Number(m.lastEventId || ev.seq);
      onEvent(seq, ev);
    };
    es.addEventListener("done", (m) => {
      let st; try { st = JSON.parse(m.data); } catch (_) { st = { status: "failed", error: "unreadable final state" }; }
      onDone(st);
    });
    es.onerror = () => {
      if (done) return;
      if (es && es.readyState === EventSource.CONNECTING) { setConn("reconnecting…"); return; }
      // The browser gave up (e.g. an HTTP error while the server restarted): reopen ourselves,
      // resuming after the last line shown.
      setConn("reconnecting…");
      if (es) { es.close(); es = null; }
      // A session that ended answers the stream with 401 for good: say so instead of retrying.
      fetch("/api/v1/session").then((r) => {
        if (r.status !== 401) { reopenTimer = setTimeout(open, 2000); return; }
        const conn = $("conn");
        conn.textContent = "signed out — ";
        conn.append(window.catalystSignInLink());
      }, () => { reopenTimer = setTimeout(open, 2000); });
    };
  }

  async function retry(token) {
    const msg = $("retry-msg");
    $("retry").disabled = true;
    msg.textContent = "Asking the server to retry…";
    try {
      const res = await fetch(`/api/v1/deployments/${encodeURIComponent(id)}/phases/tofu-apply/retry`, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify(token ? { hetznerToken: token } : {}),
      });
      const body = await res.json().catch(() => ({}));
      if (res.status === 422 && body.error === "credential-required") {
        $("retry-token").hidden = false;
        $("retry-token-input").focus();
        msg.textContent = body.detail || "The server needs the Hetzner token again.";
        $("retry").disabled = false;
        return;
      }
      if (res.status === 401) {
        msg.textContent = "Your session has ended. ";
        msg.append(window.catalystSignInLink());
        $("retry").disabled = false;
        return;
      }
      if (!res.ok) throw new Error(body.detail || body.error || `HTTP ${res.status}`);
      $("retry-token").hidden = true; $("retry-token-input").value = "";
      msg.textContent = "";
      $("failure").hidden = true;
      finished = null;
      setStatus(body.status || "provisioning");
      open();
    } catch (e) {
      msg.textContent = `Retry failed: ${e.message}`;
      $("retry").disabled = false;
    }
  }
  $("retry").addEventListener("click", () => retry(null));
  $("retry-token").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("retry-token-input");
    const token = input.value.trim();
    input.value = "";
    if (token) retry(token);
  });

  open();
  root.dataset.ready = "1";
})();
