// Write controls of the Organization pages (shown to those whose role allows them; the API
// decides again). "Create" posts to /api/v1/orgs and opens the new Organization. "Add member"
// posts to /api/v1/orgs/{org}/members and shows the new token once; "Remove" deletes the member
// (their token stops at once). The session cookie goes along; errors are shown in words beside
// the form.
(() => {
  "use strict";
  const create = document.getElementById("create-org");
  if (create) {
    const error = create.querySelector("[data-role=error]");
    create.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      const name = create.elements.name.value.trim();
      const res = await fetch("/api/v1/orgs", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ name }),
      }).catch(() => null);
      if (!res) { error.textContent = "The server could not be reached; try again."; return; }
      if (res.status !== 201) {
        const body = await res.json().catch(() => ({}));
        error.textContent = body.detail || `The server answered ${res.status}.`;
        return;
      }
      location.assign(`/orgs/${encodeURIComponent(name)}`);
    });
  }
  const form = document.getElementById("add-member");
  if (!form) return;
  const org = form.dataset.org;
  const error = form.querySelector("[data-role=error]");
  const tokenBox = form.querySelector("[data-role=token]");
  const tokenValue = form.querySelector("[data-role=token-value]");
  const problem = async (res) => {
    if (res.status === 401 && window.catalystSignInLink) {
      error.replaceChildren("Your session has ended. ", window.catalystSignInLink());
      return;
    }
    const body = await res.json().catch(() => ({}));
    error.textContent = body.detail || `The server answered ${res.status}.`;
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    tokenBox.hidden = true;
    const body = { name: form.elements.name.value.trim(), role: form.elements.role.value };
    const res = await fetch(`/api/v1/orgs/${encodeURIComponent(org)}/members`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(body),
    }).catch(() => null);
    if (!res) { error.textContent = "The server could not be reached; try again."; return; }
    if (res.status !== 201) { await problem(res); return; }
    const created = await res.json();
    tokenValue.textContent = created.token;
    tokenBox.hidden = false;
    form.elements.name.value = "";
  });
  document.addEventListener("click", async (ev) => {
    const button = ev.target.closest("[data-remove-member]");
    if (!button) return;
    const name = button.dataset.removeMember;
    if (!window.confirm(`Remove ${name}? Their token stops working at once.`)) return;
    const res = await fetch(`/api/v1/orgs/${encodeURIComponent(org)}/members/${encodeURIComponent(name)}`, {
      method: "DELETE",
      headers: { accept: "application/json" },
    }).catch(() => null);
    if (!res) { error.textContent = "The server could not be reached; try again."; return; }
    if (!res.ok) { await problem(res); return; }
    const item = button.closest("[data-member]");
    if (item) item.remove();
  });
})();
