// The Install section of a Blueprint page. For a caller whose role may install Applications
// (sovereign-admin, org-admin, org-developer) it swaps the "how to install" text for a form:
// Organization, Environment, Application name and, per dependency, "create a new Application"
// (with its own values) or "use an existing Application" of that Environment running that
// Blueprint (the API's useExisting). "Plan" posts the request with ?dryRun=true and shows the
// commits with their diffs; "Install" posts the same request and opens the Environment page.
// The values are the Configuration form's, typed by the configSchema exactly as the server's
// catalog::values_from_form types a submitted form. The session cookie goes along; the API
// decides again. Errors are shown in words, at the field they concern when there is one.
(() => {
  "use strict";
  const form = document.getElementById("install-form");
  const dataEl = document.getElementById("install-data");
  if (!form || !dataEl) return;
  const data = JSON.parse(dataEl.textContent);
  const howto = document.getElementById("install-howto");
  const denied = document.getElementById("install-denied");
  const orgSel = document.getElementById("install-org");
  const envSel = document.getElementById("install-env");
  const nameInput = document.getElementById("install-name");
  const planButton = document.getElementById("install-plan-button");
  const commitButton = document.getElementById("install-commit");
  const error = document.getElementById("install-error");
  const result = document.getElementById("install-result");
  const configForm = document.getElementById("config-form");
  const deps = [...form.querySelectorAll("fieldset[data-dep]")];
  const WRITERS = ["sovereign-admin", "org-admin", "org-developer"];

  const el = (tag, attrs, ...children) => {
    const e = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    });
    e.append(...children);
    return e;
  };
  const getJson = async (url) => {
    const res = await fetch(url, { headers: { accept: "application/json" } }).catch(() => null);
    if (!res) throw new Error("The server could not be reached; try again.");
    if (res.status === 401) throw Object.assign(new Error("Your session has ended."), { signIn: true });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.detail || `The server answered ${res.status}.`);
    return body;
  };
  const say = (e) => {
    if (e.signIn && window.catalystSignInLink) error.replaceChildren(`${e.message} `, window.catalystSignInLink());
    else error.textContent = e.message;
  };

  // ---- values, typed by the schema (the server's form_fields walk and values_from_form) ----
  const escapeKey = (k) => k.replace(/~/g, "~0").replace(/\//g, "~1");
  const unescapeKey = (k) => k.replace(/~1/g, "/").replace(/~0/g, "~");
  const leaves = (schema, pointer, out) => {
    const props = schema && schema.properties;
    if (!props || typeof props !== "object") return out;
    Object.entries(props).forEach(([key, prop]) => {
      const ptr = `${pointer}/${escapeKey(key)}`;
      const type = prop && typeof prop.type === "string" ? prop.type : "string";
      if (type === "object" && prop.properties) leaves(prop, ptr, out);
      else out.push({ pointer: ptr, type });
    });
    return out;
  };
  const control = (container, pointer) =>
    container ? [...container.querySelectorAll("[name]")].find((c) => c.name === pointer) : undefined;
  const setPointer = (root, pointer, value) => {
    const segs = pointer.split("/").slice(1).map(unescapeKey);
    let cur = root;
    segs.forEach((seg, i) => {
      if (i + 1 === segs.length) cur[seg] = value;
      else cur = cur[seg] = cur[seg] && typeof cur[seg] === "object" ? cur[seg] : {};
    });
  };
  const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
  const valuesFrom = (container, schema) => {
    const root = {};
    leaves(schema, "", []).forEach(({ pointer, type }) => {
      const c = control(container, pointer);
      if (type === "boolean") { setPointer(root, pointer, !!(c && c.checked)); return; }
      const text = c ? c.value.trim() : "";
      if (text === "") return; // left out, so the default applies
      let value = text; // text that does not parse stays a string: the server says why
      if (type === "integer" && /^[+-]?\d+$/.test(text)) value = Number(text);
      if (type === "number" && NUMBER.test(text)) value = Number(text);
      setPointer(root, pointer, value);
    });
    return root;
  };

  // ---- the request the form describes ----
  const request = () => {
    const body = {
      name: nameInput.value.trim(),
      environment: envSel.value,
      blueprint: data.blueprint,
      version: data.version,
    };
    if (data.schema) body.values = valuesFrom(configForm, data.schema);
    const useExisting = {};
    const dependencyValues = {};
    deps.forEach((fs) => {
      const dep = fs.dataset.dep;
      const choice = fs.querySelector("input[type=radio]:checked");
      if (choice && choice.value) useExisting[dep] = choice.value;
      else if (data.dependencies[dep]) {
        dependencyValues[dep] = valuesFrom(fs.querySelector("[data-role=values]"), data.dependencies[dep]);
      }
    });
    if (Object.keys(useExisting).length) body.useExisting = useExisting;
    if (Object.keys(dependencyValues).length) body.dependencyValues = dependencyValues;
    return { org: orgSel.value, body };
  };
  let planned = null; // the request of the last successful plan
  const changed = () => {
    if (planned && planned !== JSON.stringify(request())) {
      planned = null;
      commitButton.disabled = true;
      result.replaceChildren(el("p", { class: "muted", text: "The form changed since the plan: plan again." }));
    }
  };

  // ---- field errors ----
  const clearErrors = () => {
    error.textContent = "";
    document.querySelectorAll("[data-install-error]").forEach((p) => p.remove());
    document.querySelectorAll("[data-install-invalid]").forEach((c) => {
      c.removeAttribute("aria-invalid");
      c.removeAttribute("aria-errormessage");
      c.removeAttribute("data-install-invalid");
    });
  };
  // Marks `c` invalid with `message` beside it; false when there is no such control.
  const markField = (c, message) => {
    if (!c || c.closest("[hidden]")) return false; // an unseen control: said in words instead
    const id = `${c.id}-install-error`;
    let p = document.getElementById(id);
    if (p) p.textContent += `; ${message}`;
    else {
      p = el("p", { class: "error-text field-error", id, "data-install-error": "", text: message });
      (c.closest(".field") || c.parentElement).append(p);
    }
    c.setAttribute("aria-invalid", "true");
    c.setAttribute("aria-errormessage", id);
    c.setAttribute("data-install-invalid", "");
    return true;
  };
  const valuesOf = (bp) => {
    if (bp === data.blueprint) return configForm;
    const fs = deps.find((d) => d.dataset.dep === bp);
    return fs ? fs.querySelector("[data-role=values]") : null;
  };
  // A value error at `pointer` of Blueprint `bp`'s values; a missing required property is
  // reported at its parent, so it moves to the property's own control.
  const markValue = (bp, pointer, message) => {
    const required = /^"([^"]+)" is a required property/.exec(message);
    const base = pointer === "/" ? "" : pointer;
    const at = required ? `${base}/${escapeKey(required[1])}` : pointer;
    return markField(control(valuesOf(bp), at), message);
  };
  // `fields[].field` / `field` of an error: a request field, or a pointer into the values of
  // `blueprint` (the Application's own when not named).
  const markWire = (field, message, blueprint) => {
    if (blueprint) return markValue(blueprint, field, message);
    if (field === "name") return markField(nameInput, message);
    if (field === "environment") return markField(envSel, message);
    const dep = /^\/?dependencyValues\/(bp-[^/]+)(\/.*)$/.exec(field);
    if (dep) return markValue(dep[1], dep[2], message);
    const own = /^\/?(?:values)?(\/.*)$/.exec(field);
    return own ? markValue(data.blueprint, own[1], message) : false;
  };
  // The write path names each value error as `bp-x values /pointer: message` in `detail`.
  const VALUE_ERROR = /(bp-[a-z0-9][a-z0-9-]*) values (\/[^:]*): (.*?)(?=; bp-[a-z0-9][a-z0-9-]* values \/|$)/g;
  const problem = async (res) => {
    if (res.status === 401 && window.catalystSignInLink) {
      error.replaceChildren("Your session has ended. ", window.catalystSignInLink());
      return;
    }
    const body = await res.json().catch(() => ({}));
    const detail = body.detail || `The server answered ${res.status}.`;
    let placed = 0;
    const rest = [];
    const fields = body.fields || [];
    fields.forEach((f) =>
      markWire(f.field, f.message, f.blueprint) ? placed++ : rest.push(`${f.blueprint ? `${f.blueprint} ` : ""}${f.field}: ${f.message}`));
    if (!fields.length && body.field && markWire(body.field, detail)) placed++;
    if (!fields.length && body.error === "invalid-values") {
      for (const m of detail.matchAll(VALUE_ERROR)) {
        if (markValue(m[1], m[2], m[3])) placed++;
        else rest.push(`${m[1]} ${m[2]}: ${m[3]}`);
      }
    }
    if (res.status === 403) error.textContent = `Your role may not install Applications here: ${detail}`;
    else if (placed) {
      error.replaceChildren("The request is not valid: see the marked fields.");
      if (rest.length) error.append(el("ul", {}, ...rest.map((r) => el("li", { text: r }))));
      const first = document.querySelector("[data-install-invalid]");
      if (first) first.focus();
    } else error.textContent = detail;
  };

  // ---- Organizations, Environments, existing Applications ----
  let generation = 0; // answers to an older choice are dropped
  const fill = (select, items, placeholder) => {
    const options = items.map(([value, label]) => el("option", { value, text: label }));
    if (items.length !== 1) options.unshift(el("option", { value: "", text: placeholder }));
    select.replaceChildren(...options);
  };
  // `apps`: the Environment's App cards; null while they load.
  const existingApps = (apps) => {
    deps.forEach((fs, i) => {
      const box = fs.querySelector("[data-role=existing]");
      const previous = (fs.querySelector("input[type=radio]:checked") || {}).value;
      const mine = (apps || []).filter((a) => a.blueprint === fs.dataset.dep);
      box.replaceChildren(
        ...mine.map((a) =>
          el(
            "label",
            { class: "option" },
            el("input", { type: "radio", name: `dep-${i}`, value: a.name, "data-choice": "existing" }),
            " ",
            el("span", {}, "Use the existing Application ", el("code", { text: a.name }), " ",
              el("span", { class: "muted", text: `(${a.blueprint} ${a.version}, ${a.status})` })),
          ),
        ),
      );
      if (apps && !mine.length) {
        box.append(el("p", { class: "muted", text: `No Application of this Environment runs ${fs.dataset.dep}.` }));
      }
      const keep = mine.some((a) => a.name === previous) ? previous : "";
      fs.querySelectorAll("input[type=radio]").forEach((r) => { r.checked = r.value === keep; });
      showValues(fs);
    });
  };
  const loadApps = async () => {
    const mine = ++generation;
    existingApps(null);
    changed();
    if (!orgSel.value || !envSel.value) return;
    try {
      const q = `?environment=${encodeURIComponent(envSel.value)}`;
      const body = await getJson(`/api/v1/orgs/${encodeURIComponent(orgSel.value)}/applications${q}`);
      if (mine === generation) existingApps(body.applications || []);
    } catch (e) { if (mine === generation) say(e); }
  };
  const loadEnvs = async () => {
    const mine = ++generation;
    clearErrors();
    fill(envSel, [], "Choose an Organization first");
    if (!orgSel.value) { loadApps(); return; }
    try {
      const body = await getJson(`/api/v1/orgs/${encodeURIComponent(orgSel.value)}/environments`);
      if (mine !== generation) return;
      const envs = (body.environments || []).map((e) => e.environment || {});
      const items = envs.map((e) => [e.spec.envType, e.metadata.name]);
      fill(envSel, items, "Choose an Environment");
      if (!items.length) {
        error.replaceChildren(`${orgSel.value} has no Environment yet; an org-admin creates one on `,
          el("a", { href: `/orgs/${encodeURIComponent(orgSel.value)}`, text: "the Organization's page" }), ".");
      }
      loadApps();
    } catch (e) { if (mine === generation) say(e); }
  };
  const start = async () => {
    try {
      const body = await getJson("/api/v1/orgs");
      const orgs = (body.organizations || []).map((o) => o.metadata.name);
      if (!orgs.length) {
        denied.textContent = "There is no Organization to install into yet.";
        denied.hidden = false;
        return;
      }
      fill(orgSel, orgs.map((o) => [o, o]), "Choose an Organization");
      howto.hidden = true;
      form.hidden = false;
      loadEnvs();
    } catch (e) {
      if (e.signIn && window.catalystSignInLink) denied.replaceChildren(`${e.message} `, window.catalystSignInLink());
      else denied.textContent = e.message;
      denied.hidden = false;
    }
  };

  // ---- dependency choices ----
  const showValues = (fs) => {
    const values = fs.querySelector("[data-role=values]");
    const choice = fs.querySelector("input[type=radio]:checked");
    if (values) values.hidden = !!(choice && choice.value);
  };
  const newNames = () => {
    deps.forEach((fs) => {
      const code = fs.querySelector("[data-role=new-name]");
      if (code) code.textContent = `${nameInput.value.trim()}-${fs.dataset.depShort}`;
    });
  };

  // ---- Plan and Install ----
  const busy = (on, text) => {
    planButton.disabled = on;
    commitButton.disabled = on || !planned;
    if (text) result.replaceChildren(el("p", { class: "muted", text }));
  };
  const appsOf = (answer, req) => {
    const names = {};
    names[req.body.name] = `${data.blueprint} ${data.version}`;
    deps.forEach((fs) => { names[`${req.body.name}-${fs.dataset.depShort}`] = `${fs.dataset.dep} ${fs.dataset.depVersion}`; });
    // Application repositories are `<org>/<app>`; `system/catalyst-config` carries the
    // Environment's Flux plumbing.
    return answer.commits
      .filter((c) => c.repo.startsWith(`${req.org}/`))
      .map((c) => c.repo.split("/").pop())
      .map((a) => [a, names[a] || ""]);
  };
  const showPlan = (answer, req) => {
    const created = appsOf(answer, req);
    const reused = Object.entries(req.body.useExisting || {});
    const parts = [el("h3", { text: "Plan" }),
      el("p", { text: `Installing into ${req.org}-${req.body.environment} would create:` }),
      el("ul", { id: "install-plan-apps" }, ...created.map(([a, bp]) =>
        el("li", { "data-plan-app": a }, el("code", { text: a }), bp ? ` (${bp})` : "")))];
    if (reused.length) {
      parts.push(el("p", { text: "and use the existing:" }),
        el("ul", {}, ...reused.map(([bp, a]) => el("li", { "data-plan-existing": a }, el("code", { text: a }), ` for ${bp}`))));
    }
    parts.push(el("p", { text: `${answer.commits.length} commit(s), one per repository (system/catalyst-config: the Environment's Flux plumbing):` }));
    answer.commits.forEach((c) => {
      parts.push(el("details", { class: "plan-commit", open: "" },
        el("summary", {}, el("code", { text: c.repo }), ` on ${c.branch}`),
        el("pre", { class: "diff", text: c.diff || "(no diff)" })));
    });
    parts.push(el("p", { class: "muted", text: "Nothing is written until you press Install." }));
    result.replaceChildren(...parts);
  };
  const send = async (dryRun) => {
    clearErrors();
    const req = request();
    const missing = [[!req.org, orgSel, "Choose an Organization."], [!req.body.environment, envSel, "Choose an Environment."],
      [!req.body.name, nameInput, "Give the Application a name."]].filter(([bad]) => bad);
    if (missing.length) {
      missing.forEach(([, c, m]) => markField(c, m));
      error.textContent = "Some fields are missing: see the marked fields.";
      missing[0][1].focus();
      return;
    }
    if (!dryRun && planned !== JSON.stringify(req)) return;
    busy(true, dryRun ? "Planning…" : "Installing…");
    const url = `/api/v1/orgs/${encodeURIComponent(req.org)}/applications${dryRun ? "?dryRun=true" : ""}`;
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(req.body),
    }).catch(() => null);
    if (!res) {
      busy(false, "");
      result.replaceChildren();
      error.textContent = "The server could not be reached; try again.";
      return;
    }
    if (!res.ok) {
      planned = null;
      busy(false);
      result.replaceChildren();
      await problem(res);
      return;
    }
    const answer = await res.json();
    if (dryRun) {
      planned = JSON.stringify(req);
      showPlan(answer, req);
      busy(false);
      commitButton.focus();
      return;
    }
    planned = null;
    const page = `/orgs/${encodeURIComponent(req.org)}/environments/${encodeURIComponent(req.body.environment)}`;
    result.replaceChildren(el("p", { class: "ok-text", id: "install-done" },
      `✓ Installed ${answer.name} into ${req.org}-${req.body.environment} (${answer.commits.length} commit(s)). `,
      el("a", { href: page, text: "Open the Environment" })));
    busy(false);
    location.assign(page);
  };

  form.addEventListener("submit", (ev) => { ev.preventDefault(); send(true); });
  commitButton.addEventListener("click", () => send(false));
  orgSel.addEventListener("change", loadEnvs);
  envSel.addEventListener("change", loadApps);
  nameInput.addEventListener("input", newNames);
  deps.forEach((fs) => fs.addEventListener("change", () => showValues(fs)));
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  if (configForm) {
    configForm.addEventListener("input", changed);
    configForm.addEventListener("change", changed);
  }

  fetch("/api/v1/session", { headers: { accept: "application/json" } })
    .then((res) => (res.ok ? res.json() : null))
    .then((who) => {
      if (!who || typeof who.name !== "string") return; // the how-to and its sign-in link stay
      if (!WRITERS.includes(who.role)) {
        denied.textContent = `You are signed in as ${who.name} (${who.role}); installing needs an org-admin or org-developer.`;
        denied.hidden = false;
        return;
      }
      start();
    })
    .catch(() => {});
})();
