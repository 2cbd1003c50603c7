// Who is signed in: asks GET /api/v1/session (the HttpOnly cookie goes along) and, when there
// is a session, shows the name and role with a Sign-out button in the header, and hides the
// deployment links from roles other than sovereign-admin. Without
// JavaScript, or without a session, the header keeps its "Sign in" link. Also offers the other
// scripts a sign-in link for when the session ends under them (a 401).
(() => {
  "use strict";
  // For the other scripts: a "Sign in" link that comes back to this page.
  window.catalystSignInLink = () => {
    const a = document.createElement("a");
    a.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
    a.textContent = "Sign in again";
    return a;
  };
  const slot = document.getElementById("session");
  if (!slot) return;
  fetch("/api/v1/session", { headers: { accept: "application/json" } })
    .then((res) => (res.ok ? res.json() : null))
    .then((who) => {
      if (!who || typeof who.name !== "string") return;
      const label = document.createElement("span");
      label.className = "who";
      label.textContent = who.org ? `${who.name} (${who.role}, ${who.org})` : `${who.name} (${who.role})`;
      const form = document.createElement("form");
      form.className = "signout";
      form.method = "post";
      form.action = "/api/v1/session/end";
      const button = document.createElement("button");
      button.type = "submit";
      button.className = "link";
      button.textContent = "Sign out";
      form.append(button);
      slot.replaceChildren(label, document.createTextNode(" "), form);
      slot.dataset.signedIn = "1";
      // Deployments are sovereign-admin business: other roles do not see their links (the
      // server refuses those pages regardless).
      if (who.role !== "sovereign-admin") {
        document.querySelectorAll('header nav a[href^="/sovereign/"]').forEach((a) => {
          const item = a.closest("li");
          if (item) item.hidden = true;
        });
      }
    })
    .catch(() => {});
})();
