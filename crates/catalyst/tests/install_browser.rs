//! The marketplace's Install flow in headless Chromium against the real binary: an
//! org-developer installs a Blueprint from its page — a value error shown at its field, then
//! the plan with its diffs, then the install — creating its dependencies, and installs a second
//! Blueprint that uses two of those Applications and creates its third dependency; another member of the Organization, whose
//! Environment page was open all along, sees each new card arrive without a reload.
//! Screenshots go to `target/console-screenshots/`.
mod support;

use catalyst_testkit::browser::{browser, Browser};
use serde_json::json;
use support::Catalyst;

/// Waits until the Install form is ready for `acme`'s `dev` with the existing Applications of
/// that Environment listed for every dependency row.
async fn install_form_ready(b: &Browser) {
    b.wait_for(
        "!document.getElementById('install-form').hidden \
         && document.getElementById('install-org').value === 'acme' \
         && document.getElementById('install-env').value === 'dev' \
         && [...document.querySelectorAll('fieldset[data-dep]')].every(f => \
              f.querySelector('[data-role=existing]').children.length > 0)",
        "the Install form for acme-dev",
    )
    .await;
}

/// Plans (the form's Plan button) and waits for a plan of `commits` commits.
async fn plan(b: &Browser, commits: usize) {
    b.click("#install-plan-button").await;
    b.wait_for(
        &format!(
            "document.querySelectorAll('#install-result pre.diff').length === {commits} \
             && !document.getElementById('install-commit').disabled"
        ),
        "the plan",
    )
    .await;
}

