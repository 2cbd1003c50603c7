//! Browser tests: headless Chromium (Debian's `chromium` + `chromium-driver`) driven over
//! WebDriver with fantoccini. Each saves screenshots under `target/console-screenshots/`.
//! Without Chromium they skip with a printed reason, unless `CATALYST_REQUIRE_SERVICES=1`.
mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use support::{browser, hetzner_stub, PacedDryRun, Proxy, Server};

const TOKEN: &str = "hz-browser-SECRET-0123456789abcdef0123456789abcdef0123456789abcdef0123";

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// The seqs of the log lines on the page, in order.
async fn log_seqs(b: &support::Browser) -> Vec<u64> {
    let v = b
        .js("return [...document.querySelectorAll('#log li')].map(li => Number(li.dataset.seq));")
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

/// Every line once, in order, none missing: exactly 1..=n.
fn assert_exact_log(seqs: &[u64], n: u64, when: &str) {
    let unique: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(
        unique.len(),
        seqs.len(),
        "{when}: a line is duplicated: {seqs:?}"
    );
    assert_eq!(
        seqs,
        (1..=n).collect::<Vec<_>>(),
        "{when}: lines missing or out of order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wizard_provisions_a_dry_run_sovereign_and_the_progress_page_reaches_ready() {
    let Some(b) = browser().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let hetzner = hetzner_stub().await;
    let server = Server::start(
        dir.path(),
        any_port(),
        PacedDryRun::new(dir.path(), 12, Duration::from_millis(150)),
        &hetzner,
    )
    .await;
    // Phone width: the wizard must be usable there.
    b.client.set_window_size(412, 915).await.unwrap();
    // The wizard is sovereign-admin business: the first visit lands on the sign-in page.
    b.sign_in(&server.url(""), &server.admin, "/sovereign/wizard")
        .await;
    b.wait_for(
        "document.getElementById('session').textContent.includes('root (sovereign-admin)')",
        "the signed-in name in the header",
    )
    .await;
    b.client.goto(&server.url("/")).await.unwrap();
    b.wait_for(
        "document.documentElement.dataset.wizardReady === '1'",
        "the wizard",
    )
    .await;
    assert!(b
        .client
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/sovereign/wizard"));

    // 1. Organisation
    // Enter in a field continues, like the button.
    b.type_into("#org-name", "Acme Financial\u{E007}").await;
    // 2. Topology: Solo (one region)
    b.wait_for(
        "!document.querySelector('[data-step=\"2\"]').hidden",
        "step 2",
    )
    .await;
    b.click("input[name=topology][value=solo]").await;
    b.click("#next").await;
    // 3. Provider: defaults (Hetzner, fsn1, cpx32); one worker
    b.wait_for("document.getElementById('r0-provider')", "step 3")
        .await;
    // The region cards re-render on `change`, so set the count the way one keystroke + blur does.
    b.js("const w = document.getElementById('r0-workers'); w.value = '1'; w.dispatchEvent(new Event('change')); return 1;").await;
    b.wait_for("document.getElementById('r0-worker')", "worker size")
        .await;
    b.click("#next").await;
    // 4. Credentials: the token is checked through the API (against the Hetzner stand-in)
    b.wait_for("document.getElementById('token-hetzner')", "step 4")
        .await;
    b.type_into("#token-hetzner", TOKEN).await;
    b.click("#token-hetzner-validate").await;
    b.wait_for(
        "document.getElementById('token-hetzner-status').textContent.includes('accepted')",
        "token accepted",
    )
    .await;
    b.type_into("#hetzner-project", "4711").await;
    b.click("#ssh-generate-btn").await;
    b.wait_for(
        "document.getElementById('ssh-private').value.includes('OPENSSH PRIVATE KEY')",
        "private key shown",
    )
    .await;
    assert_eq!(
        b.js("return !document.getElementById('ssh-download').hidden && !document.getElementById('ssh-private-box').hidden;").await,
        json!(true)
    );
    b.click("#next").await;
    // 5. Components: Gitea pulls in PostgreSQL, Keycloak and cert-manager, shown as dependencies
    b.wait_for("document.getElementById('comp-search')", "step 5")
        .await;
    b.type_into("#comp-search", "git").await;
    b.wait_for("document.getElementById('comp-bp-gitea')", "gitea listed")
        .await;
    b.click("#comp-bp-gitea").await;
    b.type_into("#comp-search", "").await;
    b.js("document.getElementById('comp-search').dispatchEvent(new Event('input')); return 1;")
        .await;
    b.wait_for(
        "document.querySelector('li[data-name=\"bp-keycloak\"].required')",
        "keycloak pulled in",
    )
    .await;
    let deps = b
        .js("return [...document.querySelectorAll('#components li.required')].map(li => li.dataset.name).sort();")
        .await;
    assert_eq!(
        deps,
        json!(["bp-cert-manager", "bp-keycloak", "bp-postgres"])
    );
    assert_eq!(
        b.js("return document.getElementById('comp-bp-postgres').disabled && document.getElementById('comp-bp-postgres').checked;").await,
        json!(true)
    );
    b.screenshot("wizard-components").await;
    b.click("#next").await;
    // 6. Domain: pool subdomain with the live availability check
    b.wait_for(
        "!document.querySelector('[data-step=\"6\"]').hidden",
        "step 6",
    )
    .await;
    b.type_into("#subdomain", "acme").await;
    b.wait_for(
        "document.getElementById('domain-status').textContent.includes('is available')",
        "subdomain available",
    )
    .await;
    b.type_into("#org-email", "platform@acme.io").await;
    b.click("#next").await;
    // 7. Review: the token is masked; nothing secret was saved in the browser
    b.wait_for(
        "!document.querySelector('[data-step=\"7\"]').hidden",
        "review",
    )
    .await;
    let review = b
        .js("return document.getElementById('review').textContent;")
        .await;
    let review = review.as_str().unwrap();
    assert!(
        !review.contains(TOKEN) && review.contains("••••••••0123"),
        "{review}"
    );
    assert!(
        review.contains("acme.omani.works")
            && review.contains("bp-keycloak (dependency of bp-gitea)"),
        "{review}"
    );
    let saved = b
        .js("return localStorage.getItem('catalyst-wizard');")
        .await;
    let saved = saved.as_str().unwrap();
    assert!(!saved.contains(TOKEN), "the token was saved: {saved}");
    assert!(!saved.contains("PRIVATE KEY"), "the private key was saved");
    assert!(saved.contains("Acme Financial"));
    b.screenshot("wizard-review-phone").await;

    // A reload keeps the answers but not the secrets: it resumes at Credentials.
    b.client.refresh().await.unwrap();
    b.wait_for(
        "document.documentElement.dataset.wizardReady === '1'",
        "wizard after reload",
    )
    .await;
    assert_eq!(
        b.js("return document.getElementById('org-name').value;")
            .await,
        json!("Acme Financial")
    );
    b.wait_for(
        "!document.querySelector('[data-step=\"4\"]').hidden",
        "back at credentials",
    )
    .await;
    assert_eq!(
        b.js("return document.getElementById('token-hetzner').value;")
            .await,
        json!("")
    );
    // This time, the dry-run server's skip: a placeholder token, no check.
    assert_eq!(
        b.js("return !!document.getElementById('wizard-dry-run');")
            .await,
        json!(true)
    );
    b.click("#token-hetzner-dry-run").await;
    b.wait_for(
        "document.getElementById('token-hetzner-status').textContent.includes('Placeholder')",
        "placeholder token",
    )
    .await;
    b.wait_for(
        "!document.querySelector('#steps [data-goto=\"7\"]').disabled",
        "review reachable again",
    )
    .await;
    b.click("#steps button[data-goto=\"7\"]").await;
    b.wait_for(
        "!document.querySelector('[data-step=\"7\"]').hidden",
        "review again",
    )
    .await;

    b.client.set_window_size(1280, 1000).await.unwrap();
    // The session ends under the wizard (signed out elsewhere): Launch says so, keeps every
    // answer, and goes through once the browser has a session again.
    b.js("await fetch('/api/v1/session', {method: 'DELETE'}); return true;")
        .await;
    b.click("#launch").await;
    b.wait_for(
        "document.getElementById('launch-error').textContent.includes('session has ended') && !!document.querySelector('#launch-error a[href^=\"/login?next=\"]')",
        "the signed-out message",
    )
    .await;
    assert!(b
        .client
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/sovereign/wizard"));
    b.js(&format!(
        "const r = await fetch('/api/v1/session', {{method: 'POST', headers: {{'content-type': 'application/json'}}, body: JSON.stringify({{token: {}}})}}); return r.status;",
        json!(server.admin)
    ))
    .await;
    b.click("#launch").await;
    b.wait_for(
        "location.pathname.startsWith('/sovereign/provision/')",
        "the progress page",
    )
    .await;
    let path = b.client.current_url().await.unwrap().path().to_owned();
    let id = path.rsplit('/').next().unwrap().to_owned();
    b.wait_for(
        "document.getElementById('progress').dataset.ready === '1'",
        "progress script",
    )
    .await;
    b.wait_for(
        "document.querySelectorAll('#resources tbody tr').length > 0",
        "per-resource progress",
    )
    .await;
    b.screenshot("progress-running").await;

    // Watch it reach ready.
    b.wait_for(
        "!document.getElementById('success').hidden",
        "the success card",
    )
    .await;
    assert_eq!(
        b.js("return document.getElementById('status').textContent;")
            .await,
        json!("Ready")
    );
    assert_eq!(
        b.js("return document.getElementById('dry-run').hidden;")
            .await,
        json!(false)
    );
    let result = b
        .js("return document.getElementById('result').textContent;")
        .await;
    assert!(result
        .as_str()
        .unwrap()
        .contains("console.acme.omani.works"));
    let state = server.get_json(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(state["status"], "ready");
    assert_eq!(state["dryRun"], true);
    assert_exact_log(
        &log_seqs(&b).await,
        state["numEvents"].as_u64().unwrap(),
        "after ready",
    );
    let phases = b.js("return [...document.querySelectorAll('#phases li')].every(li => li.classList.contains('done'));").await;
    assert_eq!(phases, json!(true));
    b.screenshot("progress-ready-dry-run").await;
    let page = b.client.source().await.unwrap();
    assert!(!page.contains(TOKEN));

    // The deployments list links to it; `/` now goes to the list.
    b.client.goto(&server.url("/")).await.unwrap();
    b.wait_for(
        &format!("document.querySelector('tr[data-id=\"{id}\"]')"),
        "the deployments list",
    )
    .await;
    b.screenshot("deployments").await;
    b.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_stream_resumes_the_log_without_duplicates() {
    let Some(b) = browser().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let hetzner = hetzner_stub().await;
    let server = Server::start(
        dir.path(),
        any_port(),
        PacedDryRun::new(dir.path(), 150, Duration::from_millis(100)),
        &hetzner,
    )
    .await;
    // The browser reaches the server through a proxy that can cut every connection. It signs
    // in first, so the run (paced to last a few seconds) starts only once the page can follow.
    let proxy = Proxy::start(server.addr).await;
    b.sign_in(&proxy.url(""), &server.admin, "/sovereign/deployments")
        .await;
    let id = server.create("restart", TOKEN).await;
    b.client
        .goto(&proxy.url(&format!("/sovereign/provision/{id}")))
        .await
        .unwrap();
    b.wait_for(
        "document.querySelectorAll('#log li').length >= 5",
        "some lines",
    )
    .await;

    // A network blip: the stream is cut while the run goes on; EventSource reconnects with
    // Last-Event-ID and the log continues with no line twice and none missing.
    proxy.cut();
    let cut_at = log_seqs(&b).await.len();
    b.wait_for(
        &format!(
            "document.querySelectorAll('#log li').length >= {}",
            cut_at + 5
        ),
        "lines after the blip",
    )
    .await;
    let before = log_seqs(&b).await;
    assert_exact_log(&before, before.len() as u64, "after the blip");

    // A restart mid-stream: the connection dies first (as with kill -9), then the process
    // stops (recording the run as failed with the operator message) and a new one starts
    // over the same data directory. The page never saw the end from the old process: it
    // reconnects to the new one with Last-Event-ID and shows the rest once.
    proxy.set_backend(None);
    proxy.cut();
    server.stop().await;
    let server = Server::start(
        dir.path(),
        any_port(),
        PacedDryRun::new(dir.path(), 5, Duration::from_millis(50)),
        &hetzner,
    )
    .await;
    proxy.set_backend(Some(server.addr));
    b.wait_for(
        "!document.getElementById('failure').hidden",
        "the failure card",
    )
    .await;
    let state = server.get_json(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(state["status"], "failed");
    let n = state["numEvents"].as_u64().unwrap();
    let after = log_seqs(&b).await;
    assert!(after.len() > before.len());
    assert_exact_log(&after, n, "after the restart");
    let error = b
        .js("return document.getElementById('failure-error').textContent;")
        .await;
    assert_eq!(error, state["error"]);
    // The operator message was recorded by the stopping process after the page lost it, so
    // it can only have come through the new one.
    let last = b
        .js("return document.querySelector('#log li:last-child').textContent;")
        .await;
    assert!(
        last.as_str().unwrap().contains("restarted"),
        "last line: {last}"
    );
    b.screenshot("progress-failed-after-restart").await;

    // Retry: the restarted server no longer holds the token, so the page asks for it.
    b.click("#retry").await;
    b.wait_for(
        "!document.getElementById('retry-token').hidden",
        "the token prompt",
    )
    .await;
    b.type_into("#retry-token-input", TOKEN).await;
    b.click("#retry-token button[type=submit]").await;
    b.wait_for(
        "!document.getElementById('success').hidden",
        "ready after retry",
    )
    .await;
    let state = server.get_json(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(state["status"], "ready");
    assert_exact_log(
        &log_seqs(&b).await,
        state["numEvents"].as_u64().unwrap(),
        "after the retry",
    );
    assert_eq!(
        b.js("return document.getElementById('retry-token-input').value;")
            .await,
        json!("")
    );
    b.screenshot("progress-ready-after-retry").await;
    b.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_marketplace_filters_and_validates_a_config_form() {
    let Some(b) = browser().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        any_port(),
        PacedDryRun::new(dir.path(), 0, Duration::ZERO),
        "http://127.0.0.1:9",
    )
    .await;
    b.client.goto(&server.url("/marketplace")).await.unwrap();
    b.wait_for(
        "document.documentElement.dataset.marketReady === '1'",
        "the marketplace",
    )
    .await;
    let visible = "return [...document.querySelectorAll('#market-grid > li')].filter(li => !li.hidden).map(li => li.dataset.name).sort();";
    assert_eq!(b.js(visible).await.as_array().unwrap().len(), 7);
    b.type_into("#market-q", "sign-on").await;
    b.wait_for(
        "document.getElementById('market-count').textContent.startsWith('1 of')",
        "search",
    )
    .await;
    assert_eq!(b.js(visible).await, json!(["bp-keycloak"]));
    b.type_into("#market-q", "").await;
    b.js("document.getElementById('market-q').dispatchEvent(new Event('input')); return 1;")
        .await;
    b.client
        .find(fantoccini::Locator::Css("#market-family"))
        .await
        .unwrap()
        .select_by_value("observability")
        .await
        .unwrap();
    b.wait_for(
        "document.getElementById('market-count').textContent.startsWith('2 of')",
        "family filter",
    )
    .await;
    assert_eq!(b.js(visible).await, json!(["bp-grafana", "bp-loki"]));
    assert!(b
        .client
        .current_url()
        .await
        .unwrap()
        .query()
        .unwrap_or("")
        .contains("family=observability"));
    b.screenshot("marketplace-filtered").await;

    // Detail: resolved tree, and the config form validated on the server.
    b.click("li[data-name=\"bp-grafana\"] a").await;
    b.wait_for("document.getElementById('dep-tree')", "the detail page")
        .await;
    let tree = b
        .js("return document.getElementById('dep-tree').textContent;")
        .await;
    for name in ["bp-loki", "bp-keycloak", "bp-postgres", "bp-cert-manager"] {
        assert!(tree.as_str().unwrap().contains(name), "{name} in {tree}");
    }
    b.client
        .goto(&server.url("/marketplace/bp-gitea"))
        .await
        .unwrap();
    b.wait_for("document.getElementById('config-form')", "the gitea form")
        .await;
    b.click("#config-form button[type=submit]").await;
    b.wait_for(
        "document.getElementById('config-result')",
        "validation result",
    )
    .await;
    assert!(b
        .js("return document.getElementById('config-result').textContent;")
        .await
        .as_str()
        .unwrap()
        .contains("not valid"));
    b.type_into("input[name=\"/hostname\"]", "git.acme.io")
        .await;
    b.click("#config-form button[type=submit]").await;
    b.wait_for("document.getElementById('config-result') && document.getElementById('config-result').textContent.includes('are valid')", "valid").await;
    let values: Value = serde_json::from_str(
        b.js("return document.getElementById('config-values').textContent;")
            .await
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        values,
        json!({"hostname": "git.acme.io", "registration": {"open": false}})
    );
    b.screenshot("marketplace-gitea-valid").await;
    b.client.clone().close().await.unwrap();
}
