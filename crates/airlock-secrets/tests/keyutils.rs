//! The kernel keyring backend for real: entries written by one process are read by another that
//! runs in a different session keyring (the test binary re-runs itself as the child process).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use airlock_secrets::{Backend, SecretStore, TokenRegistry};

const TEST_NAME: &str = "keyutils_entries_persist_across_processes";
const CHILD_MODE: &str = "AIRLOCK_SECRETS_TEST_CHILD";
const CHILD_SERVICE: &str = "AIRLOCK_SECRETS_TEST_SERVICE";
const SECRET_VALUE: &str = "value-written-by-the-parent-ü";
const CHILD_VALUE: &str = "value-written-by-the-child";

const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
const KEYCTL_SETPERM: libc::c_long = 5;
const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
/// Possessor: view, read, search, link, setattr — but not write (so nothing can be linked in).
const SESSION_PERM_NO_WRITE: libc::c_long = 0x3b0b_0000;
const NOLINK_VALUE: &str = "value-updated-without-possession";

/// The serial of this process's session keyring (the user-session keyring when it has none).
fn session_keyring_id() -> i64 {
    // SAFETY: keyctl(KEYCTL_GET_KEYRING_ID, id, create) takes integers only.
    unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_KEYRING_ID,
            KEY_SPEC_SESSION_KEYRING,
            0 as libc::c_long,
        )
    }
}

/// Moves this process into a new, anonymous session keyring — as a process started from another
/// login session, a systemd service or `keyctl session` would be. Returns its serial.
fn join_new_session_keyring() -> i64 {
    // SAFETY: a null name asks the kernel for a new anonymous session keyring.
    let id = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    assert!(
        id > 0,
        "keyctl(JOIN_SESSION_KEYRING) failed: {}",
        std::io::Error::last_os_error()
    );
    id
}

fn open(service: &str) -> SecretStore {
    match SecretStore::open_with_service(Backend::Keyutils, service) {
        Ok(store) => store,
        Err(err) => panic!(
            "the Linux kernel keyring is not usable here, so this test cannot run: {err}\n\
             It needs the keyctl/add_key system calls (not blocked by a seccomp profile)."
        ),
    }
}

/// Re-runs this test binary as a child process doing `mode`; returns its `CHILD:` lines.
fn run_child(mode: &str, service: &str, env: &[(&str, Option<&str>)]) -> Vec<String> {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_MODE, mode)
        .env(CHILD_SERVICE, service);
    for (key, value) in env {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    let output = cmd.output().expect("run the child test process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "child {mode} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("CHILD:").map(str::to_string))
        .collect()
}

fn field<'a>(lines: &'a [String], key: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("child printed no {key}: {lines:?}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn child(mode: &str) {
    let service = std::env::var(CHILD_SERVICE).expect("service for the child");
    let session = join_new_session_keyring();
    // libtest has printed "test NAME ... " without a newline: start a fresh line.
    println!("\nCHILD:SESSION={session}");
    match mode {
        "read" => {
            let store = open(&service);
            let secret = store.secret("CROSS_PROCESS").unwrap().unwrap_or_default();
            println!("CHILD:SECRET={secret}");
            println!("CHILD:NAMES={}", store.secret_names().unwrap().join(","));
            println!("CHILD:AUDIT={}", hex(&store.audit_key().unwrap()));
            let token = std::env::var("AIRLOCK_SECRETS_TEST_TOKEN").unwrap();
            let tokens = TokenRegistry::new(store, None).unwrap();
            println!(
                "CHILD:CLIENT={}",
                tokens.client_for(&token).unwrap_or_default()
            );
        }
        "nolink" => {
            // A session keyring that refuses links: this process cannot possess `@u` and
            // relies on the keys' "user" permissions.
            // SAFETY: keyctl(KEYCTL_SETPERM, id, perm) takes integers only.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_keyctl,
                    KEYCTL_SETPERM,
                    KEY_SPEC_SESSION_KEYRING,
                    SESSION_PERM_NO_WRITE,
                )
            };
            assert_eq!(rc, 0, "setperm: {}", std::io::Error::last_os_error());
            let store = open(&service);
            let secret = store.secret("CROSS_PROCESS").unwrap().unwrap_or_default();
            println!("CHILD:SECRET={secret}");
            store.set_secret("CROSS_PROCESS", NOLINK_VALUE).unwrap();
            println!("CHILD:UPDATED=1");
        }
        "write" => {
            open(&service)
                .set_secret("FROM_CHILD", CHILD_VALUE)
                .unwrap();
            println!("CHILD:WROTE=1");
        }
        "platform" => {
            // As `airlock serve` on a headless box: no D-Bus, no override → keyutils.
            let backend = Backend::from_env().unwrap();
            let store = SecretStore::open_with_service(backend, &service).unwrap();
            println!("CHILD:BACKEND={:?}", store.backend());
            let secret = store.secret("CROSS_PROCESS").unwrap().unwrap_or_default();
            println!("CHILD:SECRET={secret}");
        }
        other => panic!("unknown child mode {other}"),
    }
}