/// Installs (the plan must be shown) and waits until the browser is on acme-dev's page with
/// `app`'s card.
async fn install(b: &Browser, app: &str) {
    b.click("#install-commit").await;
    b.wait_for(
        &format!(
            "location.pathname === '/orgs/acme/environments/dev' \
             && !!document.querySelector('[data-app=\"{app}\"]')"
        ),
        "the Environment page after installing",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_developer_installs_from_a_blueprint_page_and_a_member_sees_it_live() {
    let Some(dev) = browser().await else { return };
    let Some(watcher) = browser().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let c = Catalyst::console(dir.path(), &[]);
    c.organization("acme", &[("dev", json!({"rules": []}))])
        .await;
    let tokens = [
        c.member("acme", "devi", "org-developer").await,
        c.member("acme", "vic", "org-viewer").await,
    ];

    // Another member watches acme-dev from before the first install.
    watcher.sign_in(&c.base, &tokens[1], "/orgs").await;
    watcher
        .client
        .goto(&c.url("/orgs/acme/environments/dev"))
        .await
        .unwrap();
    watcher
        .wait_for("!!document.getElementById('live')", "the Environment page")
        .await;
    watcher.js("window.__notReloaded = true; return 1;").await;

    // Signed out, the Install section says how to install, with a sign-in link.
    dev.client
        .goto(&c.url("/marketplace/bp-keycloak"))
        .await
        .unwrap();
    dev.wait_for(
        "!!document.getElementById('install-signin') && document.getElementById('install-form').hidden",
        "the how-to for a visitor",
    )
    .await;
    // The org-developer signs in and opens Keycloak (dependencies: postgres, cert-manager).
    dev.sign_in(&c.base, &tokens[0], "/orgs").await;
    dev.client
        .goto(&c.url("/marketplace/bp-keycloak"))
        .await
        .unwrap();
    install_form_ready(&dev).await;
    assert_eq!(
        dev.js(
            "return [...document.querySelectorAll('fieldset[data-dep]')].map(f => f.dataset.dep);"
        )
        .await,
        json!(["bp-postgres", "bp-cert-manager"])
    );
    dev.type_into("#install-name", "sso").await;
    // The required realm is empty: the API's 422 is shown at the configuration form's field.
    dev.click("#install-plan-button").await;
    dev.wait_for(
        "document.getElementById('cfg-realm').getAttribute('aria-invalid') === 'true' \
         && /realm/.test(document.getElementById('cfg-realm-install-error').textContent)",
        "the realm marked invalid",
    )
    .await;
    dev.screenshot("install-field-error").await;
    dev.type_into("#cfg-realm", "acme").await;
    // "Create new" is chosen for both dependencies: three Applications, three commits, and one
    // to the Environment's Flux plumbing.
    plan(&dev, 4).await;
    assert_eq!(
        dev.js("return [...document.querySelectorAll('#install-plan-apps [data-plan-app]')].map(li => li.dataset.planApp).sort();")
            .await,
        json!(["sso", "sso-cert-manager", "sso-postgres"])
    );
    assert!(
        dev.js("return document.getElementById('install-result').textContent;")
            .await
            .as_str()
            .unwrap()
            .contains("realm: acme"),
        "the diff shows the values"
    );
    assert!(
        dev.js("return document.getElementById('cfg-realm').getAttribute('aria-invalid');")
            .await
            .is_null(),
        "the earlier error is cleared"
    );
    dev.screenshot("install-plan").await;
    install(&dev, "sso").await;

    // The watcher's page took the new cards in place.
    watcher
        .wait_for(
            "['sso', 'sso-postgres', 'sso-cert-manager'].every(a => !!document.querySelector(`[data-app=\"${a}\"]`))",
            "the new cards on the watcher's page",
        )
        .await;
    assert_eq!(
        watcher.js("return window.__notReloaded === true;").await,
        json!(true),
        "the cards came in place, not by a reload"
    );
    watcher.screenshot("install-seen-live").await;

    // Gitea (postgres, keycloak → cert-manager): postgres and cert-manager are the existing
    // Applications, keycloak a new one with values of its own.
    dev.client
        .goto(&c.url("/marketplace/bp-gitea"))
        .await
        .unwrap();
    install_form_ready(&dev).await;
    for (dep, app) in [
        ("bp-postgres", "sso-postgres"),
        ("bp-cert-manager", "sso-cert-manager"),
    ] {
        dev.click(&format!("fieldset[data-dep={dep}] input[value=\"{app}\"]"))
            .await;
    }
    // A dependency used as it is takes no values of its own.
    dev.wait_for(
        "document.querySelector('fieldset[data-dep=bp-postgres] [data-role=values]').hidden \
         && !document.querySelector('fieldset[data-dep=bp-keycloak] [data-role=values]').hidden",
        "postgres's values hidden, keycloak's shown",
    )
    .await;
    dev.type_into("#install-name", "code").await;
    dev.type_into("#cfg-hostname", "git.acme.example").await;
    // The new keycloak's realm is required: the error lands in its own values.
    dev.click("#install-plan-button").await;
    dev.wait_for(
        "document.getElementById('dep1-cfg-realm').getAttribute('aria-invalid') === 'true'",
        "the new keycloak's realm marked invalid",
    )
    .await;
    dev.type_into("#dep1-cfg-realm", "code").await;
    // Two new Applications and the plumbing.
    plan(&dev, 3).await;
    assert_eq!(
        dev.js("return [...document.querySelectorAll('#install-plan-apps [data-plan-app]')].map(li => li.dataset.planApp).sort();")
            .await,
        json!(["code", "code-keycloak"])
    );
    assert_eq!(
        dev.js("return [...document.querySelectorAll('[data-plan-existing]')].map(li => li.dataset.planExisting).sort();")
            .await,
        json!(["sso-cert-manager", "sso-postgres"])
    );
    // Changing the form after the plan asks for a new plan before installing.
    dev.type_into("#install-name", "codes").await;
    dev.wait_for(
        "document.getElementById('install-commit').disabled",
        "Install disabled after a change",
    )
    .await;
    dev.type_into("#install-name", "code").await;
    plan(&dev, 3).await;
    dev.screenshot("install-plan-use-existing").await;
    install(&dev, "code").await;
    watcher
        .wait_for(
            "!!document.querySelector('[data-app=\"code\"]')",
            "gitea's card on the watcher's page",
        )
        .await;
    assert_eq!(
        watcher.js("return window.__notReloaded === true;").await,
        json!(true)
    );
    watcher.screenshot("install-use-existing-seen-live").await;

    // The API agrees: code depends on the existing Applications, nothing else was created.
    let apps = c
        .client()
        .get(c.url("/api/v1/orgs/acme/applications?environment=dev"))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let mut names: Vec<&str> = apps["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "code",
            "code-keycloak",
            "sso",
            "sso-cert-manager",
            "sso-postgres"
        ]
    );
    let card = |name: &str| {
        let a = apps["applications"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap();
        let mut deps: Vec<String> = a["dependsOn"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_owned())
            .collect();
        deps.sort();
        deps
    };
    assert_eq!(card("code"), ["code-keycloak", "sso-postgres"]);
    assert_eq!(card("code-keycloak"), ["sso-cert-manager", "sso-postgres"]);
}
