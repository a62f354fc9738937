//! The tray app end to end, as a user meets it: the real `airlock-app` under a virtual display,
//! its real engine sidecar, real Docker, and a real MCP client (rmcp over Streamable HTTP).
//! Every test starts from the client's call, acts only by clicking and typing in the app's
//! windows or its tray menu, and checks the outcome at the client and in `airlock audit`.
//! Run by `scripts/gui-test.sh`, one test at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use airlock_gui_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

const SHORT: Duration = Duration::from_secs(20);
const LONG: Duration = Duration::from_secs(60);

fn records_with<'a>(records: &'a [Value], tool: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["tool"] == tool).collect()
}

/// Settings: the Docker Runtime switch refuses calls, then lets them through; a workspace added
/// through the typed-path field is mounted for the next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_runtime_toggle_and_new_workspace() {
    let env = TestEnv::new("");
    let app = DrivenApp::start(&env, "settings").await;
    let (url, _) = env.wait_server(None, LONG).await;
    let client = mcp(&url).await;

    let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
    assert!(!is_error(&r), "{}", text(&r));
    assert_eq!(text(&r), "hello from the host\n");

    app.wait_text("#docker-line", "ready", LONG).await;
    app.screenshot("settings-runtime").await;

    // Off: the engine writes it to the settings file and refuses calls.
    app.find("label.switch").await.click().await.unwrap();
    eventually("runtime.enabled = false on disk", SHORT, || async {
        (env.runtime_enabled_on_disk() == Some(false)).then_some(())
    })
    .await;
    app.wait_text("#runtime-note", "Off", SHORT).await;
    let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
    assert!(
        is_error(&r),
        "a call with the runtime off must be refused: {}",
        text(&r)
    );
    assert!(
        text(&r).contains("Docker Runtime is turned off"),
        "{}",
        text(&r)
    );
    app.screenshot("settings-runtime-off").await;

    // On again: calls run.
    app.find("label.switch").await.click().await.unwrap();
    eventually("runtime.enabled = true on disk", SHORT, || async {
        (env.runtime_enabled_on_disk() == Some(true)).then_some(())
    })
    .await;
    app.wait_text("#runtime-note", "On", SHORT).await;
    let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
    assert!(!is_error(&r), "{}", text(&r));

    // A new workspace through the typed-path field.
    let extra = env.dir.path().join("notes");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("todo.txt"), "buy milk\n").unwrap();
    give_to_sandbox(&extra);
    app.find("a[data-section=workspaces]")
        .await
        .click()
        .await
        .unwrap();
    app.find("#ws-path")
        .await
        .send_keys(&extra.display().to_string())
        .await
        .unwrap();
    app.find("#ws-access")
        .await
        .select_by_value("ro")
        .await
        .unwrap();
    app.find("#ws-add-btn").await.click().await.unwrap();
    eventually("the new workspace in the settings file", SHORT, || async {
        env.settings_file()
            .contains(&extra.display().to_string())
            .then_some(())
    })
    .await;
    app.wait_text("#ws-list", "notes", SHORT).await;
    app.wait_text("#ws-list", "read-only", SHORT).await;
    app.screenshot("settings-workspaces").await;

    let client2 = mcp(&url).await;
    let r = call(
        &client2,
        "read_file",
        json!({"path": "/workspaces/notes/todo.txt"}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    assert_eq!(text(&r), "buy milk\n");

    // The log saw all of it: allowed calls, the refusal while off, the new workspace.
    let log = env.audit_search("");
    let reads = records_with(&log, "read_file");
    assert!(reads.len() >= 4, "{log:#?}");
    assert!(
        reads.iter().any(|r| r["outcome"] == "refused"
            || r["error"]
                .as_str()
                .unwrap_or_default()
                .contains("turned off")),
        "the refused call is in the log: {reads:#?}"
    );
    assert!(
        reads
            .iter()
            .any(|r| r["workspace"] == "notes" && r["outcome"] == "ok"),
        "{reads:#?}"
    );

    // A deny rule on reading a path: the window says a command still reads it, and offers to
    // hide the path, which lands in the workspace's hide list.
    app.find("a[data-section=approvals]")
        .await
        .click()
        .await
        .unwrap();
    app.find("#rules-deny")
        .await
        .send_keys("read_file(/workspaces/project/secret/**)")
        .await
        .unwrap();
    app.find("#rules-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    app.wait_text("#rule-notes", "cat", SHORT).await;
    app.screenshot("settings-rule-note").await;
    app.find("#rule-notes button").await.click().await.unwrap();
    eventually("/secret in the workspace's hide list", SHORT, || async {
        env.settings_file().contains("\"/secret\"").then_some(())
    })
    .await;
    eventually("the note gone once the path is hidden", SHORT, || async {
        let shown = app
            .find("#rule-notes")
            .await
            .attr("class")
            .await
            .ok()
            .flatten();
        shown.is_some_and(|c| c.contains("hidden")).then_some(())
    })
    .await;

    client.cancel().await.unwrap();
    client2.cancel().await.unwrap();
    app.stop().await;
}

/// The approval prompt: a write asks; Allow Once lets it run, Deny returns the refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_prompt_allow_once_and_deny() {
    let env = TestEnv::new("");
    let app = DrivenApp::start(&env, "approvals").await;
    let (url, _) = env.wait_server(None, LONG).await;
    app.wait_text("#title", "No pending approvals", LONG).await;
    let client = std::sync::Arc::new(mcp(&url).await);

    // A write asks (no rule allows it); the prompt shows it with its diff.
    let c = client.clone();
    let pending = tokio::spawn(async move {
        call(
            &c,
            "write_file",
            json!({"path": "approved.txt", "content": "allowed by a person\n"}),
        )
        .await
    });
    app.wait_text("#tool", "write_file", LONG).await;
    app.wait_text("#diff", "+allowed by a person", SHORT).await;
    app.wait_text("#args", "approved.txt", SHORT).await;
    let rule = app
        .find("#rule")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        rule.contains("write_file"),
        "the suggested rule is shown: {rule:?}"
    );
    app.screenshot("approval-prompt").await;
    screenshot_screen("approval-prompt-screen");

    // Focus the prompt, wait for the buttons to arm, allow once.
    app.find("#args").await.click().await.unwrap();
    let allow = app.find("#allow-once").await;
    eventually("Allow Once to arm", SHORT, || async {
        allow
            .attr("disabled")
            .await
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await;
    allow.click().await.unwrap();
    let r = tokio::time::timeout(LONG, pending)
        .await
        .expect("the call completes")
        .unwrap();
    assert!(!is_error(&r), "{}", text(&r));
    assert_eq!(
        std::fs::read_to_string(env.project.join("approved.txt")).unwrap(),
        "allowed by a person\n"
    );
    app.wait_text("#title", "No pending approvals", SHORT).await;

    // Deny: the client gets the refusal, nothing is written.
    let c = client.clone();
    let pending = tokio::spawn(async move {
        call(
            &c,
            "write_file",
            json!({"path": "denied.txt", "content": "never\n"}),
        )
        .await
    });
    app.wait_text("#args", "denied.txt", LONG).await;
    app.find("#deny").await.click().await.unwrap();
    let r = tokio::time::timeout(LONG, pending)
        .await
        .expect("the call completes")
        .unwrap();
    assert!(is_error(&r), "a denied call is an error: {}", text(&r));
    assert!(text(&r).to_lowercase().contains("denied"), "{}", text(&r));
    assert!(!env.project.join("denied.txt").exists());

    // Two at once queue in one window; a command hiding a right-to-left override and an escape
    // shows them as marked badges; "Deny all" answers both.
    let (c1, c2) = (client.clone(), client.clone());
    let p1 = tokio::spawn(async move {
        call(
            &c1,
            "run_command",
            json!({"command": "echo invoice\u{202e}fdp.exe\u{1b}[2J"}),
        )
        .await
    });
    let p2 =
        tokio::spawn(async move { call(&c2, "create_directory", json!({"path": "q2"})).await });
    app.wait_text("#subtitle", "of 2 waiting", LONG).await;
    for chip in app.find_all("#queue button").await {
        if chip
            .prop("innerText")
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
            .contains("run_command")
        {
            chip.click().await.unwrap();
        }
    }
    app.wait_text("#tool", "run_command", SHORT).await;
    let badges = app.texts_of_all("#args .ctrl").await;
    assert_eq!(badges, vec!["RLO", "ESC"], "invisible characters are shown");
    app.wait_text("#args", "invisible or direction-changing", SHORT)
        .await;
    app.screenshot("approval-queue").await;
    app.find("#deny-all").await.click().await.unwrap();
    for p in [p1, p2] {
        let r = tokio::time::timeout(LONG, p)
            .await
            .expect("the call completes")
            .unwrap();
        assert!(is_error(&r), "{}", text(&r));
    }

    let log = env.audit_search("");
    let writes = records_with(&log, "write_file");
    let approved = writes
        .iter()
        .find(|r| r["arguments"].to_string().contains("approved.txt"))
        .expect("approved call logged");
    assert_eq!(approved["decision"], "allowed", "{approved:#}");
    assert_eq!(approved["decided_by"], "user", "{approved:#}");
    assert_eq!(approved["outcome"], "ok", "{approved:#}");
    let denied = writes
        .iter()
        .find(|r| r["arguments"].to_string().contains("denied.txt"))
        .expect("denied call logged");
    assert_eq!(denied["decision"], "denied", "{denied:#}");
    assert_eq!(denied["decided_by"], "user", "{denied:#}");
    for tool in ["create_directory", "run_command"] {
        let r = records_with(&log, tool);
        assert!(r.len() == 1 && r[0]["decision"] == "denied", "{log:#?}");
    }

    app.stop().await;
}

/// The prompt opens by itself when a call asks, on top, without taking keyboard focus from the
/// window the user is in; once focused, Enter allows once; it closes when nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_prompt_appears_without_taking_focus() {
    let env = TestEnv::new("");
    let app = DrivenApp::start(&env, "settings").await;
    let (url, _) = env.wait_server(None, LONG).await;
    app.wait_text("#docker-line", "ready", LONG).await;
    let client = std::sync::Arc::new(mcp(&url).await);
    let active = || xdotool(&["getactivewindow", "getwindowname"]);
    eventually("the settings window to have focus", SHORT, || async {
        active().contains("Airlock Settings").then_some(())
    })
    .await;

    let c = client.clone();
    let pending = tokio::spawn(async move {
        call(
            &c,
            "edit_file",
            json!({"path": "hello.txt", "edits": [{"old_text": "host", "new_text": "prompt"}]}),
        )
        .await
    });
    let prompt = || xdotool(&["search", "--onlyvisible", "--name", "Approval Needed"]);
    eventually("the approval prompt to appear", LONG, || async {
        (!prompt().is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        active().contains("Airlock Settings"),
        "the prompt took focus: {:?} is active",
        active()
    );
    screenshot_screen("approval-prompt-no-focus");

    // Answer it in its own window: focus it, wait for the buttons to arm, press Enter.
    let mut found = false;
    for handle in app.client.windows().await.unwrap() {
        app.client.switch_to_window(handle).await.unwrap();
        if app
            .client
            .title()
            .await
            .unwrap_or_default()
            .contains("Approval Needed")
        {
            found = true;
            break;
        }
    }
    assert!(found, "the prompt is a window of the app");
    app.wait_text("#diff", "+hello from the prompt", SHORT)
        .await;
    app.wait_text("#diff", "-hello from the host", SHORT).await;
    app.find("#args").await.click().await.unwrap();
    let allow = app.find("#allow-once").await;
    eventually("Allow Once to arm", SHORT, || async {
        allow
            .attr("disabled")
            .await
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await;
    // Enter: the prompt closes as soon as the call is allowed, so the key-up may find no window.
    let _ = app.press_key('\u{E007}').await;
    let r = tokio::time::timeout(LONG, pending)
        .await
        .expect("the call completes")
        .unwrap();
    assert!(!is_error(&r), "{}", text(&r));
    assert_eq!(
        std::fs::read_to_string(env.project.join("hello.txt")).unwrap(),
        "hello from the prompt\n"
    );
    eventually("the prompt to close once nothing waits", SHORT, || async {
        prompt().is_empty().then_some(())
    })
    .await;

    // The next call opens it again; Esc denies (no arming needed to refuse).
    let c = client.clone();
    let pending =
        tokio::spawn(async move { call(&c, "delete_path", json!({"path": "hello.txt"})).await });
    eventually("the approval prompt to appear again", LONG, || async {
        (!prompt().is_empty()).then_some(())
    })
    .await;
    let mut found = false;
    for handle in app.client.windows().await.unwrap() {
        app.client.switch_to_window(handle).await.unwrap();
        if app
            .client
            .title()
            .await
            .unwrap_or_default()
            .contains("Approval Needed")
        {
            found = true;
            break;
        }
    }
    assert!(found);
    app.wait_text("#tool", "delete_path", SHORT).await;
    app.find("#args").await.click().await.unwrap();
    let _ = app.press_key('\u{E00C}').await; // Escape
    let r = tokio::time::timeout(LONG, pending)
        .await
        .expect("the call completes")
        .unwrap();
    assert!(is_error(&r), "{}", text(&r));
    assert!(env.project.join("hello.txt").exists());

    let log = env.audit_search("");
    let edit = records_with(&log, "edit_file");
    assert_eq!(edit.len(), 1, "{log:#?}");
    let delete = records_with(&log, "delete_path");
    assert!(
        delete.len() == 1 && delete[0]["decision"] == "denied",
        "{log:#?}"
    );
    assert_eq!(edit[0]["decided_by"], "user");
    assert_eq!(edit[0]["outcome"], "ok");
    drop(app);
}

/// "Always Allow" with an edited rule saves that rule (later calls it covers run without asking);
/// the settings window lists it and revokes it; "Allow for Session" remembers for the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_allow_edited_rule_then_revoke_and_session_grant() {
    let env = TestEnv::new("");
    let app = DrivenApp::start(&env, "approvals,settings").await;
    let (url, _) = env.wait_server(None, LONG).await;
    let client = std::sync::Arc::new(mcp(&url).await);
    let to_window = |title: &'static str| {
        let app = &app;
        async move {
            for handle in app.client.windows().await.unwrap() {
                app.client.switch_to_window(handle).await.unwrap();
                if app.client.title().await.unwrap_or_default().contains(title) {
                    return;
                }
            }
            panic!("no window titled {title:?}");
        }
    };
    let write = |name: &'static str| {
        let c = client.clone();
        tokio::spawn(async move {
            call(&c, "write_file", json!({"path": name, "content": "x\n"})).await
        })
    };
    let answer = |button: &'static str| {
        let app = &app;
        async move {
            app.find("#args").await.click().await.unwrap();
            let b = app.find(button).await;
            eventually("the buttons to arm", SHORT, || async {
                b.attr("disabled")
                    .await
                    .ok()
                    .flatten()
                    .is_none()
                    .then_some(())
            })
            .await;
            b.click().await.unwrap();
        }
    };
    let rule = "write_file(/workspaces/project/*.txt)";

    to_window("Approval").await;
    let pending = write("a.txt");
    app.wait_text("#args", "a.txt", LONG).await;
    let field = app.find("#rule").await;
    field.clear().await.unwrap();
    field.send_keys(rule).await.unwrap();
    answer("#allow-always").await;
    let r = tokio::time::timeout(LONG, pending).await.unwrap().unwrap();
    assert!(!is_error(&r), "{}", text(&r));
    eventually("the rule in the settings file", SHORT, || async {
        env.settings_file().contains(rule).then_some(())
    })
    .await;
    let r = tokio::time::timeout(SHORT, write("b.txt"))
        .await
        .expect("no prompt for a covered call")
        .unwrap();
    assert!(!is_error(&r), "{}", text(&r));

    to_window("Settings").await;
    app.find("a[data-section=approvals]")
        .await
        .click()
        .await
        .unwrap();
    // The settings window shows the saved rule (the engine's own edit reached it) and the grant.
    app.wait_value("#rules-always", rule, SHORT).await;
    app.wait_text("#grants", rule, SHORT).await;
    app.screenshot("settings-approvals").await;
    app.find("#grants button.danger")
        .await
        .click()
        .await
        .unwrap();
    eventually("the rule gone from the settings file", SHORT, || async {
        (!env.settings_file().contains(rule)).then_some(())
    })
    .await;
    app.wait_value("#rules-always", "", SHORT).await;

    // Asked again; allowed for the session, the next one runs without asking.
    to_window("Approval").await;
    let pending = write("c.txt");
    app.wait_text("#args", "c.txt", LONG).await;
    answer("#allow-session").await;
    let r = tokio::time::timeout(LONG, pending).await.unwrap().unwrap();
    assert!(!is_error(&r), "{}", text(&r));
    let r = tokio::time::timeout(SHORT, write("d.txt"))
        .await
        .expect("no prompt within the session grant")
        .unwrap();
    assert!(!is_error(&r), "{}", text(&r));
    to_window("Settings").await;
    app.find("#grants-reload").await.click().await.unwrap();
    app.wait_text("#grants", "this session", SHORT).await;

    let log = env.audit_search("");
    let by = |name: &str| {
        records_with(&log, "write_file")
            .into_iter()
            .find(|r| r["arguments"].to_string().contains(name))
            .map(|r| r["decided_by"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    // Asked and answered, or settled by the remembered answer (the engine records both as the user's).
    assert_eq!(
        (by("a.txt"), by("c.txt")),
        ("user".into(), "user".into()),
        "{log:#?}"
    );
    assert!(["rule", "user"].contains(&by("b.txt").as_str()), "{log:#?}");
    assert!(["rule", "user"].contains(&by("d.txt").as_str()), "{log:#?}");
    for f in ["a.txt", "b.txt", "c.txt", "d.txt"] {
        assert!(env.project.join(f).exists(), "{f}");
    }
}

/// Secrets: a value typed into Settings (a password field) reaches the sandbox of a workspace
/// granted it, never its output or the audit log, and is removed again. Clients: one-click
/// Install writes a client config whose URL and token a real client then uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_secret_reaches_sandbox_redacted_and_client_install_works() {
    let env = TestEnv::new(r#"allow = ["run_command"]"#);
    let home = env.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let home_s = home.display().to_string();
    let app = DrivenApp::start_with(
        &env,
        "secrets",
        &[
            ("HOME", &home_s),
            ("XDG_CONFIG_HOME", &format!("{home_s}/.config")),
        ],
    )
    .await;
    let (url, _) = env.wait_server(None, LONG).await;
    let client = mcp(&url).await;
    let r = call(&client, "run_command", json!({"command": "echo ready"})).await;
    assert!(!is_error(&r), "{}", text(&r));

    let nonce = std::process::id();
    let name = format!("GUI_SECRET_{nonce}");
    let value = format!("s3cr3t-value-{nonce}");
    app.find("#secret-name")
        .await
        .send_keys(&name)
        .await
        .unwrap();
    app.find("#secret-value")
        .await
        .send_keys(&value)
        .await
        .unwrap();
    assert_eq!(
        app.find("#secret-value")
            .await
            .attr("type")
            .await
            .unwrap()
            .as_deref(),
        Some("password")
    );
    app.find("#secret-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    app.wait_text("#secret-list", &name, SHORT).await;
    assert!(
        !app.text_of("body").await.contains(&value),
        "the value is never shown"
    );
    app.screenshot("settings-secrets").await;

    // Grant it to the workspace (its details: the secrets field).
    app.find("a[data-section=workspaces]")
        .await
        .click()
        .await
        .unwrap();
    // The page may redraw under a busy machine (a stale element): find and click again.
    eventually("the workspace's details opened", SHORT, || async {
        app.find(".ws[data-name=project] summary")
            .await
            .click()
            .await
            .ok()
    })
    .await;
    // The folded section opens with an animation: type and click once it can take them.
    eventually("the secret name typed", SHORT, || async {
        app.find(".ws[data-name=project] input[type=text]")
            .await
            .send_keys(&name)
            .await
            .ok()
    })
    .await;
    eventually("the grant button clicked", SHORT, || async {
        app.find(".ws[data-name=project] details button.primary")
            .await
            .click()
            .await
            .ok()
    })
    .await;
    eventually("the grant in the settings file", SHORT, || async {
        env.settings_file().contains(&name).then_some(())
    })
    .await;
    // The engine answers with the settings it applied (its sandboxes restarted with the secret).
    app.wait_text(".ws[data-name=project]", "secrets (1)", SHORT)
        .await;

    let client2 = mcp(&url).await;
    let cmd = format!("printf %s \"${name}\" | wc -c; echo \"${name}\"");
    let r = call(&client2, "run_command", json!({ "command": cmd })).await;
    let out = text(&r);
    assert!(
        out.contains(&value.len().to_string()),
        "the sandbox has the secret: {out}"
    );
    assert!(
        !out.contains(&value),
        "the value is redacted from the output: {out}"
    );
    assert!(
        env.audit_search(&value).is_empty(),
        "the value is not in the audit log"
    );

    app.find("a[data-section=secrets]")
        .await
        .click()
        .await
        .unwrap();
    app.wait_text("#secret-list", &name, SHORT).await;
    for row in app.find_all("#secret-list .list-row").await {
        if row
            .prop("innerText")
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
            .contains(&name)
        {
            row.find(fantoccini::Locator::Css("button.danger"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
        }
    }
    eventually("the secret gone from the list", SHORT, || async {
        (!app.text_of("#secret-list").await.contains(&name)).then_some(())
    })
    .await;

    // Clients: Install for Claude Code writes its config; a client using it is served.
    app.find("a[data-section=clients]")
        .await
        .click()
        .await
        .unwrap();
    app.wait_text("#client-list", "Claude Code", SHORT).await;
    app.screenshot("settings-clients").await;
    let mut clicked = false;
    for card in app.find_all("#client-list .client").await {
        let title = card
            .prop("innerText")
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        if title.starts_with("Claude Code") {
            card.find(fantoccini::Locator::Css("button.primary"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            clicked = true;
        }
    }
    assert!(clicked, "an Install button for Claude Code");
    let config = home.join(".claude.json");
    let doc: Value = eventually("the client config written", SHORT, || async {
        serde_json::from_str(&std::fs::read_to_string(&config).ok()?).ok()
    })
    .await;
    let entry = &doc["mcpServers"]["airlock"];
    let token = entry["headers"]["Authorization"]
        .as_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_string();
    assert_ne!(token, TOKEN, "the client got a token of its own");
    // The engine re-reads the keychain for new tokens at most every 3 s: a client started right
    // after Install may be turned away once, so connect like a user retrying.
    let installed_url = entry["url"].as_str().unwrap().to_string();
    let installed = eventually("the installed client to be let in", SHORT, || {
        let (u, t) = (installed_url.clone(), token.clone());
        async move { try_mcp_with_token(&u, &t).await }
    })
    .await;
    let r = call(&installed, "list_workspaces", json!({})).await;
    assert!(!is_error(&r), "{}", text(&r));
    let log = env.audit_search("");
    assert!(
        records_with(&log, "list_workspaces")
            .iter()
            .any(|r| r["client"] == "claude-code"),
        "{log:#?}"
    );

    for c in [client, client2, installed] {
        c.cancel().await.unwrap();
    }
    app.stop().await;
}

/// The audit window: a call shows up live, search finds it, the detail pane explains it,
/// paging loads more as the user scrolls, and "Verify log" says the chain is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_window_live_search_paging_verify() {
    let env = TestEnv::new("");
    std::fs::write(env.project.join("needle-7f3a.txt"), "found me\n").unwrap();
    let app = DrivenApp::start(&env, "audit").await;
    let (url, _) = env.wait_server(None, LONG).await;
    app.wait_text("#engine", "Engine running", LONG).await;
    let client = mcp(&url).await;

    // Enough calls for a few pages of history (pages are 100).
    for i in 0..240 {
        let r = call(&client, "list_workspaces", json!({})).await;
        assert!(!is_error(&r), "call {i}: {}", text(&r));
    }
    let r = call(&client, "read_file", json!({"path": "needle-7f3a.txt"})).await;
    assert_eq!(text(&r), "found me\n");
    app.wait_text("#live", "needle-7f3a.txt", SHORT).await;
    app.screenshot("audit-live").await;

    // Search finds exactly that call.
    app.find("#q").await.send_keys("needle").await.unwrap();
    eventually("one search result", SHORT, || async {
        let texts = app.texts_of_all("#spacer .rec").await;
        (texts.len() == 1 && texts[0].contains("needle-7f3a.txt")).then_some(())
    })
    .await;
    app.find("#spacer .rec").await.click().await.unwrap();
    app.wait_text("#detail", "found me", SHORT).await;
    app.wait_text("#detail", "read_file", SHORT).await;
    app.screenshot("audit-search").await;

    // Filters: by tool (the search cleared), then by decision.
    app.find("#clear").await.click().await.unwrap();
    app.find("#f-tool")
        .await
        .send_keys("read_file")
        .await
        .unwrap();
    eventually("the tool filter", SHORT, || async {
        let rows = app.texts_of_all("#spacer .rec").await;
        (rows.len() == 1 && rows[0].contains("read_file")).then_some(())
    })
    .await;
    app.find("#f-decision")
        .await
        .select_by_value("denied")
        .await
        .unwrap();
    app.wait_text("#history-status", "No calls match", SHORT)
        .await;

    // Clear; scrolling to the end loads the rest, with only the rows in view in the DOM.
    app.find("#clear").await.click().await.unwrap();
    app.wait_text("#history-status", "scroll for more", SHORT)
        .await;
    // Drive paging the way a user does: keep pressing End / Page Down in the list.
    eventually("every call loaded by paging", LONG, || async {
        let sc = app.find("#scroller").await;
        let _ = sc.send_keys("\u{E010}").await; // End
        let _ = sc.send_keys("\u{E00F}").await; // Page Down
        let status = app.text_of("#history-status").await;
        (status.starts_with("241 calls") && !status.contains("scroll")).then_some(())
    })
    .await;
    let dom_rows = app.find_all("#spacer .rec").await.len();
    assert!(
        dom_rows < 120,
        "only the rows in view are rendered, not {dom_rows}"
    );

    // Export through the typed-path field (the native save dialog cannot be driven here).
    let export = env.dir.path().join("audit-export.jsonl");
    app.find("#export-toggle").await.click().await.unwrap();
    app.find("#export-path")
        .await
        .send_keys(&export.display().to_string())
        .await
        .unwrap();
    app.find("#export-run").await.click().await.unwrap();
    app.wait_text("#export-result", "Exported 241 calls", LONG)
        .await;
    let exported = std::fs::read_to_string(&export).unwrap();
    assert_eq!(exported.lines().count(), 241);
    assert!(exported.contains("needle-7f3a.txt"));

    // Verify log.
    app.find("#verify").await.click().await.unwrap();
    app.wait_text("#verify-result", "Log intact", LONG).await;
    app.screenshot("audit-verify").await;

    let log = env.audit_search("needle");
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0]["tool"], "read_file");
    let (ok, out) = env.audit_verify();
    assert!(ok, "{out}");

    client.cancel().await.unwrap();
    app.stop().await;
}

/// Undo in the audit window: a call that overwrote a file lists it under "Changed files" with its
/// diff; Undo first checks, and a conflicting edit made on the host since is named in the
/// confirmation (Escape leaves everything as it is); once the file is as the call left it, Enter
/// puts the original back byte for byte and the detail says Undone; "Undo session" takes back the
/// session's other call (a file it created). Then the same in dark mode, up to the conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_window_shows_changed_files_and_undoes_with_conflict_check() {
    let env = TestEnv::new(r#"allow = ["write_file"]"#);
    let hello = env.project.join("hello.txt");
    let fresh = env.project.join("fresh.txt");
    let original = std::fs::read(&hello).unwrap();
    let written = "hello from the host\nand a line from the model\n";
    let app = DrivenApp::start(&env, "audit").await;
    let (url, _) = env.wait_server(None, LONG).await;
    app.wait_text("#engine", "Engine running", LONG).await;
    let client = mcp(&url).await;
    let r = call(
        &client,
        "write_file",
        json!({"path": "hello.txt", "content": written}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    let r = call(
        &client,
        "write_file",
        json!({"path": "fresh.txt", "content": "a new file\n"}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    assert_eq!(std::fs::read_to_string(&hello).unwrap(), written);

    // Both calls arrive live, each with its quiet "1 file" mark.
    app.wait_text("#live", "fresh.txt", SHORT).await;
    eventually("a \"1 file\" badge on both calls", SHORT, || async {
        let badges = app.texts_of_all("#live .badge.files").await;
        (badges.iter().filter(|b| b.trim() == "1 file").count() == 2).then_some(())
    })
    .await;

    // The overwrite: its changed file, expanded to its diff.
    app.click_row("#spacer", "hello.txt").await;
    app.wait_text("#changes", "project/hello.txt", SHORT).await;
    app.wait_text("#changes", "edited", SHORT).await;
    let head = app.find("#changes .change-head").await;
    if head.attr("aria-expanded").await.unwrap().as_deref() != Some("true") {
        head.click().await.unwrap();
    }
    let diff = app
        .wait_text("#changes .diff-lines", "+and a line from the model", SHORT)
        .await;
    assert!(diff.contains(" hello from the host"), "{diff}");
    app.find("#undo-call").await;
    app.find("#undo-session").await;
    app.screenshot("audit-undo-diff").await;

    // Edited on the host since: Undo names the conflict and offers only "Undo anyway".
    std::fs::write(&hello, "edited on the host\n").unwrap();
    app.find("#undo-call").await.click().await.unwrap();
    app.wait_shown("#undo-sheet", true, LONG).await;
    let conflict = app.wait_text(".conflict", "hello.txt", SHORT).await;
    assert!(conflict.contains("edited since the call"), "{conflict}");
    assert!(
        conflict.contains("now file") && conflict.contains("expected file"),
        "{conflict}"
    );
    assert_eq!(app.text_of("#undo-confirm").await.trim(), "Undo anyway");
    app.screenshot("audit-undo-conflict").await;
    app.press_key('\u{E00C}').await.unwrap(); // Escape
    app.wait_shown("#undo-sheet", false, SHORT).await;
    assert_eq!(
        std::fs::read_to_string(&hello).unwrap(),
        "edited on the host\n",
        "a cancelled undo changes nothing"
    );

    // As the call left it again: no conflict; Enter undoes.
    std::fs::write(&hello, written).unwrap();
    app.find("#undo-call").await.click().await.unwrap();
    app.wait_shown("#undo-sheet", true, LONG).await;
    app.wait_text("#undo-dialog .put-back", "hello.txt", SHORT)
        .await;
    assert!(
        app.find_all(".conflict").await.is_empty(),
        "no conflict: {}",
        app.text_of("#undo-dialog").await
    );
    assert_eq!(app.text_of("#undo-confirm").await.trim(), "Undo");
    app.screenshot("audit-undo-confirm").await;
    app.press_key('\u{E007}').await.unwrap(); // Enter
    eventually("hello.txt back to its original bytes", LONG, || async {
        (std::fs::read(&hello).ok()? == original).then_some(())
    })
    .await;
    app.wait_shown("#undo-sheet", false, SHORT).await;
    app.wait_text("#changes", "Undone", SHORT).await;
    app.wait_text("#undo-msg", "put back", SHORT).await;
    assert!(
        app.find_all("#undo-call").await.is_empty(),
        "no Undo button on an undone call"
    );
    app.wait_text("#live", "undo", SHORT).await;
    app.screenshot("audit-undone").await;

    // "Undo session": what is left of the session is the file it created, which goes.
    assert!(fresh.exists());
    app.click_row("#spacer", "fresh.txt").await;
    app.wait_text("#changes", "project/fresh.txt", SHORT).await;
    app.find("#undo-session").await.click().await.unwrap();
    app.wait_shown("#undo-sheet", true, LONG).await;
    let sheet = app
        .wait_text("#undo-dialog .put-back", "fresh.txt", SHORT)
        .await;
    assert!(!sheet.contains("hello.txt"), "undone already: {sheet}");
    app.wait_text("#undo-dialog .put-back", "removed", SHORT)
        .await;
    app.find("#undo-confirm").await.click().await.unwrap();
    eventually("fresh.txt removed by the session undo", LONG, || async {
        (!fresh.exists()).then_some(())
    })
    .await;
    app.wait_text("#changes", "Undone", SHORT).await;
    assert_eq!(std::fs::read(&hello).unwrap(), original);

    // The log: each undo an action of the user's, in its own session.
    let log = env.audit_search("");
    let undos = records_with(&log, "undo");
    assert_eq!(undos.len(), 2, "{log:#?}");
    for u in &undos {
        assert_eq!(u["client"], "user", "{u:#}");
        assert_eq!(u["session"], "user:undo", "{u:#}");
        assert_eq!(u["outcome"], "ok", "{u:#}");
    }
    client.cancel().await.unwrap();
    app.stop().await;

    // Dark mode: the diff and a conflict, to look at.
    let app = DrivenApp::start_with(&env, "audit", &[("GTK_THEME", "Adwaita:dark")]).await;
    let (url, _) = env.wait_server(None, LONG).await;
    app.wait_text("#engine", "Engine running", LONG).await;
    let client = mcp(&url).await;
    let r = call(
        &client,
        "write_file",
        json!({"path": "hello.txt", "content": "hello from the host\nwritten in the dark\n"}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    // The history now holds the light run's (undone) hello.txt call too: pick this one from
    // the live list (this window's calls only), once it is complete (its "1 file" mark).
    app.wait_text("#live .badge.files", "1 file", SHORT).await;
    app.click_row("#live", "hello.txt").await;
    app.wait_text("#changes .diff-lines", "+written in the dark", SHORT)
        .await;
    app.screenshot("audit-undo-diff-dark").await;
    std::fs::write(&hello, "edited on the host\n").unwrap();
    app.find("#undo-call").await.click().await.unwrap();
    app.wait_text(".conflict", "hello.txt", LONG).await;
    app.screenshot("audit-undo-conflict-dark").await;
    app.press_key('\u{E00C}').await.unwrap();
    app.wait_shown("#undo-sheet", false, SHORT).await;
    assert_eq!(
        std::fs::read_to_string(&hello).unwrap(),
        "edited on the host\n"
    );
    client.cancel().await.unwrap();
    app.stop().await;
}

/// A workspace on an external drive (the app in dark mode): Settings marks it; unplugged (a real tmpfs unmounted) it
/// shows as unavailable in Settings and the tray and calls to it fail clearly; plugged back in
/// it works again without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_drive_unplugged_shows_unavailable_and_comes_back() {
    let env = TestEnv::new("");
    let drive = env.volumes().join("usb");
    std::fs::create_dir_all(&drive).unwrap();
    let d = drive.to_str().unwrap().to_string();
    run(&["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", &d]);
    let _unmount = Unmount(d.clone());
    std::fs::write(drive.join("photo.txt"), "on the drive\n").unwrap();
    give_to_sandbox(&drive);
    let text_ = std::fs::read_to_string(&env.config).unwrap()
        + &format!("\n[[workspaces]]\nname = \"usb\"\npath = \"{d}\"\naccess = \"ro\"\n");
    std::fs::write(&env.config, text_).unwrap();

    let app = DrivenApp::start_with(&env, "workspaces", &[("GTK_THEME", "Adwaita:dark")]).await;
    let (url, _) = env.wait_server(None, LONG).await;
    let client = mcp(&url).await;
    let r = call(
        &client,
        "read_file",
        json!({"path": "/workspaces/usb/photo.txt"}),
    )
    .await;
    assert_eq!(text(&r), "on the drive\n");
    let card = ".ws[data-name=usb]";
    app.wait_text(card, "external drive", LONG).await;

    run(&["umount", &d]);
    app.wait_text(card, "unavailable: drive not connected", SHORT)
        .await;
    app.screenshot("settings-drive-unplugged").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    open_tray_menu();
    screenshot_screen("tray-menu-drive-unplugged");
    xdotool(&["key", "Escape"]);
    let r = call(
        &client,
        "read_file",
        json!({"path": "/workspaces/usb/photo.txt"}),
    )
    .await;
    assert!(
        is_error(&r) && text(&r).contains("unavailable"),
        "{}",
        text(&r)
    );

    run(&["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", &d]);
    std::fs::write(drive.join("photo.txt"), "plugged back in\n").unwrap();
    give_to_sandbox(&drive);
    eventually("the drive to show as available", SHORT, || async {
        (!app.text_of(card).await.contains("unavailable")).then_some(())
    })
    .await;
    let r = call(
        &client,
        "read_file",
        json!({"path": "/workspaces/usb/photo.txt"}),
    )
    .await;
    assert_eq!(text(&r), "plugged back in\n", "no restart needed");

    let log = env.audit_search("");
    let reads: Vec<_> = records_with(&log, "read_file")
        .into_iter()
        .filter(|r| r["arguments"].to_string().contains("/workspaces/usb/"))
        .collect();
    assert_eq!(reads.len(), 3, "{log:#?}");
    assert_eq!(
        reads.iter().filter(|r| r["outcome"] == "ok").count(),
        2,
        "{log:#?}"
    );
    client.cancel().await.unwrap();
    app.stop().await;
}

/// Unmounts a test's drive even when the test fails.
struct Unmount(String);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .args(["-l", &self.0])
            .status();
    }
}

/// Finds the tray icon in trayer (top right) and opens its menu.
fn open_tray_menu() {
    let windows = xdotool(&["search", "--class", "trayer"]);
    let mut icon = (1262, 16);
    for w in windows.lines() {
        let geo = xdotool(&["getwindowgeometry", "--shell", w]);
        let val = |k: &str| -> i32 {
            geo.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        if val("WIDTH") >= 100 {
            icon = (val("X") + val("WIDTH") - 16, val("Y") + val("HEIGHT") / 2);
        }
    }
    xdotool(&[
        "mousemove",
        &icon.0.to_string(),
        &icon.1.to_string(),
        "click",
        "1",
    ]);
    std::thread::sleep(Duration::from_millis(800));
}

/// Picks a tray menu item with the keyboard: `Down` × n (disabled lines are skipped) or `Up` × n
/// from the bottom, then Return.
fn choose(key: &str, times: usize) {
    for _ in 0..times {
        xdotool(&["key", key]);
        std::thread::sleep(Duration::from_millis(150));
    }
    xdotool(&["key", "Return"]);
}

/// The tray: its menu's Docker Runtime item turns the runtime off and on (the engine writes it
/// and refuses calls meanwhile), and Quit stops the engine, which removes its sandboxes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tray_menu_runtime_toggle_and_quit() {
    let env = TestEnv::new("");
    let mut app = App::start(&env);
    let (url, engine_pid) = env.wait_server(None, LONG).await;
    let client = mcp(&url).await;
    let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
    assert!(!is_error(&r), "{}", text(&r));
    assert!(!env.containers().is_empty(), "the call made a sandbox");
    tokio::time::sleep(Duration::from_secs(3)).await; // the status line catches up (every 2 s)

    open_tray_menu();
    screenshot_screen("tray-menu");
    choose("Down", 1); // the first enabled item: Docker Runtime
    eventually("runtime.enabled = false on disk", SHORT, || async {
        (env.runtime_enabled_on_disk() == Some(false)).then_some(())
    })
    .await;
    // Written first, then applied: calls are refused once the engine has applied it.
    eventually("calls refused with the runtime off", SHORT, || async {
        let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
        (is_error(&r) && text(&r).contains("Docker Runtime is turned off")).then_some(())
    })
    .await;
    eventually("sandboxes stopped", SHORT, || async {
        env.containers().is_empty().then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    open_tray_menu();
    screenshot_screen("tray-menu-runtime-off");
    choose("Down", 1);
    eventually("runtime.enabled = true on disk", SHORT, || async {
        (env.runtime_enabled_on_disk() == Some(true)).then_some(())
    })
    .await;
    // Written first, then applied: calls run again once the engine has applied it.
    eventually("calls served with the runtime back on", SHORT, || async {
        let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
        (!is_error(&r)).then_some(())
    })
    .await;
    assert!(!env.containers().is_empty());

    // Quit (the last item): the engine shuts down cleanly and takes its sandboxes with it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    open_tray_menu();
    screenshot_screen("tray-menu-before-quit");
    choose("Up", 1);
    eventually("the app to exit", LONG, || {
        let done = !app.running();
        async move { done.then_some(()) }
    })
    .await;
    assert!(!alive(engine_pid), "the engine exited with the app");
    assert!(
        env.containers().is_empty(),
        "no sandbox left behind: {:?}",
        env.containers()
    );
    assert!(
        !env.data.join("server.json").exists(),
        "the engine shut down cleanly (runtime file removed)"
    );

    // Served, then refused while the runtime was off, then served again. (The waits above
    // call until the change shows, so a busy machine may add a read on either side.)
    let log = env.audit_search("");
    let mut reads = records_with(&log, "read_file");
    reads.sort_by_key(|r| r["seq"].as_u64());
    let outcomes: Vec<&str> = reads
        .iter()
        .map(|r| r["outcome"].as_str().unwrap_or(""))
        .collect();
    assert!(outcomes.len() >= 3, "{log:#?}");
    assert_eq!(outcomes.first(), Some(&"ok"), "{outcomes:?}");
    assert_eq!(outcomes.last(), Some(&"ok"), "{outcomes:?}");
    assert!(
        outcomes.contains(&"refused"),
        "no read refused while the runtime was off: {outcomes:?}"
    );
    let first_refused = outcomes.iter().position(|o| *o == "refused").unwrap_or(0);
    let last_refused = outcomes.iter().rposition(|o| *o == "refused").unwrap_or(0);
    assert!(
        outcomes[first_refused..=last_refused]
            .iter()
            .all(|o| *o == "refused"),
        "a read ran while the runtime was off: {outcomes:?}"
    );
}

/// Supervision: the engine killed hard is restarted, calls work again, and the audit log
/// keeps every call and still verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_killed_is_restarted_and_log_is_intact() {
    let env = TestEnv::new("");
    let _app = App::start(&env);
    let (url, pid) = env.wait_server(None, LONG).await;
    let client = mcp(&url).await;
    let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
    assert!(!is_error(&r), "{}", text(&r));
    let r = call(&client, "list_directory", json!({"path": "."})).await;
    assert!(!is_error(&r), "{}", text(&r));

    // SAFETY: a signal to the engine this test's app started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let (url2, pid2) = env.wait_server(Some(pid), LONG).await;
    assert_ne!(pid, pid2);
    let client2 = mcp(&url2).await;
    let r = call(&client2, "read_file", json!({"path": "hello.txt"})).await;
    assert!(!is_error(&r), "{}", text(&r));

    let log = env.audit_search("");
    let reads = records_with(&log, "read_file");
    assert_eq!(
        reads.len(),
        2,
        "both reads, before and after the restart: {log:#?}"
    );
    assert!(reads.iter().all(|r| r["outcome"] == "ok"), "{log:#?}");
    assert_eq!(records_with(&log, "list_directory").len(), 1, "{log:#?}");
    let (ok, out) = env.audit_verify();
    assert!(ok, "the chain verifies after a hard kill: {out}");
    client2.cancel().await.unwrap();
}

/// Supervision: an engine that cannot start is retried a few times, then the app stops and says
/// so in the tray; fixing the cause and choosing "Restart Engine" brings it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_shows_error_then_restart_engine_recovers() {
    let env = TestEnv::new("");
    let good = env.settings_file();
    std::fs::write(
        &env.config,
        good.replace("listen = \"127.0.0.1:0\"", "listen = \"0.0.0.0:0\""),
    )
    .unwrap();
    let app = DrivenApp::start(&env, "settings").await;
    // 5 quick exits with 0.5 + 1 + 2 + 4 s pauses between them, then it stops trying and says why,
    // in Settings (with a Restart button) as in the tray.
    app.wait_text("#engine-line", "stopped 5 times in a row", LONG)
        .await;
    app.wait_text("#engine-line", "loopback", SHORT).await;
    app.find("#restart-engine").await;
    app.screenshot("settings-engine-failed").await;
    assert!(!env.data.join("server.json").exists());

    open_tray_menu();
    screenshot_screen("tray-menu-engine-failed");
    std::fs::write(&env.config, &good).unwrap();
    choose("Down", 1); // the first enabled item is "Restart Engine"
    let (url, _) = env.wait_server(None, LONG).await;
    let client = mcp(&url).await;
    let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
    assert!(!is_error(&r), "{}", text(&r));
    assert_eq!(records_with(&env.audit_search(""), "read_file").len(), 1);
    app.wait_text("#engine-line", "Engine running", SHORT).await;
    client.cancel().await.unwrap();
    app.stop().await;
}

/// Removes the package when the test ends, however it ends.
struct Installed(&'static str);

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::process::Command::new("dpkg")
            .args(["-r", self.0])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

/// The installable app: the .deb `make bundle` builds, installed with dpkg and started from its
/// installed path with a clean environment outside the clone — its engine sidecar and agent come
/// from the package alone — serves a tool call in a real sandbox, and uninstalls cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_package_serves_a_call_and_uninstalls_cleanly() {
    let deb = std::env::var("AIRLOCK_TEST_DEB").expect(
        "AIRLOCK_TEST_DEB names the package under test: run the GUI tests through scripts/gui-test.sh, which builds it",
    );
    let env = TestEnv::new("");
    let installed = std::process::Command::new("dpkg")
        .args(["-i", &deb])
        .output()
        .expect("dpkg runs");
    assert!(installed.status.success(), "dpkg -i {deb}: {installed:?}");
    let package = Installed("airlock");
    for path in [
        "/usr/bin/airlock-app",
        "/usr/bin/airlock-engine",
        "/usr/lib/Airlock/airlock-agent/airlock-agent-linux-amd64",
    ] {
        assert!(std::path::Path::new(path).is_file(), "{path} is installed");
    }

    let mut app = App::start_installed(&env, std::path::Path::new("/usr/bin/airlock-app"));
    let (url, engine) = env.wait_server(None, LONG).await;
    let exe = std::fs::read_link(format!("/proc/{engine}/exe")).unwrap();
    assert_eq!(
        exe,
        std::path::Path::new("/usr/bin/airlock-engine"),
        "the packaged engine serves"
    );
    let client = mcp(&url).await;
    let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
    assert!(!is_error(&r), "{}", text(&r));
    assert_eq!(text(&r), "hello from the host\n");
    let agents = std::fs::read_dir(env.data.join("agent"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(
        agents > 0,
        "the packaged agent was installed in the data dir"
    );
    client.cancel().await.unwrap();
    assert!(app.running());
    drop(app);

    drop(package);
    for path in [
        "/usr/bin/airlock-app",
        "/usr/bin/airlock-engine",
        "/usr/lib/Airlock",
    ] {
        assert!(
            !std::path::Path::new(path).exists(),
            "{path} is gone after dpkg -r"
        );
    }
}
