//! Every tool through a real MCP client (rmcp's) over Streamable HTTP against a real
//! `airlock serve`, real Docker and the real agent: the happy path and the main error of each.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_tool_works_through_http() {
    let env = TestEnv::new("");
    let server = Server::start(&env, &[]);
    let client = server.client().await;

    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names.len(), 19, "{names:?}");
    let read = tools.iter().find(|t| t.name == "read_file").unwrap();
    assert_eq!(
        read.annotations.as_ref().unwrap().read_only_hint,
        Some(true)
    );
    let delete = tools.iter().find(|t| t.name == "delete_path").unwrap();
    assert_eq!(
        delete.annotations.as_ref().unwrap().destructive_hint,
        Some(true)
    );

    // list_workspaces
    let r = call(&client, "list_workspaces", json!({})).await;
    assert!(
        text(&r).contains("/workspaces/project (read-write)"),
        "{}",
        text(&r)
    );
    assert!(
        text(&r).contains("/workspaces/data (read-only)"),
        "{}",
        text(&r)
    );

    // read_file: relative to the first workspace, and absolute
    let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
    assert_eq!(text(&r), "hello from the host\n");
    let r = call(
        &client,
        "read_file",
        json!({"path": "/workspaces/data/readme.txt"}),
    )
    .await;
    assert_eq!(text(&r), "read only data\n");
    let r = call(&client, "read_file", json!({"path": "missing.txt"})).await;
    assert!(is_error(&r));
    let r = call(&client, "read_file", json!({"path": "../../etc/passwd"})).await;
    assert!(
        is_error(&r) && text(&r).contains("outside the workspaces"),
        "{}",
        text(&r)
    );

    // write_file lands on the host; ro workspace refuses
    let r = call(
        &client,
        "write_file",
        json!({"path": "src/new.txt", "content": "written in the sandbox"}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    assert_eq!(
        std::fs::read_to_string(env.project.join("src/new.txt")).unwrap(),
        "written in the sandbox"
    );
    let r = call(
        &client,
        "write_file",
        json!({"path": "/workspaces/data/x.txt", "content": "no"}),
    )
    .await;
    assert!(
        is_error(&r) && text(&r).contains("read-only"),
        "{}",
        text(&r)
    );
    assert!(!env.data_ws.join("x.txt").exists());

    // edit_file with a diff; a missing old_text is an error
    let r = call(
        &client,
        "edit_file",
        json!({"path": "src/new.txt", "edits": [{"old_text": "sandbox", "new_text": "box"}]}),
    )
    .await;
    assert!(
        !is_error(&r) && text(&r).contains("+written in the box"),
        "{}",
        text(&r)
    );
    let r = call(
        &client,
        "edit_file",
        json!({"path": "src/new.txt", "edits": [{"old_text": "absent", "new_text": "x"}]}),
    )
    .await;
    assert!(is_error(&r));

    // list_directory, directory_tree, search_files, grep, file_info
    let r = call(&client, "list_directory", json!({"path": "."})).await;
    assert!(
        text(&r).contains("src/") && text(&r).contains("hello.txt"),
        "{}",
        text(&r)
    );
    let r = call(
        &client,
        "directory_tree",
        json!({"path": "/workspaces/project", "depth": 2}),
    )
    .await;
    assert!(text(&r).contains("new.txt"), "{}", text(&r));
    let r = call(
        &client,
        "search_files",
        json!({"path": ".", "pattern": "**/*.txt"}),
    )
    .await;
    assert!(text(&r).contains("src/new.txt"), "{}", text(&r));
    let r = call(&client, "grep", json!({"path": ".", "regex": "hel+o"})).await;
    assert!(text(&r).contains("hello.txt:1"), "{}", text(&r));
    let r = call(&client, "grep", json!({"path": ".", "regex": "("})).await;
    assert!(is_error(&r), "bad regex must be an error: {}", text(&r));
    let r = call(&client, "file_info", json!({"path": "hello.txt"})).await;
    assert!(text(&r).contains("20 bytes"), "{}", text(&r));

    // create_directory, move_path, delete_path
    let r = call(&client, "create_directory", json!({"path": "a/b/c"})).await;
    assert!(!is_error(&r), "{}", text(&r));
    assert!(env.project.join("a/b/c").is_dir());
    let r = call(
        &client,
        "move_path",
        json!({"source": "src/new.txt", "destination": "a/moved.txt"}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    assert!(env.project.join("a/moved.txt").is_file());
    let r = call(
        &client,
        "move_path",
        json!({"source": "a/moved.txt", "destination": "/tmp/out.txt"}),
    )
    .await;
    assert!(is_error(&r));
    let r = call(&client, "delete_path", json!({"path": "a"})).await;
    assert!(is_error(&r), "non-empty dir needs recursive: {}", text(&r));
    let r = call(
        &client,
        "delete_path",
        json!({"path": "a", "recursive": true}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    assert!(!env.project.join("a").exists());

    // run_command: exit code, streams apart, stdin, env, cwd
    let r = call(
        &client,
        "run_command",
        json!({"command": "echo out; echo err >&2; exit 3"}),
    )
    .await;
    assert!(is_error(&r));
    let t = text(&r);
    assert!(
        t.contains("Exit code: 3")
            && t.contains("--- stdout ---\nout")
            && t.contains("--- stderr ---\nerr"),
        "{t}"
    );
    let r = call(&client, "run_command", json!({"command": "cat; echo $GREETING; pwd; id -u", "stdin": "piped ", "env": {"GREETING": "hi"}, "cwd": "/workspaces/data"})).await;
    let t = text(&r);
    assert!(
        t.contains("piped hi\n/workspaces/data\n65532")
            || t.contains("piped hi\n/workspaces/data\n"),
        "{t}"
    );
    assert!(!t.contains("\n0\n"), "never uid 0: {t}");

    // background processes
    let r = call(
        &client,
        "start_process",
        json!({"command": "while read l; do echo got:$l; done"}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    let handle = r.structured_content.as_ref().unwrap()["handle"]
        .as_u64()
        .unwrap();
    let r = call(
        &client,
        "write_process_input",
        json!({"handle": handle, "input": "ping\n"}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    let r = call(
        &client,
        "read_process_output",
        json!({"handle": handle, "wait_ms": 3000}),
    )
    .await;
    assert!(text(&r).contains("got:ping"), "{}", text(&r));
    let r = call(&client, "list_processes", json!({})).await;
    assert!(text(&r).contains("running"), "{}", text(&r));
    let r = call(&client, "kill_process", json!({"handle": handle})).await;
    assert!(!is_error(&r), "{}", text(&r));
    let r = call(&client, "kill_process", json!({"handle": 999})).await;
    assert!(is_error(&r));

    // install_packages: refused clearly without egress; names validated
    let r = call(
        &client,
        "install_packages",
        json!({"manager": "apt", "packages": ["curl"]}),
    )
    .await;
    assert!(
        is_error(&r) && text(&r).contains("runtime.network"),
        "{}",
        text(&r)
    );
    let r = call(
        &client,
        "install_packages",
        json!({"manager": "pip", "packages": ["--index-url=http://evil"]}),
    )
    .await;
    assert!(
        is_error(&r) && text(&r).contains("not a valid"),
        "{}",
        text(&r)
    );

    // wrong argument types and unknown tools are tool errors, and the server keeps serving
    let r = call(&client, "read_file", json!({"path": 42})).await;
    assert!(
        is_error(&r) && text(&r).contains("invalid arguments"),
        "{}",
        text(&r)
    );
    let r = call(&client, "no_such_tool", json!({})).await;
    assert!(is_error(&r));
    let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
    assert!(!is_error(&r));

    client.cancel().await.unwrap();
}

/// Rules hold for everything a tool touches: a recursive tool called on a folder above a denied
/// path leaves out what lies there, and says how much it left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recursive_tools_leave_out_what_the_rules_deny_below_their_argument() {
    let secret = "/workspaces/project/secret/**";
    let env = TestEnv::with_approval(
        "",
        &format!(
            "allow = [\"*\"]\ndeny = [\"read_file({secret})\", \"grep({secret})\", \"search_files({secret})\", \"directory_tree({secret})\", \"list_directory({secret})\"]"
        ),
    );
    std::fs::create_dir_all(env.project.join("secret")).unwrap();
    std::fs::write(env.project.join("secret/key.txt"), "TOPSECRET-42\n").unwrap();
    std::fs::write(env.project.join("notes.txt"), "TOPSECRET-42 is not here\n").unwrap();
    give_to_sandbox(&env.project);
    let server = Server::start(&env, &[]);
    let client = server.client().await;

    let r = call(
        &client,
        "grep",
        json!({"path": "/workspaces/project", "regex": "TOPSECRET"}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    assert!(text(&r).contains("notes.txt"), "{}", text(&r));
    assert!(!text(&r).contains("key.txt"), "{}", text(&r));
    assert!(text(&r).contains("1 not shown"), "{}", text(&r));

    let r = call(
        &client,
        "search_files",
        json!({"path": "/workspaces/project", "pattern": "*.txt"}),
    )
    .await;
    assert!(
        text(&r).contains("notes.txt") && !text(&r).contains("key.txt"),
        "{}",
        text(&r)
    );

    let r = call(
        &client,
        "directory_tree",
        json!({"path": "/workspaces/project"}),
    )
    .await;
    assert!(!text(&r).contains("key.txt"), "{}", text(&r));
    assert!(text(&r).contains("not shown"), "{}", text(&r));

    // The denied path itself is refused outright, as before.
    let r = call(&client, "read_file", json!({"path": "secret/key.txt"})).await;
    assert!(
        is_error(&r) && !text(&r).contains("TOPSECRET"),
        "{}",
        text(&r)
    );
}

/// Moving or deleting a folder takes what is below it along: refused when a rule denies that
/// tool a path below it (or where a moved entry would land); allowed when nothing there is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moving_or_deleting_a_folder_over_a_denied_path_is_refused() {
    let env = TestEnv::with_approval(
        "",
        "allow = [\"*\"]\ndeny = [\"delete_path(/workspaces/project/keep/**)\", \"move_path(/workspaces/project/keep/**)\", \"move_path(/workspaces/project/vault/sub/**)\"]",
    );
    std::fs::create_dir_all(env.project.join("a/keep")).unwrap();
    std::fs::create_dir_all(env.project.join("keep")).unwrap();
    std::fs::write(env.project.join("keep/data.txt"), "keep me\n").unwrap();
    std::fs::create_dir_all(env.project.join("free/sub")).unwrap();
    std::fs::write(env.project.join("free/sub/x.txt"), "x\n").unwrap();
    std::fs::create_dir_all(env.project.join("tmp")).unwrap();
    give_to_sandbox(&env.project);
    let server = Server::start(&env, &[]);
    let client = server.client().await;

    // The workspace root holds `keep/`: neither deleted nor moved.
    let r = call(
        &client,
        "delete_path",
        json!({"path": "/workspaces/project", "recursive": true}),
    )
    .await;
    assert!(is_error(&r), "{}", text(&r));
    assert!(
        text(&r).contains("/workspaces/project/keep"),
        "{}",
        text(&r)
    );
    assert!(env.project.join("keep/data.txt").exists());
    let r = call(
        &client,
        "move_path",
        json!({"source": "/workspaces/project/keep", "destination": "/workspaces/project/tmp/k"}),
    )
    .await;
    assert!(is_error(&r), "the folder itself is denied: {}", text(&r));
    // A folder whose entries would land in a denied place is not moved there either.
    let r = call(
        &client,
        "move_path",
        json!({"source": "/workspaces/project/free", "destination": "/workspaces/project/vault"}),
    )
    .await;
    assert!(is_error(&r), "{}", text(&r));
    assert!(text(&r).contains("vault/sub"), "{}", text(&r));
    assert!(env.project.join("free/sub/x.txt").exists());

    // Nothing denied below: moved and deleted as asked.
    let r = call(
        &client,
        "move_path",
        json!({"source": "/workspaces/project/free", "destination": "/workspaces/project/tmp/free"}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    let r = call(
        &client,
        "delete_path",
        json!({"path": "/workspaces/project/tmp", "recursive": true}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    assert!(!env.project.join("tmp").exists());
}
