//! The web console at `/console`, in a real browser: headless Chromium over WebDriver
//! (`fantoccini`), against the real `webhook-guard serve --bootstrap`.
//!
//! Needs `chromium`, `chromium-driver` and axe-core: `bash .ci/console-deps.sh`. Without them
//! these tests fail, saying so; they never skip. Browser tests take turns (one Chromium at a
//! time); each writes the screenshots it takes to `docs/console-<page>-<width>.png`.

#![cfg(unix)]

mod console_support;

use console_support::{drawn, find, http, open, sign_in, until, Browser, Server, AXE};
use fantoccini::key::Key;
use fantoccini::Client;
use serde_json::{json, Value};

/// One browser at a time: the machine is shared, and Chromium is not small.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn keystroke(k: Key) -> String {
    char::from(k).to_string()
}

async fn text(client: &Client, css: &str) -> String {
    find(client, css).await.text().await.unwrap()
}

/// Everything of the page a script can reach and serialise: the document, the resource
/// timing entries, and every own property of `window` that JSON can write.
async fn reachable_state(client: &Client) -> String {
    let state = client
        .execute(
            r#"
            const parts = [document.documentElement.outerHTML];
            parts.push(JSON.stringify(performance.getEntries().map(e => e.toJSON())));
            for (const name of Object.getOwnPropertyNames(window)) {
                try {
                    const value = window[name];
                    if (typeof value === 'function') continue;
                    parts.push(name + '=' + JSON.stringify(value));
                } catch (e) { /* not serialisable: nothing of ours */ }
            }
            const inputs = Array.from(document.querySelectorAll('input, textarea')).map(i => i.value);
            parts.push(JSON.stringify(inputs));
            parts.push(document.cookie, JSON.stringify(Object.assign({}, localStorage)),
                JSON.stringify(Object.assign({}, sessionStorage)), location.href, history.length);
            return parts.join('\n');
            "#,
            vec![],
        )
        .await
        .unwrap();
    state.as_str().unwrap_or_default().to_owned()
}

