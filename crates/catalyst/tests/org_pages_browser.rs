//! The Organization pages in headless Chromium against the real binary: an org-admin adds a
//! member and sees the token once, an install made through the API appears on an open
//! Environment page without a reload (the page follows the event stream), and a member is
//! removed. Screenshots go to `target/console-screenshots/`.
mod support;

use catalyst_testkit::browser::browser;
use serde_json::json;
use support::Catalyst;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_admin_manages_members_and_sees_installs_live() {
    let Some(b) = browser().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let c = Catalyst::console(dir.path(), &[]);
    c.organization("acme", &[("dev", json!({"rules": []}))])
        .await;
    let olga = c.member("acme", "olga", "org-admin").await;

    // Signed in as an org-admin of acme; `/` lands on the Organization.
    b.sign_in(&c.base, &olga, "/orgs").await;
    b.client.goto(&c.url("/")).await.unwrap();
    b.wait_for("location.pathname === '/orgs/acme'", "acme's page")
        .await;
    // Deployments are not an org-admin's: their links are hidden.
    b.wait_for(
        "document.getElementById('session').dataset.signedIn === '1' && [...document.querySelectorAll('header nav a[href^=\"/sovereign/\"]')].every(a => a.closest('li').hidden)",
        "the deployment links hidden",
    )
    .await;

    // Add a member: the token is shown once.
    b.type_into("#member-name", "dana").await;
    b.click("#add-member button[type=submit]").await;
    b.wait_for(
        "!document.querySelector('#add-member [data-role=token]').hidden && document.querySelector('[data-role=token-value]').textContent.length > 20",
        "the new member's token",
    )
    .await;
    b.screenshot("org-member-added").await;
    let token = b
        .js("return document.querySelector('[data-role=token-value]').textContent;")
        .await;
    let dana = token.as_str().unwrap().to_owned();
    let who = c
        .client()
        .get(c.url("/api/v1/session"))
        .bearer_auth(&dana)
        .send()
        .await
        .unwrap();
    assert_eq!(who.status(), 200, "the token shown works");
    // The list follows the event stream: dana appears without a reload.
    b.wait_for(
        "!!document.querySelector('[data-member=\"dana\"]')",
        "dana in the member list",
    )
    .await;

    // An open Environment page: an install made elsewhere appears without a reload.
    b.client
        .goto(&c.url("/orgs/acme/environments/dev"))
        .await
        .unwrap();
    b.wait_for("!!document.getElementById('live')", "the Environment page")
        .await;
    b.js("window.__notReloaded = true; return 1;").await;
    // Give the page's event stream a moment to be open before the install.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (status, v) = c
        .post_json(
            "/api/v1/orgs/acme/applications",
            &json!({"name": "cache", "environment": "dev", "blueprint": "bp-valkey"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    b.wait_for(
        "!!document.querySelector('[data-app=\"cache\"]')",
        "the installed Application's card",
    )
    .await;
    assert_eq!(
        b.js("return window.__notReloaded === true;").await,
        json!(true),
        "the card came in place, not by a reload"
    );
    b.screenshot("environment-live-install").await;

    // Remove the member (confirmed): gone from the page and from the API.
    b.client.goto(&c.url("/orgs/acme")).await.unwrap();
    b.wait_for(
        "!!document.querySelector('[data-remove-member=\"dana\"]')",
        "dana's Remove button",
    )
    .await;
    b.js("window.confirm = () => true; return 1;").await;
    b.click("[data-remove-member=\"dana\"]").await;
    b.wait_for(
        "!document.querySelector('[data-member=\"dana\"]')",
        "dana gone from the list",
    )
    .await;
    let gone = c
        .client()
        .get(c.url("/api/v1/session"))
        .bearer_auth(&dana)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 401, "the removed member's token stops");
}
