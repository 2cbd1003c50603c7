//! An Application's page in headless Chromium against the real binary, each step through the
//! same `/api/v1` the CLI uses:
//! - an invalid value is refused at its field with the schema's message; a valid change shows
//!   its Plan (the dry-run diff), commits and appears in the History; Roll back restores the
//!   previous values;
//! - Promote dev → stg where the policy needs one approval: the org-developer's Promote is
//!   refused with the reason (and offers no Approve), an org-admin approves in another browser,
//!   the first page sees the approval arrive and its Promote succeeds;
//! - an org-viewer sees no write control; a member of another Organization gets the "not found"
//!   page;
//! - a signed Flux `Ready` notification turns the card ready on an open page without a reload.
//!
//! Screenshots go to `target/console-screenshots/`.
mod support;

use catalyst_testkit::browser::{browser, Browser};
use serde_json::{json, Value};
use support::Catalyst;

/// Text of the first element `css` finds ("" when none).
async fn text(b: &Browser, css: &str) -> String {
    b.js(&format!(
        "const e = document.querySelector({}); return e ? e.textContent : '';",
        json!(css)
    ))
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// The values of `orders` in `acme-<env>` as the API has them.
async fn values(c: &Catalyst, env: &str) -> Value {
    let (_, v) = c.get_json("/api/v1/orgs/acme/applications/orders").await;
    v["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment"] == format!("acme-{env}"))
        .map(|e| e["values"].clone())
        .unwrap_or(Value::Null)
}