#[test]
fn keyutils_entries_persist_across_processes() {
    if let Ok(mode) = std::env::var(CHILD_MODE) {
        child(&mode);
        return;
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let service = format!("dev.airlock.test.{}.{nanos}", std::process::id());
    let store = open(&service);
    assert_eq!(store.backend(), Backend::Keyutils);

    store.set_secret("CROSS_PROCESS", SECRET_VALUE).unwrap();
    let audit = store.audit_key().unwrap();
    let tokens = TokenRegistry::new(store.clone(), None).unwrap();
    let token = tokens.issue("cli-client").unwrap();
    let parent_session = session_keyring_id();

    // Parent → child, the child in a session keyring of its own.
    let lines = run_child(
        "read",
        &service,
        &[("AIRLOCK_SECRETS_TEST_TOKEN", Some(token.as_str()))],
    );
    assert_ne!(
        field(&lines, "SESSION"),
        parent_session.to_string(),
        "the child must not share the parent's session keyring"
    );
    assert_eq!(field(&lines, "SECRET"), SECRET_VALUE);
    assert_eq!(field(&lines, "NAMES"), "CROSS_PROCESS");
    assert_eq!(field(&lines, "AUDIT"), hex(&audit), "same audit key");
    assert_eq!(field(&lines, "CLIENT"), "cli-client");

    // Child → parent, after the child has exited.
    let lines = run_child("write", &service, &[]);
    assert_eq!(field(&lines, "WROTE"), "1");
    assert_eq!(
        store.secret("FROM_CHILD").unwrap().as_deref(),
        Some(CHILD_VALUE)
    );
    assert_eq!(
        store.secret_names().unwrap(),
        ["CROSS_PROCESS", "FROM_CHILD"]
    );

    // A process that cannot link `@u` into its session keyring still reads and updates.
    let lines = run_child("nolink", &service, &[]);
    assert_eq!(field(&lines, "SECRET"), SECRET_VALUE);
    assert_eq!(field(&lines, "UPDATED"), "1");
    assert_eq!(
        store.secret("CROSS_PROCESS").unwrap().as_deref(),
        Some(NOLINK_VALUE)
    );
    store.set_secret("CROSS_PROCESS", SECRET_VALUE).unwrap();

    // Platform choice without a D-Bus session bus falls back to keyutils and sees the entries.
    let lines = run_child(
        "platform",
        &service,
        &[
            ("DBUS_SESSION_BUS_ADDRESS", None),
            (airlock_secrets::KEYRING_ENV, None),
        ],
    );
    assert_eq!(field(&lines, "BACKEND"), "Keyutils");
    assert_eq!(field(&lines, "SECRET"), SECRET_VALUE);
    // Likewise when a bus address is set but nothing answers there.
    let lines = run_child(
        "platform",
        &service,
        &[
            (
                "DBUS_SESSION_BUS_ADDRESS",
                Some("unix:path=/nonexistent/airlock-test-bus"),
            ),
            (airlock_secrets::KEYRING_ENV, None),
        ],
    );
    assert_eq!(field(&lines, "BACKEND"), "Keyutils");
    assert_eq!(field(&lines, "SECRET"), SECRET_VALUE);
    // And AIRLOCK_KEYRING=mock overrides everything.
    let lines = run_child(
        "platform",
        &service,
        &[(airlock_secrets::KEYRING_ENV, Some("mock"))],
    );
    assert_eq!(field(&lines, "BACKEND"), "Mock");
    assert_eq!(field(&lines, "SECRET"), "");

    // Clean up, and deletion is visible at once.
    assert!(store.remove_secret("CROSS_PROCESS").unwrap());
    assert!(store.remove_secret("FROM_CHILD").unwrap());
    assert!(tokens.revoke("cli-client").unwrap());
    assert!(store.delete("audit-hmac-key").unwrap());
    assert_eq!(store.secret("CROSS_PROCESS").unwrap(), None);
    assert_eq!(store.get("audit-hmac-key").unwrap(), None);
    assert!(store.secret_names().unwrap().is_empty());
}

#[test]
fn keyutils_raw_operations() {
    let service = format!("dev.airlock.test.raw.{}", std::process::id());
    let store = open(&service);
    assert_eq!(store.get("k").unwrap(), None);
    assert!(!store.delete("k").unwrap());
    store.set("k", "one").unwrap();
    store.set("k", "two").unwrap(); // replaces in place
    assert_eq!(store.get("k").unwrap().as_deref(), Some("two"));
    assert!(store.delete("k").unwrap());
    assert_eq!(store.get("k").unwrap(), None);
    // Values beyond the kernel's 32 767-byte limit fail with a message, not a panic.
    let err = store.set("big", &"x".repeat(40_000)).unwrap_err();
    assert!(err.to_string().contains("keyring"), "{err}");
}