/// Opens the "Create API key" dialog, fills it, confirms, and reads the key shown once.
async fn create_key(client: &Client, name: &str, project: Option<&str>) -> String {
    find(client, "#create-key").await.click().await.unwrap();
    until(client, "document.getElementById('create-key-dialog').open").await;
    find(client, "#key-name")
        .await
        .send_keys(name)
        .await
        .unwrap();
    if let Some(project) = project {
        find(
            client,
            &format!("#key-project-list input[value='{project}']"),
        )
        .await
        .click()
        .await
        .unwrap();
    }
    find(client, "#create-key-next")
        .await
        .click()
        .await
        .unwrap();
    let summary = text(client, "#create-key-summary").await;
    assert!(summary.contains(name), "{summary}");
    find(client, "#create-key-confirm")
        .await
        .click()
        .await
        .unwrap();
    until(client, "document.getElementById('reveal-dialog').open").await;
    let key = until(
        client,
        "document.getElementById('reveal-value').textContent",
    )
    .await;
    let warning = text(client, "#reveal-warning").await;
    assert!(warning.contains("will not be shown again"), "{warning}");
    key.as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_console_answer_carries_the_strict_headers() {
    let server = Server::start();
    for path in [
        "/console",
        "/console/",
        "/console/console.css",
        "/console/console.js",
        "/console/no-such-file",
    ] {
        let answer = http(server.addr, "GET", path, &[], b"");
        let expected_status = if path.ends_with("no-such-file") {
            404
        } else {
            200
        };
        assert_eq!(answer.status, expected_status, "{path}");
        assert_eq!(
            answer.header("content-security-policy"),
            Some(
                "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; \
                 form-action 'self'; base-uri 'none'"
            ),
            "{path}"
        );
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            answer.header("referrer-policy"),
            Some("no-referrer"),
            "{path}"
        );
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{path}");
    }
    let page = http(server.addr, "GET", "/console", &[], b"");
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    // No inline script or style, so the policy needs no 'unsafe-inline'.
    assert!(!page.body.contains("style="));
    assert!(!page.body.contains("<style"));
    assert!(!page.body.contains("<script>"));
    let script = http(server.addr, "GET", "/console/console.js", &[], b"");
    assert!(script
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
}

#[tokio::test]
async fn a_created_key_is_shown_once_works_is_forgotten_and_dies_when_deleted() {
    let _turn = BROWSER.lock().await;
    let server = Server::start();
    let browser = Browser::start().await;
    let c = &browser.client;

    // A wrong key is refused at sign-in, with the reason.
    c.goto(&server.url("/console")).await.unwrap();
    find(c, "#api-key")
        .await
        .send_keys("wgk_notARealKeyAtAll")
        .await
        .unwrap();
    find(c, "#signin-submit").await.click().await.unwrap();
    until(c, "!document.getElementById('signin-error').hidden").await;
    let error = text(c, "#signin-error").await;
    assert!(error.contains("refused"), "{error}");
    assert_eq!(
        c.execute("return document.getElementById('nav').hidden", vec![])
            .await
            .unwrap(),
        json!(true)
    );

    sign_in(c, &server, &server.api_key).await;
    open(c, "#/keys").await;
    let key = create_key(c, "ci-deploy", Some(&server.project)).await;
    assert!(key.starts_with("wgk_"), "{key}");

    // The key works, within its project only.
    let project_path = format!("/v1/projects/{}", server.project);
    let answer = http(
        server.addr,
        "GET",
        &project_path,
        &[("x-api-key", &key)],
        b"",
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let other = http(
        server.addr,
        "POST",
        "/v1/projects",
        &[
            ("x-api-key", &server.api_key),
            ("content-type", "application/json"),
        ],
        br#"{"name": "other", "scheme": "github"}"#,
    );
    assert_eq!(other.status, 201, "{}", other.body);
    let other_path = format!(
        "/v1/projects/{}",
        other.json()["projectId"].as_str().unwrap()
    );
    let answer = http(server.addr, "GET", &other_path, &[("x-api-key", &key)], b"");
    assert_eq!(answer.status, 403, "{}", answer.body);

    // Closed, it is gone from the page: not in the DOM, not in anything reachable.
    find(c, "#reveal-close").await.click().await.unwrap();
    until(c, "!document.getElementById('reveal-dialog').open").await;
    until(
        c,
        "!!document.querySelector('tr [aria-label=\"Delete the key ci-deploy\"]')",
    )
    .await;
    let state = reachable_state(c).await;
    assert!(
        !state.contains(&key),
        "the key is still reachable after closing"
    );
    assert!(
        !state.contains(&server.api_key),
        "the sign-in key is reachable"
    );
    let masked = text(
        c,
        "tr:has([aria-label='Delete the key ci-deploy']) td:nth-child(2)",
    )
    .await;
    assert!(masked.contains('…'), "{masked}");
    assert!(key.starts_with(masked.trim_end_matches('…')), "{masked}");

    // After a reload: signed out, and still nowhere.
    c.refresh().await.unwrap();
    find(c, "#api-key").await;
    assert_eq!(
        c.execute("return document.getElementById('signin').hidden", vec![])
            .await
            .unwrap(),
        json!(false)
    );
    let state = reachable_state(c).await;
    assert!(!state.contains(&key), "the key is reachable after a reload");
    assert!(!state.contains(&server.api_key));

    // Signed in with the project-scoped key, the console says what it may not do.
    sign_in(c, &server, &key).await;
    open(c, "#/projects").await;
    find(c, "#create-project").await.click().await.unwrap();
    until(c, "document.getElementById('create-project-dialog').open").await;
    find(c, "#project-name")
        .await
        .send_keys("nope")
        .await
        .unwrap();
    find(c, "#create-project-ok").await.click().await.unwrap();
    until(c, "!document.getElementById('create-project-error').hidden").await;
    let refused = text(c, "#create-project-error").await;
    assert!(refused.contains("limited to some projects"), "{refused}");
    assert!(refused.contains("may not create projects"), "{refused}");
    press(c, Key::Escape).await;
    until(c, "!document.getElementById('create-project-dialog').open").await;
    open(c, "#/keys").await;
    let listing = http(
        server.addr,
        "GET",
        "/v1/api-keys",
        &[("x-api-key", &key)],
        b"",
    );
    if listing.status == 403 {
        let notice = text(c, ".notice").await;
        assert!(notice.contains("may not list"), "{notice}");
    } else {
        // Listing is allowed: creating is what it may not do.
        find(c, "#create-key").await.click().await.unwrap();
        find(c, "#create-key-next").await.click().await.unwrap();
        find(c, "#create-key-confirm").await.click().await.unwrap();
        until(c, "!document.getElementById('create-key-error').hidden").await;
        let refused = text(c, "#create-key-error").await;
        assert!(refused.contains("may not create API keys"), "{refused}");
        press(c, Key::Escape).await;
    }
    find(c, "#sign-out").await.click().await.unwrap();

    // Deleted through the confirmation, the key's next request gets 401.
    sign_in(c, &server, &server.api_key).await;
    open(c, "#/keys").await;
    find(c, "[aria-label='Delete the key ci-deploy']")
        .await
        .click()
        .await
        .unwrap();
    until(c, "document.getElementById('confirm-dialog').open").await;
    let warning = text(c, "#confirm-text").await;
    assert!(warning.contains("cannot be undone"), "{warning}");
    assert!(warning.contains("stops working at once"), "{warning}");
    let ok = find(c, "#confirm-ok").await;
    assert!(
        !ok.is_enabled().await.unwrap(),
        "enabled before the name is typed"
    );
    find(c, "#confirm-input")
        .await
        .send_keys("ci-dep")
        .await
        .unwrap();
    assert!(
        !ok.is_enabled().await.unwrap(),
        "enabled by part of the name"
    );
    find(c, "#confirm-input")
        .await
        .send_keys("loy")
        .await
        .unwrap();
    assert!(ok.is_enabled().await.unwrap());
    ok.click().await.unwrap();
    until(c, "!document.getElementById('confirm-dialog').open").await;
    until(
        c,
        "!document.querySelector('[aria-label=\"Delete the key ci-deploy\"]')",
    )
    .await;
    let answer = http(
        server.addr,
        "GET",
        &project_path,
        &[("x-api-key", &key)],
        b"",
    );
    assert_eq!(answer.status, 401, "{}", answer.body);

    browser.close().await;
}

#[tokio::test]
async fn regenerating_with_grace_keeps_the_old_secret_and_without_grace_refuses_it() {
    let _turn = BROWSER.lock().await;
    let server = Server::start();
    let browser = Browser::start().await;
    let c = &browser.client;
    let first = server.signing_secret.clone();
    assert_eq!(server.deliver(&first), 200);

    sign_in(c, &server, &server.api_key).await;
    open(c, &format!("#/projects/{}", server.project)).await;

    // With 60 s of grace: the old key is listed as grace, with a countdown to its expiry.
    find(c, "#regenerate-secret").await.click().await.unwrap();
    until(c, "document.getElementById('grace-dialog').open").await;
    assert_eq!(
        c.execute(
            "return document.getElementById('grace-none').checked",
            vec![]
        )
        .await
        .unwrap(),
        json!(true),
        "no grace is the default"
    );
    find(c, "#grace-some").await.click().await.unwrap();
    let seconds = find(c, "#grace-seconds").await;
    seconds.clear().await.unwrap();
    seconds.send_keys("60").await.unwrap();
    find(c, "#grace-ok").await.click().await.unwrap();
    until(c, "document.getElementById('reveal-dialog').open").await;
    let second = until(c, "document.getElementById('reveal-value').textContent").await;
    let second = second.as_str().unwrap().to_owned();
    let extra = text(c, "#reveal-extra").await;
    assert!(extra.contains("keeps working until"), "{extra}");
    find(c, "#reveal-close").await.click().await.unwrap();
    let grace = find(c, "tr[data-role='grace']").await;
    let row = grace.text().await.unwrap();
    assert!(row.contains("Grace"), "{row}");
    let countdown = find(c, "tr[data-role='grace'] time[data-countdown]").await;
    let expires = countdown.attr("datetime").await.unwrap().unwrap();
    assert!(expires.ends_with('Z'), "{expires}");
    let left = countdown.text().await.unwrap();
    assert!(left.starts_with("in "), "{left}");
    assert!(countdown.attr("title").await.unwrap().is_some());
    assert!(find(c, "#end-previous").await.is_enabled().await.unwrap());

    assert_eq!(
        server.deliver(&first),
        200,
        "the old secret is still accepted"
    );
    assert_eq!(server.deliver(&second), 200);

    // Without grace: the secret just replaced is refused at once.
    find(c, "#regenerate-secret").await.click().await.unwrap();
    until(c, "document.getElementById('grace-dialog').open").await;
    find(c, "#grace-ok").await.click().await.unwrap();
    until(c, "document.getElementById('reveal-dialog').open").await;
    let third = until(c, "document.getElementById('reveal-value').textContent").await;
    let third = third.as_str().unwrap().to_owned();
    assert!(text(c, "#reveal-extra").await.contains("no longer works"));
    find(c, "#reveal-close").await.click().await.unwrap();
    assert_eq!(server.deliver(&second), 401, "the old secret is refused");
    assert_eq!(server.deliver(&third), 200);

    // "End previous secrets now" ends the first one's grace too.
    drawn(c, "project").await;
    find(c, "#end-previous").await.click().await.unwrap();
    until(c, "document.getElementById('confirm-dialog').open").await;
    find(c, "#confirm-check").await.click().await.unwrap();
    find(c, "#confirm-ok").await.click().await.unwrap();
    until(c, "!document.getElementById('confirm-dialog').open").await;
    until(c, "!document.querySelector('tr[data-role=\"grace\"]')").await;
    assert_eq!(server.deliver(&first), 401);
    assert_eq!(server.deliver(&third), 200);

    browser.close().await;
}

/// Presses Tab until the focused element matches `css`; fails after `limit` presses.
async fn tab_to(c: &Client, css: &str, limit: usize) {
    let check = format!("return document.activeElement.matches({})", json!(css));
    for _ in 0..limit {
        if c.execute(&check, vec![]).await.unwrap() == json!(true) {
            return;
        }
        press(c, Key::Tab).await;
    }
    panic!("{css} is not reached with {limit} presses of Tab");
}

async fn press(c: &Client, k: Key) {
    c.active_element()
        .await
        .unwrap()
        .send_keys(&keystroke(k))
        .await
        .unwrap();
}

async fn type_text(c: &Client, text: &str) {
    c.active_element()
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

#[tokio::test]
async fn keys_are_created_and_deleted_with_the_keyboard_only() {
    let _turn = BROWSER.lock().await;
    let server = Server::start();
    let browser = Browser::start().await;
    let c = &browser.client;

    c.goto(&server.url("/console")).await.unwrap();
    find(c, "#api-key").await;
    until(c, "document.activeElement.id === 'api-key'").await;
    type_text(c, &server.api_key).await;
    press(c, Key::Enter).await;
    until(c, "document.getElementById('nav').hidden === false").await;
    drawn(c, "keys").await;

    // Create: Tab to the button, Enter; type; Tab to Review, Enter; Enter on Create.
    tab_to(c, "#create-key", 30).await;
    press(c, Key::Enter).await;
    until(c, "document.getElementById('create-key-dialog').open").await;
    until(c, "document.activeElement.id === 'key-name'").await;
    type_text(c, "kbd").await;
    tab_to(c, "#create-key-next", 30).await;
    press(c, Key::Enter).await;
    until(c, "document.activeElement.id === 'create-key-confirm'").await;
    press(c, Key::Enter).await;
    until(c, "document.getElementById('reveal-dialog').open").await;
    until(c, "document.activeElement.id === 'reveal-copy'").await;
    // Focus stays in the modal dialog.
    for _ in 0..6 {
        press(c, Key::Tab).await;
        until(c, "!!document.activeElement.closest('#reveal-dialog') || document.activeElement === document.body").await;
    }
    press(c, Key::Escape).await;
    until(c, "!document.getElementById('reveal-dialog').open").await;
    until(
        c,
        "document.getElementById('reveal-value').textContent === ''",
    )
    .await;
    find(c, "[aria-label='Delete the key kbd']").await;

    // Escape leaves the confirmation without deleting.
    tab_to(c, "[aria-label='Delete the key kbd']", 60).await;
    press(c, Key::Enter).await;
    until(c, "document.getElementById('confirm-dialog').open").await;
    press(c, Key::Escape).await;
    until(c, "!document.getElementById('confirm-dialog').open").await;
    find(c, "[aria-label='Delete the key kbd']").await;

    // Delete: Enter on the row's button, type the name, Tab to the button, Enter.
    tab_to(c, "[aria-label='Delete the key kbd']", 60).await;
    press(c, Key::Enter).await;
    until(c, "document.getElementById('confirm-dialog').open").await;
    until(c, "document.activeElement.id === 'confirm-input'").await;
    type_text(c, "kbd").await;
    tab_to(c, "#confirm-ok", 10).await;
    press(c, Key::Enter).await;
    until(c, "!document.getElementById('confirm-dialog').open").await;
    until(
        c,
        "!document.querySelector('[aria-label=\"Delete the key kbd\"]')",
    )
    .await;

    let keys = http(
        server.addr,
        "GET",
        "/v1/api-keys",
        &[("x-api-key", &server.api_key)],
        b"",
    );
    let names: Vec<Value> = keys.json()["apiKeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].clone())
        .collect();
    assert!(!names.contains(&json!("kbd")), "{names:?}");

    browser.close().await;
}

/// axe-core's serious and critical violations on the current page.
async fn axe(c: &Client, source: &str) -> Vec<Value> {
    c.execute(source, vec![]).await.unwrap();
    let found = c
        .execute_async(
            r#"
            const done = arguments[arguments.length - 1];
            axe.run(document)
              .then(r => done({ passes: r.passes.length, violations: r.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => ({ id: v.id, impact: v.impact, help: v.help,
                             nodes: v.nodes.map(n => n.target.join(' ')) })) }))
              .catch(e => done({ passes: 0, violations: [{ id: 'axe-error', help: String(e) }] }));
            "#,
            vec![],
        )
        .await
        .unwrap();
    // A run that checked nothing would pass vacuously.
    assert!(
        found["passes"].as_u64().unwrap_or(0) > 5,
        "axe did not run: {found}"
    );
    found["violations"].as_array().cloned().unwrap_or_default()
}

/// Writes the page, grown to its whole height, to `docs/console-<page>-<width>.png`, and
/// checks nothing is wider than the window.
async fn screenshot(c: &Client, page: &str, width: u32) {
    c.set_window_size(width, 900).await.unwrap();
    let fits = until(
        c,
        &format!("window.innerWidth <= {width} && [document.documentElement.scrollWidth, window.innerWidth]"),
    )
    .await;
    let scroll = fits[0].as_u64().unwrap();
    let inner = fits[1].as_u64().unwrap();
    assert!(
        scroll <= inner,
        "{page} at {width} px scrolls sideways: {scroll} > {inner}"
    );
    let height = c
        .execute("return document.documentElement.scrollHeight", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(900);
    // The window's chrome is not part of the viewport; leave room for it.
    c.set_window_size(width, (height as u32 + 120).clamp(600, 3000))
        .await
        .unwrap();
    let png = c.screenshot().await.unwrap();
    let path = format!(
        "{}/docs/console-{page}-{width}.png",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::write(&path, png).unwrap();
}

#[tokio::test]
async fn every_page_is_accessible_and_readable_at_360_px() {
    let _turn = BROWSER.lock().await;
    let axe_path = format!("{}/{AXE}", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&axe_path)
        .unwrap_or_else(|e| panic!("cannot read {axe_path} ({e}): run `bash .ci/console-deps.sh`"));
    let server = Server::start();
    // Something in every table: a key limited to the project, a grace key, audit events.
    let created = http(
        server.addr,
        "POST",
        "/v1/api-keys",
        &[
            ("x-api-key", &server.api_key),
            ("content-type", "application/json"),
        ],
        json!({"name": "ci", "projects": [server.project], "expiresInSeconds": 2592000})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let path = format!("/v1/external-support/{}/secret/regenerate", server.project);
    let regenerated = http(
        server.addr,
        "POST",
        &path,
        &[
            ("x-api-key", &server.api_key),
            ("content-type", "application/json"),
        ],
        br#"{"oldSecretValidForSeconds": 3600}"#,
    );
    assert_eq!(regenerated.status, 200, "{}", regenerated.body);

    let browser = Browser::start().await;
    let c = &browser.client;
    c.goto(&server.url("/console")).await.unwrap();
    find(c, "#api-key").await;
    let mut violations = Vec::new();
    let mut check = |page: &str, found: Vec<Value>| {
        if !found.is_empty() {
            violations.push(format!("{page}: {}", Value::Array(found)));
        }
    };
    check("signin", axe(c, &source).await);
    for width in [1280, 360] {
        screenshot(c, "signin", width).await;
    }
    c.set_window_size(1280, 900).await.unwrap();
    // Signed in with the client id and API secret (Basic) this time.
    find(c, "#method-basic").await.click().await.unwrap();
    find(c, "#client-id")
        .await
        .send_keys(&server.client_id)
        .await
        .unwrap();
    find(c, "#client-secret")
        .await
        .send_keys(&server.client_secret)
        .await
        .unwrap();
    find(c, "#signin-submit").await.click().await.unwrap();
    until(c, "document.getElementById('nav').hidden === false").await;
    let who = text(c, "#who-text").await;
    assert!(who.contains(&server.client_id), "{who}");

    let pages = [
        ("keys", "#/keys".to_owned()),
        ("projects", "#/projects".to_owned()),
        ("project", format!("#/projects/{}", server.project)),
        ("integrator", "#/integrator".to_owned()),
        ("audit", "#/audit".to_owned()),
    ];
    for (page, hash) in &pages {
        c.set_window_size(1280, 900).await.unwrap();
        open(c, hash).await;
        check(page, axe(c, &source).await);
        for width in [1280, 360] {
            screenshot(c, page, width).await;
        }
    }

    // The dialogs, open.
    c.set_window_size(1280, 900).await.unwrap();
    open(c, "#/keys").await;
    find(c, "#create-key").await.click().await.unwrap();
    until(c, "document.getElementById('create-key-dialog').open").await;
    check("create-key dialog", axe(c, &source).await);
    screenshot(c, "create-key", 360).await;
    c.set_window_size(1280, 900).await.unwrap();
    find(c, "#key-name")
        .await
        .send_keys("staging")
        .await
        .unwrap();
    find(c, "#create-key-next").await.click().await.unwrap();
    find(c, "#create-key-confirm").await.click().await.unwrap();
    until(c, "document.getElementById('reveal-dialog').open").await;
    check("reveal dialog", axe(c, &source).await);
    screenshot(c, "new-key", 1280).await;
    find(c, "#reveal-close").await.click().await.unwrap();
    c.set_window_size(1280, 900).await.unwrap();
    find(c, "[aria-label='Delete the key staging']")
        .await
        .click()
        .await
        .unwrap();
    until(c, "document.getElementById('confirm-dialog').open").await;
    check("confirm dialog", axe(c, &source).await);
    screenshot(c, "delete-key", 1280).await;
    c.set_window_size(1280, 900).await.unwrap();
    press(c, Key::Escape).await;
    open(c, &format!("#/projects/{}", server.project)).await;
    find(c, "#regenerate-secret").await.click().await.unwrap();
    until(c, "document.getElementById('grace-dialog').open").await;
    check("grace dialog", axe(c, &source).await);
    screenshot(c, "regenerate", 1280).await;

    assert!(
        violations.is_empty(),
        "serious or critical accessibility violations:\n{}",
        violations.join("\n")
    );
    browser.close().await;
}

#[tokio::test]
async fn the_audit_log_pages_with_the_cursor_and_filters_by_project_and_action() {
    let _turn = BROWSER.lock().await;
    let server = Server::start();
    let auth = [("x-api-key", server.api_key.as_str())];
    let other = http(
        server.addr,
        "POST",
        "/v1/projects",
        &[
            ("x-api-key", &server.api_key),
            ("content-type", "application/json"),
        ],
        br#"{"name": "billing", "scheme": "stripe"}"#,
    );
    assert_eq!(other.status, 201, "{}", other.body);
    let other = other.json()["projectId"].as_str().unwrap().to_owned();
    // More events than one page of 50.
    let path = format!("/v1/external-support/{}/secret/regenerate", server.project);
    for _ in 0..55 {
        assert_eq!(http(server.addr, "POST", &path, &auth, b"").status, 200);
    }

    let browser = Browser::start().await;
    let c = &browser.client;
    sign_in(c, &server, &server.api_key).await;
    open(c, "#/audit").await;
    let rows = "document.querySelectorAll('#audit-body tbody tr').length";
    assert_eq!(until(c, rows).await, json!(50));
    // Newest first: the last regeneration leads.
    let first = text(c, "#audit-body tbody tr:first-child td:nth-child(2)").await;
    assert_eq!(first, "project.secret.regenerated");
    find(c, "#audit-more").await.click().await.unwrap();
    until(c, &format!("{rows} > 50")).await;
    until(c, "document.getElementById('audit-more').hidden").await;
    let all = until(c, rows).await.as_u64().unwrap();
    assert_eq!(
        all,
        4 + 55,
        "the integrator, its key, 2 projects, 55 regenerations"
    );

    find(c, "#audit-action")
        .await
        .select_by_value("project.created")
        .await
        .unwrap();
    until(c, &format!("{rows} === 2")).await;
    find(c, "#audit-project")
        .await
        .select_by_value(&other)
        .await
        .unwrap();
    until(c, &format!("{rows} === 1")).await;
    let row = text(c, "#audit-body tbody tr").await;
    assert!(row.contains(&other), "{row}");
    let count = text(c, "#audit-count").await;
    assert!(count.contains(&format!("1 of {all}")), "{count}");

    browser.close().await;
}
