//! Undo on real Docker, through a real `airlock serve` and the `airlock` command line: every
//! file tool and a shell command undone to a byte-identical tree (modes included), conflicts
//! refused until forced, a planted symlink never read or written through, the store out of
//! every sandbox's reach, its bound honoured, undo with and without a running engine, and an
//! engine killed mid-capture.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::json;
use sha2::Digest;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Every entry beneath `root` (not following symlinks): kind, mode and content hash or
/// link text — two trees with the same map are byte-identical, modes included.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let what = if meta.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                walk(root, &path, out);
                format!("dir {mode:o}")
            } else {
                let hash = sha2::Sha256::digest(std::fs::read(&path).unwrap());
                format!("file {mode:o} {hash:x}")
            };
            out.insert(rel, what);
        }
    }
    walk(root, root, &mut out);
    out
}

/// The newest call of `tool` in the audit log: its call id.
fn last_call_id(env: &TestEnv, tool: &str) -> String {
    let records = audit_search(env, &["--tool", tool]);
    records
        .first()
        .unwrap_or_else(|| panic!("no {tool} call in the log"))["call_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `airlock undo ARGS…`: exit code, stdout, stderr.
fn undo(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["undo"];
    all.extend_from_slice(args);
    let out = airlock_cli(env, &all);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn assert_undone(env: &TestEnv, call_id: &str) {
    let (code, out, err) = undo(env, &[call_id]);
    assert_eq!(code, 0, "undo of {call_id} failed: {out}{err}");
    assert!(out.contains("put back"), "{out}");
}

/// Makes `path` (and what is in it) the sandbox user's, as a host user's files would be.
fn host_file(env: &TestEnv, rel: &str, content: &str, mode: u32) {
    let path = env.project.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    give_to_sandbox(&env.project);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_tool_undone_leaves_the_tree_byte_identical() {
    let env = TestEnv::new("");
    host_file(&env, "src/lib.rs", "fn main() {}\n", 0o644);
    host_file(&env, "notes/todo.txt", "one\ntwo\n", 0o600);
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    let calls: Vec<(&str, serde_json::Value)> = vec![
        (
            "write_file",
            json!({"path": "new.txt", "content": "brand new\n"}),
        ),
        (
            "write_file",
            json!({"path": "src/lib.rs", "content": "fn main() { evil() }\n"}),
        ),
        (
            "edit_file",
            json!({"path": "notes/todo.txt", "edits": [{"old_text": "two", "new_text": "TWO"}]}),
        ),
        ("create_directory", json!({"path": "a/b/c"})),
        (
            "move_path",
            json!({"source": "notes", "destination": "notes-moved"}),
        ),
        ("delete_path", json!({"path": "src", "recursive": true})),
    ];
    for (tool, args) in calls {
        let before = tree(&env.project);
        let result = call(&client, tool, args.clone()).await;
        assert!(!is_error(&result), "{tool} {args}: {}", text(&result));
        assert_ne!(tree(&env.project), before, "{tool} changed nothing");
        let id = last_call_id(&env, tool);
        assert_undone(&env, &id);
        assert_eq!(tree(&env.project), before, "undo of {tool} {args}");
    }
    // Undoing twice is a no-op with a message; each undo is in the chain, by the user.
    let id = last_call_id(&env, "delete_path");
    let (code, out, _) = undo(&env, &[&id]);
    assert_eq!(code, 0);
    assert!(out.contains("already undone"), "{out}");
    let undos = audit_search(&env, &["--tool", "undo"]);
    assert_eq!(undos.len(), 6, "{undos:?}");
    assert!(
        undos
            .iter()
            .all(|r| r["client"] == "user" && r["outcome"] == "ok"),
        "{undos:?}"
    );
    let (ok, report) = audit_verify(&env);
    assert!(ok, "{report}");
    client.cancel().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_command_that_deletes_creates_and_chmods_is_undone() {
    let env = TestEnv::new("");
    host_file(&env, "src/main.c", "int main(){}\n", 0o644);
    host_file(&env, "src/deep/x.bin", "\u{0}\u{1}binary\u{ff}", 0o640);
    host_file(&env, "build.sh", "#!/bin/sh\necho hi\n", 0o644);
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    let before = tree(&env.project);
    let result = call(
        &client,
        "run_command",
        json!({"command": "rm -rf src && echo x > new.txt && chmod +x build.sh"}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    assert!(!env.project.join("src").exists());
    let id = last_call_id(&env, "run_command");
    // What the command did, as `airlock changes` lists it.
    let listed = airlock_cli(&env, &["changes", &id]);
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    for needle in [
        "deleted /workspaces/project/src/main.c",
        "created /workspaces/project/new.txt",
        "mode_changed /workspaces/project/build.sh",
    ] {
        assert!(listed.contains(needle), "{needle} not in\n{listed}");
    }
    assert_undone(&env, &id);
    assert_eq!(tree(&env.project), before);
    client.cancel().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_host_edit_refuses_undo_until_forced() {
    let env = TestEnv::new("");
    host_file(&env, "config.txt", "original\n", 0o644);
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    let result = call(
        &client,
        "write_file",
        json!({"path": "config.txt", "content": "by the model\n"}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let id = last_call_id(&env, "write_file");
    // The user edits the file afterwards: undo must not silently throw that away.
    std::fs::write(env.project.join("config.txt"), "the user's own edit\n").unwrap();
    let (code, out, _) = undo(&env, &[&id]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("/workspaces/project/config.txt"), "{out}");
    assert_eq!(
        std::fs::read_to_string(env.project.join("config.txt")).unwrap(),
        "the user's own edit\n"
    );
    let (code, out, _) = undo(&env, &["--dry-run", &id]);
    assert_ne!(code, 0);
    assert!(
        out.contains("conflict: /workspaces/project/config.txt"),
        "{out}"
    );
    let (code, out, err) = undo(&env, &["--force", &id]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read_to_string(env.project.join("config.txt")).unwrap(),
        "original\n"
    );
    // What --force overwrote was kept: the undo can be undone in turn.
    let redo = last_call_id(&env, "undo");
    let (code, out, err) = undo(&env, &[&redo]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read_to_string(env.project.join("config.txt")).unwrap(),
        "the user's own edit\n"
    );
    client.cancel().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_symlink_is_never_read_into_the_store_or_written_through() {
    let env = TestEnv::new("");
    // A host secret outside every workspace that the sandbox user could read if anything
    // followed a link to it on the host.
    let secret = env.dir.path().join("id_rsa");
    std::fs::write(&secret, "HOST-PRIVATE-KEY-MATERIAL\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    host_file(&env, "key", "harmless\n", 0o644);
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    let write = call(
        &client,
        "write_file",
        json!({"path": "key", "content": "changed\n"}),
    )
    .await;
    assert!(!is_error(&write), "{}", text(&write));
    let write_id = last_call_id(&env, "write_file");
    // The model swaps the file for links to the host secret (by its host path) and to a file
    // of the container.
    let command = format!(
        "rm key && ln -s {} key && ln -s /etc/passwd pw && ln -s ../../../../../../..{} up",
        secret.display(),
        secret.display()
    );
    let planted = call(&client, "run_command", json!({ "command": command })).await;
    assert!(!is_error(&planted), "{}", text(&planted));
    let store = env.data.join("changes");
    let mut blobs = Vec::new();
    for entry in walk_files(&store.join("blobs")) {
        blobs.push(std::fs::read(entry).unwrap());
    }
    assert!(!blobs.is_empty(), "nothing was kept");
    for b in &blobs {
        let s = String::from_utf8_lossy(b);
        assert!(
            !s.contains("HOST-PRIVATE-KEY-MATERIAL") && !s.contains("root:x:0:0"),
            "the store holds a link's target: {s}"
        );
    }
    // Undo of the write meets a symlink where the call left a file: a conflict; forced, the
    // link itself is replaced and the host file is untouched.
    let (code, out, _) = undo(&env, &[&write_id]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("symlink"), "{out}");
    let (code, out, err) = undo(&env, &["--force", &write_id]);
    assert_eq!(code, 0, "{out}{err}");
    let key = env.project.join("key");
    assert!(!std::fs::symlink_metadata(&key)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&key).unwrap(), "harmless\n");
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "HOST-PRIVATE-KEY-MATERIAL\n"
    );
    client.cancel().await.ok();
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sandbox_can_find_the_store_and_its_bound_is_honoured() {
    let env = TestEnv::new("");
    // A store bound of 0 MiB: only what the workspaces hold now is kept.
    let settings = env
        .settings_text("")
        .replace("[approval]", "[undo]\nmax_mb = 0\n\n[approval]");
    std::fs::write(&env.config, settings).unwrap();
    host_file(&env, "doc.txt", "PRE-IMAGE-MARKER-7f3a\n", 0o644);
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    let first = call(
        &client,
        "write_file",
        json!({"path": "doc.txt", "content": "second\n"}),
    )
    .await;
    assert!(!is_error(&first), "{}", text(&first));
    let first_id = last_call_id(&env, "write_file");
    let second = call(
        &client,
        "write_file",
        json!({"path": "doc.txt", "content": "third\n"}),
    )
    .await;
    assert!(!is_error(&second), "{}", text(&second));
    let second_id = last_call_id(&env, "write_file");
    assert_ne!(first_id, second_id);
    // The pre-image lives only in the store now; nothing a sandbox can see holds it, and no
    // mount of the sandbox comes from the store.
    let look = call(
        &client,
        "run_command",
        json!({"command": "grep -rl PRE-IMAGE-MARKER /workspaces /tmp /home /root /etc /var /opt /srv /mnt /run /usr 2>/dev/null; cat /proc/self/mountinfo; echo done"}),
    )
    .await;
    let seen = text(&look);
    assert!(
        seen.contains("done") && !seen.contains("PRE-IMAGE-MARKER"),
        "{seen}"
    );
    let store = env.data.join("changes");
    assert!(!seen.contains(store.to_str().unwrap()), "{seen}");
    // Over the bound, the oldest pre-images went: the first call's is gone ("no longer
    // undoable"), refused cleanly, nothing touched.
    let (code, out, err) = undo(&env, &["--force", &first_id]);
    assert_ne!(code, 0, "{out}");
    assert!(
        format!("{out}{err}").contains("no longer undoable"),
        "{out}{err}"
    );
    assert_eq!(
        std::fs::read_to_string(env.project.join("doc.txt")).unwrap(),
        "third\n"
    );
    client.cancel().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_works_without_a_running_engine_and_a_session_undoes_newest_first() {
    let env = TestEnv::new("");
    host_file(&env, "a.txt", "a0\n", 0o644);
    let mut server = Server::start(&env, &[]);
    let client = server.client().await;
    let before = tree(&env.project);
    for content in ["a1\n", "a2\n", "a3\n"] {
        let r = call(
            &client,
            "write_file",
            json!({"path": "a.txt", "content": content}),
        )
        .await;
        assert!(!is_error(&r), "{}", text(&r));
    }
    let r = call(
        &client,
        "run_command",
        json!({"command": "mkdir -p out && echo built > out/b.txt"}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    let session = audit_search(&env, &["--tool", "write_file"])[0]["session"]
        .as_str()
        .unwrap()
        .to_string();
    client.cancel().await.ok();
    assert!(server.stop().success());
    // No engine runs now: the command line is one for as long as the undo takes.
    let (code, out, err) = undo(&env, &["--session", &session]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("put back").count(), 4, "{out}");
    assert_eq!(tree(&env.project), before);
    let (ok, report) = audit_verify(&env);
    assert!(ok, "{report}");
    assert!(
        env.containers().is_empty(),
        "the undo's sandbox was left behind: {:?}",
        env.containers()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_killed_mid_capture_leaves_a_store_undo_still_reads() {
    let env = TestEnv::new("");
    for i in 0..1500 {
        let path = env.project.join(format!("tree/{}/f{i}.txt", i % 30));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("file {i}\n").repeat(50)).unwrap();
    }
    give_to_sandbox(&env.project);
    // Killed at different points of the first capture of a big workspace.
    for round in 0..5u64 {
        let server = Server::start(&env, &[]);
        let client = server.client().await;
        let pending = call_in_background(
            &client,
            "run_command",
            json!({ "command": format!("echo {round} > round{round}.txt") }),
        );
        tokio::time::sleep(std::time::Duration::from_millis(150 * round)).await;
        unsafe { libc::kill(server.child.id() as i32, libc::SIGKILL) };
        // The call dies with the engine; its client may not hear of it.
        pending.abort();
        drop(client);
        drop(server);
    }
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    host_file(&env, "after.txt", "before the kill rounds\n", 0o644);
    let r = call(
        &client,
        "write_file",
        json!({"path": "after.txt", "content": "changed\n"}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    assert_undone(&env, &last_call_id(&env, "write_file"));
    assert_eq!(
        std::fs::read_to_string(env.project.join("after.txt")).unwrap(),
        "before the kill rounds\n"
    );
    // Every call of the killed rounds lists its changes or says cleanly that none were kept.
    for record in audit_search(&env, &["--tool", "run_command"]) {
        let id = record["call_id"].as_str().unwrap();
        let out = airlock_cli(&env, &["changes", id]);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() || said.contains("no changes are recorded"),
            "{id}: {said}"
        );
        assert!(
            !said.contains("damaged") && !said.contains("panicked"),
            "{said}"
        );
    }
    client.cancel().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_processs_changes_are_its_own_and_undo_with_it() {
    let env = TestEnv::new("");
    host_file(&env, "keep.txt", "kept\n", 0o644);
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    let before = tree(&env.project);
    let started = call(
        &client,
        "start_process",
        json!({"command": "echo made in the background > bg.txt"}),
    )
    .await;
    assert!(!is_error(&started), "{}", text(&started));
    let bg = env.project.join("bg.txt");
    assert!(
        wait_until(std::time::Duration::from_secs(20), || bg.is_file()).await,
        "the process never wrote"
    );
    // The session's next call finds what the process did, and gives it to the process's call.
    let w = call(
        &client,
        "write_file",
        json!({"path": "other.txt", "content": "x\n"}),
    )
    .await;
    assert!(!is_error(&w), "{}", text(&w));
    let process = last_call_id(&env, "start_process");
    let listed = airlock_cli(&env, &["changes", &process]);
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.contains("created /workspaces/project/bg.txt"),
        "{listed}"
    );
    assert!(!listed.contains("other.txt"), "{listed}");
    assert_undone(&env, &process);
    assert_undone(&env, &last_call_id(&env, "write_file"));
    assert_eq!(tree(&env.project), before);
    client.cancel().await.ok();
}
