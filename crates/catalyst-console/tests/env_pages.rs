//! The Environment page past 100 Applications: 100 cards a page, failed ones first, each
//! status's total on every page, a pager, and every Application on exactly one page.
#[path = "support/environment.rs"]
mod environment;

use tower::ServiceExt;

async fn html(app: &axum::Router, path: &str) -> String {
    let resp = app
        .clone()
        .oneshot(environment::viewer_get(path))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}

fn cards(page: &str) -> Vec<String> {
    page.split("data-app=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_owned())
        .collect()
}

#[tokio::test]
async fn the_environment_page_is_paginated_past_100_applications() {
    let dir = tempfile::tempdir().unwrap();
    let app = environment::environment_with(dir.path(), 250).await;

    let first = html(&app, "/orgs/acme/environments/dev").await;
    assert!(first.contains("Applications 1–100 of 250"), "{first}");
    assert!(first.contains("href=\"?page=2\" rel=\"next\""));
    assert!(!first.contains("rel=\"prev\""));
    // 36 failed (every seventh) come first; the totals count every page.
    let failed = first.find("status-failed\">failed</span> 36").unwrap();
    let committed = first
        .find("status-committed\">committed</span> 214 <span class=\"muted\">(64 on this page)")
        .unwrap();
    assert!(failed < committed);

    let mut seen = Vec::new();
    for n in 1..=3 {
        let page = html(&app, &format!("/orgs/acme/environments/dev?page={n}")).await;
        let on = cards(&page);
        assert_eq!(on.len(), if n < 3 { 100 } else { 50 }, "page {n}");
        seen.extend(on);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 250, "every Application on exactly one page");

    let last = html(&app, "/orgs/acme/environments/dev?page=3").await;
    assert!(last.contains("Applications 201–250 of 250"));
    assert!(last.contains("href=\"?page=2\" rel=\"prev\""));
    assert!(!last.contains("rel=\"next\""));
    // A page past the end shows the last one.
    assert_eq!(
        cards(&html(&app, "/orgs/acme/environments/dev?page=99").await),
        cards(&last)
    );

    // 100 or fewer: no pager.
    let dir = tempfile::tempdir().unwrap();
    let small = environment::environment_with(dir.path(), 100).await;
    let page = html(&small, "/orgs/acme/environments/dev").await;
    assert_eq!(cards(&page).len(), 100);
    assert!(!page.contains("class=\"pager\""));
}