fn flux_ready(app: &str) -> String {
    json!({
        "involvedObject": {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "name": app,
                           "namespace": "acme-dev", "uid": "5bb5a2a4-8e58-4b2e-9f1c-0d7d3c1f2a11"},
        "severity": "info",
        "timestamp": "2026-12-07T10:15:00Z",
        "message": format!("Helm install succeeded for release acme-dev/{app}.v1 with chart bp-postgres@1.2.0"),
        "reason": "InstallSucceeded",
        "metadata": {"helm.toolkit.fluxcd.io/revision": "1.2.0"},
        "reportingController": "helm-controller",
        "reportingInstance": "helm-controller-6f7c9d8b5-qx2lp"
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_plan_history_rollback_promotion_roles_and_flux_status_on_the_application_page() {
    let Some(a) = browser().await else { return };
    let Some(b) = browser().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("flux.key");
    let key = "flux-webhook-key-for-the-browser-test";
    std::fs::write(&key_file, key).unwrap();
    let key_arg = key_file.to_str().unwrap().to_owned();
    let c = Catalyst::console(
        &dir.path().join("data"),
        &["--flux-webhook-key-file", &key_arg],
    );
    c.organization(
        "acme",
        &[
            ("dev", json!({"rules": []})),
            (
                "stg",
                json!({"rules": [{"kind": "pr-required", "minApprovals": 1}]}),
            ),
        ],
    )
    .await;
    c.organization("beta", &[]).await;
    let (status, v) = c
        .post_json(
            "/api/v1/orgs/acme/applications",
            &json!({"name": "orders", "environment": "dev", "blueprint": "bp-postgres", "version": "1.2.0", "values": {"instances": 1}}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let tokens: std::collections::HashMap<&str, String> = [
        ("devi", c.member("acme", "devi", "org-developer").await),
        ("ada", c.member("acme", "ada", "org-admin").await),
        ("vic", c.member("acme", "vic", "org-viewer").await),
        ("bob", c.member("beta", "bob", "org-admin").await),
    ]
    .into();

    // The org-developer on the Application's page.
    a.sign_in(&c.base, &tokens["devi"], "/orgs/acme/applications/orders")
        .await;
    a.wait_for(
        "!!document.querySelector('[data-manage=\"dev\"] form[data-values]')",
        "the values form",
    )
    .await;

    // An invalid value: refused at its field with the schema's message; nothing committed.
    let field = "[data-manage=\"dev\"] [name=\"/instances\"]";
    a.type_into(field, "9").await;
    a.click("[data-manage=\"dev\"] form[data-values] button[type=submit]")
        .await;
    a.wait_for(
        "(() => { const p = document.querySelector('[data-manage=\"dev\"] [data-error-for=\"/instances\"]'); return !p.hidden && /5/.test(p.textContent); })()",
        "the schema's message at the instances field",
    )
    .await;
    assert_eq!(
        a.js(&format!(
            "return document.querySelector({}).getAttribute('aria-invalid');",
            json!(field)
        ))
        .await,
        json!("true")
    );
    a.screenshot("app-invalid-value").await;
    assert_eq!(values(&c, "dev").await["instances"], json!(1));

    // A valid change: the Plan shows the diff, Commit makes it, the History shows it.
    a.type_into(field, "3").await;
    a.click("[data-manage=\"dev\"] form[data-values] button[type=submit]")
        .await;
    a.wait_for(
        "(() => { const p = document.querySelector('[data-manage=\"dev\"] form[data-values] [data-role=plan]'); return !p.hidden && /instances: 3/.test(p.textContent); })()",
        "the Plan's diff",
    )
    .await;
    assert!(
        text(&a, "[data-manage=\"dev\"] [data-error-for=\"/instances\"]")
            .await
            .is_empty(),
        "the field's error is gone"
    );
    a.screenshot("app-values-plan").await;
    assert_eq!(
        values(&c, "dev").await["instances"],
        json!(1),
        "a Plan commits nothing"
    );
    a.click("[data-manage=\"dev\"] form[data-values] [data-role=commit]")
        .await;
    a.wait_for(
        "!!document.querySelector('[data-manage=\"dev\"] [data-role=committed]')",
        "the commit",
    )
    .await;
    a.wait_for(
        "[...document.querySelectorAll('table.history tbody tr')].some(r => /Change values of orders in acme-dev/.test(r.textContent))",
        "the change in the History",
    )
    .await;
    assert_eq!(values(&c, "dev").await["instances"], json!(3));
    a.screenshot("app-values-committed").await;

    // Roll back to the install: the previous values return, and the form shows them.
    a.js("window.confirm = () => true; return 1;").await;
    a.click("[data-rollback][data-env=\"dev\"]").await;
    a.wait_for(
        &format!(
            "document.querySelector({}) && document.querySelector({}).value === '1' && [...document.querySelectorAll('table.history tbody tr')].some(r => r.dataset.kind === 'application.rolled-back')",
            json!(field),
            json!(field)
        ),
        "the rolled-back values",
    )
    .await;
    assert_eq!(values(&c, "dev").await["instances"], json!(1));
    a.screenshot("app-rolled-back").await;

    // Promote dev → stg needs one approval: refused with the reason; no Approve for a developer.
    a.wait_for(
        "/needs 1 approval/.test(document.querySelector('[data-promotion] [data-role=state]').textContent)",
        "the policy's state",
    )
    .await;
    assert_eq!(
        a.js("return !!document.querySelector('[data-promotion] [data-role=approve]');")
            .await,
        json!(false),
        "an org-developer has no Approve"
    );
    a.click("[data-promotion] [data-role=promote]").await;
    a.wait_for(
        "/pr-required/.test(document.querySelector('[data-promotion] [data-role=error]').textContent)",
        "the refusal naming the rule",
    )
    .await;
    a.screenshot("app-promote-refused").await;

    // An org-admin approves in another browser; the first page sees it arrive.
    b.sign_in(&c.base, &tokens["ada"], "/orgs/acme/applications/orders")
        .await;
    b.wait_for(
        "!!document.querySelector('[data-promotion] [data-role=approve]')",
        "Approve",
    )
    .await;
    b.click("[data-promotion] [data-role=approve]").await;
    b.wait_for(
        "/Approved by ada/.test(document.querySelector('[data-promotion] [data-role=approvals]').textContent)",
        "the approval",
    )
    .await;
    a.wait_for(
        "document.querySelector('[data-promotion]').dataset.allowed === 'true'",
        "the approval on the first page",
    )
    .await;
    a.click("[data-promotion] [data-role=promote]").await;
    a.wait_for(
        "!!document.querySelector('#live li.card[data-env=\"acme-stg\"]')",
        "the stg card",
    )
    .await;
    assert_eq!(values(&c, "stg").await["instances"], json!(1));
    a.screenshot("app-promoted").await;

    // Upgrade dev to the newer version: its plan, then the upgrade.
    a.click("[data-manage=\"dev\"] form[data-upgrade] button[type=submit]")
        .await;
    a.wait_for(
        "(() => { const p = document.querySelector('[data-manage=\"dev\"] form[data-upgrade] [data-role=plan]'); return !p.hidden && /1\\.3\\.0/.test(p.textContent); })()",
        "the upgrade plan",
    )
    .await;
    a.click("[data-manage=\"dev\"] form[data-upgrade] [data-role=commit]")
        .await;
    a.wait_for(
        "!!document.querySelector('#live li.card[data-env=\"acme-dev\"][data-version=\"1.3.0\"]')",
        "dev on 1.3.0",
    )
    .await;

    // An org-viewer sees no write control.
    b.client.delete_all_cookies().await.unwrap();
    b.sign_in(&c.base, &tokens["vic"], "/orgs/acme/applications/orders")
        .await;
    b.wait_for("!!document.querySelector('#live li.card')", "the cards")
        .await;
    assert_eq!(
        b.js("return document.querySelectorAll('main [data-manage], main form, main button, [data-rollback], [data-role=promote], [data-role=approve]').length;")
            .await,
        json!(0),
        "no write control for an org-viewer"
    );
    b.screenshot("app-viewer").await;

    // A member of another Organization: not found.
    b.client.delete_all_cookies().await.unwrap();
    b.sign_in(&c.base, &tokens["bob"], "/orgs/beta").await;
    b.client
        .goto(&c.url("/orgs/acme/applications/orders"))
        .await
        .unwrap();
    b.wait_for(
        "/does not exist, or your sign-in does not reach it/.test(document.body.textContent)",
        "the not-found page",
    )
    .await;
    assert_eq!(
        b.js("return document.querySelectorAll('#live, [data-manage]').length;")
            .await,
        json!(0)
    );

    // Flux says Ready: the card turns ready on the open Environment page, without a reload.
    a.client
        .goto(&c.url("/orgs/acme/environments/dev"))
        .await
        .unwrap();
    a.wait_for(
        "!!document.querySelector('[data-app=\"orders\"][data-status=\"committed\"]')",
        "orders committed",
    )
    .await;
    a.js("window.__notReloaded = true; return 1;").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let body = flux_ready("orders");
    let r = reqwest::Client::new()
        .post(c.url("/api/v1/hooks/flux"))
        .header("content-type", "application/json")
        .header("x-signature", support::flux_signature(key, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());
    a.wait_for(
        "!!document.querySelector('[data-app=\"orders\"][data-status=\"ready\"]')",
        "orders ready",
    )
    .await;
    assert_eq!(
        a.js("return window.__notReloaded === true;").await,
        json!(true),
        "the status came in place, not by a reload"
    );
    a.screenshot("environment-flux-ready").await;
}
