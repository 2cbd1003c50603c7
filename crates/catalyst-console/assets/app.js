// Write controls of an Application's page, through the same /api/v1 routes as the CLI (the
// server decides again on every request):
// - Values: the form generated from the configSchema; "Plan" is the dry run (the diff of the
//   commit it would make), "Commit" makes it with If-Match on the branch head the page showed;
//   the schema's errors are shown at their fields.
// - Upgrade: Plan (dry run) then Upgrade.
// - Roll back to a commit of the History.
// - Promote to the next Environment, showing the EnvironmentPolicy's state (approvals given and
//   needed, soak, change window), and Approve for those allowed to.
// History and statuses update live (live.js); a promotion panel re-reads its state after each.
(() => {
  "use strict";

  const enc = encodeURIComponent;

  // One API call: {ok, status, body} (body: the parsed JSON answer, or {}).
  async function call(method, url, body, ifMatch) {
    const headers = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (ifMatch) headers["if-match"] = ifMatch;
    let res;
    try {
      res = await fetch(url, {
        method,
        headers,
        credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (_) {
      return { ok: false, status: 0, body: {} };
    }
    const parsed = await res.json().catch(() => ({}));
    return { ok: res.ok, status: res.status, body: parsed };
  }

  // An error answer in plain words, with what to do.
  function explain(box, r) {
    box.textContent = "";
    if (r.status === 0) {
      box.textContent = "The server could not be reached; check your connection and try again.";
    } else if (r.status === 401 && window.catalystSignInLink) {
      box.append("Your session has ended. ", window.catalystSignInLink());
    } else if (r.status === 403) {
      box.textContent = `Your role does not allow this: ${r.body.detail || "ask an org-admin"}.`;
    } else if (r.status === 409 && r.body.error === "stale") {
      box.textContent = "Someone changed this Application meanwhile. Reload the page to see their change, then try again.";
    } else if (r.status === 409 && r.body.error === "policy-unmet") {
      box.textContent = `Refused: ${r.body.detail}.`;
    } else {
      box.textContent = r.body.detail || `The server answered ${r.status}.`;
    }
  }

  function unescapePointer(seg) {
    return seg.replace(/~1/g, "/").replace(/~0/g, "~");
  }

  // The form's controls as values typed like the schema (what the marketplace's server-side
  // form does): empty text leaves the property out, so defaults apply; checkboxes are booleans;
  // numbers that do not parse stay text, so the server names the error.
  function formValues(form) {
    const root = {};
    for (const el of form.querySelectorAll("[data-kind]")) {
      const kind = el.dataset.kind;
      let v;
      const text = kind === "checkbox" ? "" : el.value.trim();
      const numeric = kind === "number" || ["integer", "number"].includes(el.dataset.type);
      if (kind === "checkbox") {
        v = el.checked;
      } else if (text === "" && kind === "password") {
        // A secret is never shown, so an empty password field keeps the stored one (the
        // server puts it back for the placeholder; with none stored, it is left out).
        v = "<redacted>";
      } else if (text === "") {
        continue;
      } else if (numeric) {
        const n = Number(text);
        v = Number.isFinite(n) ? n : text;
      } else if (el.dataset.type === "boolean") {
        v = text === "true";
      } else {
        v = text;
      }
      const path = el.name.split("/").slice(1).map(unescapePointer);
      let at = root;
      path.slice(0, -1).forEach((k) => {
        if (typeof at[k] !== "object" || at[k] === null) at[k] = {};
        at = at[k];
      });
      at[path[path.length - 1]] = v;
    }
    return root;
  }

  function clearFieldErrors(form) {
    for (const p of form.querySelectorAll("[data-error-for]")) {
      p.textContent = "";
      p.hidden = true;
    }
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  // Puts each schema error at its field; returns the ones no field shows.
  function showFieldErrors(form, blueprint, fields) {
    const rest = [];
    for (const f of fields || []) {
      const own = !f.blueprint || f.blueprint === blueprint;
      const p = own && [...form.querySelectorAll("[data-error-for]")].find((e) => e.dataset.errorFor === f.field);
      if (!p) {
        rest.push(`${f.blueprint ? f.blueprint + " " : ""}${f.field}: ${f.message}`);
        continue;
      }
      p.textContent = p.textContent ? `${p.textContent}; ${f.message}` : f.message;
      p.hidden = false;
      const control = [...form.querySelectorAll("[data-kind]")].find((c) => c.name === f.field);
      if (control) {
        control.setAttribute("aria-invalid", "true");
        control.setAttribute("aria-errormessage", p.id);
      }
    }
    return rest;
  }

  // A dry run's commits and diffs.
  function showPlan(box, written) {
    const summary = box.querySelector("[data-role=plan-summary]");
    const diffs = box.querySelector("[data-role=diffs]");
    diffs.replaceChildren();
    const commits = written.commits || [];
    summary.textContent = commits.length === 0
      ? "Nothing would change: the values are what the branch already holds."
      : `${commits.length} commit(s) would be made:`;
    for (const c of commits) {
      const h = document.createElement("h5");
      h.textContent = `${c.repo} on ${c.branch}`;
      const pre = document.createElement("pre");
      pre.className = "diff";
      pre.textContent = c.diff || "";
      diffs.append(h, pre);
    }
    box.querySelector("[data-role=commit]").hidden = commits.length === 0;
    box.hidden = false;
  }

  // The new head of the Application's branch after a write (for the next If-Match).
  function newHead(section, written) {
    const repo = `${section.dataset.org}/${section.dataset.app}`;
    const c = (written.commits || []).find((x) => x.repo === repo);
    if (c) section.dataset.commit = c.commit;
  }

  // A form with a Plan (dry run) step before its write.
  function planned(section, form, request, done) {
    const error = form.querySelector("[data-role=error]");
    const plan = form.querySelector("[data-role=plan]");
    let pending = null;
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      plan.hidden = true;
      clearFieldErrors(form);
      pending = request();
      const r = await call(pending.method, `${pending.url}?dryRun=true`, pending.body, section.dataset.commit);
      if (!r.ok) {
        const rest = showFieldErrors(form, section.dataset.blueprint, r.body.fields);
        if (r.body.error === "invalid-values") {
          error.textContent = rest.length
            ? `Some values are not valid: ${rest.join("; ")}`
            : "Some values are not valid: see the marked fields.";
        } else {
          explain(error, r);
        }
        pending = null;
        return;
      }
      showPlan(plan, r.body);
    });
    plan.querySelector("[data-role=discard]").addEventListener("click", () => {
      plan.hidden = true;
      pending = null;
    });
    plan.querySelector("[data-role=commit]").addEventListener("click", async (ev) => {
      if (!pending) return;
      ev.target.disabled = true;
      const r = await call(pending.method, pending.url, pending.body, section.dataset.commit);
      ev.target.disabled = false;
      if (!r.ok) {
        showFieldErrors(form, section.dataset.blueprint, r.body.fields);
        explain(error, r);
        return;
      }
      newHead(section, r.body);
      plan.hidden = true;
      pending = null;
      done(r.body);
    });
  }

  const sections = [...document.querySelectorAll("[data-manage]")];
  for (const section of sections) {
    const env = section.dataset.manage;
    const base = `/api/v1/orgs/${enc(section.dataset.org)}/applications/${enc(section.dataset.app)}`;

    const values = section.querySelector("form[data-values]");
    if (values && values.querySelector("[data-role=commit]")) {
      planned(section, values, () => ({
        method: "PUT",
        url: `${base}/values`,
        body: { environment: env, values: formValues(values) },
      }), (written) => {
        const c = (written.commits || [])[0];
        values.querySelector("[data-role=error]").textContent = "";
        const status = document.createElement("p");
        status.setAttribute("role", "status");
        status.className = "ok-text";
        status.dataset.role = "committed";
        status.textContent = c ? `Committed ${c.commit.slice(0, 12)}; the History shows it.` : "Nothing changed.";
        values.querySelector("[data-role=committed]")?.remove();
        values.append(status);
      });
    }

    const upgrade = section.querySelector("form[data-upgrade]");
    if (upgrade) {
      planned(section, upgrade, () => ({
        method: "POST",
        url: `${base}/upgrade`,
        body: {
          environment: env,
          version: upgrade.elements.version.value,
          withDependencies: upgrade.elements.withDependencies.checked,
        },
      }), () => window.location.reload());
    }

    const promo = section.querySelector("[data-promotion]");
    if (promo) {
      const from = promo.dataset.from;
      const to = promo.dataset.to;
      const state = promo.querySelector("[data-role=state]");
      const list = promo.querySelector("[data-role=approvals]");
      const error = promo.querySelector("[data-role=error]");
      const load = async () => {
        const r = await call("GET", `${base}/promotion?from=${enc(from)}&to=${enc(to)}`);
        if (!r.ok) { explain(error, r); return; }
        const p = r.body;
        promo.dataset.allowed = String(p.allowed);
        promo.dataset.approvals = String((p.approvals || []).length);
        state.textContent = p.allowed
          ? `A promotion of ${p.source.slice(0, 12)} into ${p.to} is allowed now.`
          : `Not yet: ${p.unmet.detail} (rule ${p.unmet.rule}).${
            p.unmet.rule === "pr-required" && !promo.querySelector("[data-role=approve]")
              ? " An org-admin or a security officer of the Organization can approve it."
              : ""}`;
        list.replaceChildren(...(p.approvals || []).map((a) => {
          const li = document.createElement("li");
          li.textContent = `Approved by ${a.by}${a.time ? ` at ${a.time}` : ""}`;
          return li;
        }));
      };
      promo.querySelector("[data-role=approve]")?.addEventListener("click", async () => {
        error.textContent = "";
        const r = await call("POST", `${base}/approvals`, { from, to });
        if (!r.ok) explain(error, r);
        await load();
      });
      promo.querySelector("[data-role=promote]")?.addEventListener("click", async () => {
        error.textContent = "";
        const r = await call("POST", `${base}/promote`, { from, to });
        if (!r.ok) {
          explain(error, r);
        } else {
          state.textContent = `Promoted into ${to}.`;
        }
        await load();
      });
      document.addEventListener("catalyst:refreshed", load);
      load();
    }
  }

  // Roll back (buttons in the live History: one listener for whatever is rendered).
  document.addEventListener("click", async (ev) => {
    const button = ev.target.closest("[data-rollback]");
    if (!button) return;
    const env = button.dataset.env;
    const section = sections.find((s) => s.dataset.manage === env);
    if (!section) return;
    const to = button.dataset.rollback;
    if (!window.confirm(`Roll ${section.dataset.app} in ${env} back to ${to.slice(0, 12)}? This makes a new commit with that content.`)) return;
    const error = document.getElementById("rollback-error");
    error.textContent = "";
    const base = `/api/v1/orgs/${enc(section.dataset.org)}/applications/${enc(section.dataset.app)}`;
    const r = await call("POST", `${base}/rollback`, { environment: env, to }, section.dataset.commit);
    if (!r.ok) { explain(error, r); return; }
    // The values form shows what the branch holds now.
    window.location.reload();
  });
})();
