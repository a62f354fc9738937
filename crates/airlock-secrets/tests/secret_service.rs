//! The Secret Service backend against a real gnome-keyring-daemon on a private D-Bus session:
//! the test re-runs itself under `dbus-run-session` and does the real work in that inner run.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use airlock_secrets::{Backend, SecretStore, TokenRegistry};

const TEST_NAME: &str = "secret_service_real_daemon";
const INNER: &str = "AIRLOCK_SECRETS_TEST_SECRET_SERVICE_INNER";
const PACKAGES: &str = "apt-get install -y dbus-daemon gnome-keyring dbus-x11 libsecret-tools";
const TIMEOUT: Duration = Duration::from_secs(180);

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
}

#[test]
fn secret_service_real_daemon() {
    if std::env::var_os(INNER).is_some() {
        inner();
        return;
    }
    for tool in ["dbus-run-session", "gnome-keyring-daemon", "secret-tool"] {
        assert!(
            on_path(tool),
            "`{tool}` is not installed, and this test needs a real Secret Service. \
             Install the packages with: {PACKAGES}"
        );
    }
    // A private HOME and runtime dir: the daemon creates a fresh "login" keyring there,
    // unlocked with a known password, and never touches the machine's real keyrings.
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let runtime = tmp.path().join("run");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&runtime).unwrap();
    set_mode_0700(&runtime);

    let script =
        "echo -n test-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null \
                  && exec \"$0\" --exact \"$1\" --nocapture --test-threads=1";
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", script])
        .arg(&exe)
        .arg(TEST_NAME)
        .env(INNER, "1")
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env_remove(airlock_secrets::KEYRING_ENV)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start dbus-run-session: {e}. Install: {PACKAGES}"));
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the Secret Service test did not finish within {TIMEOUT:?}:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "inner Secret Service run failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("INNER-OK"),
        "the inner run did not do the work:\n{stdout}\n{stderr}"
    );
}

fn set_mode_0700(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// set/get/delete and the higher-level calls on `store`, tagged so entries don't collide.
fn exercise(store: &SecretStore, tag: &str) {
    let key = format!("raw-{tag}");
    assert_eq!(store.get(&key).unwrap(), None);
    store.set(&key, "first").unwrap();
    store.set(&key, &format!("value-{tag}-ü")).unwrap();
    assert_eq!(
        store.get(&key).unwrap().as_deref(),
        Some(format!("value-{tag}-ü").as_str())
    );
    assert!(store.delete(&key).unwrap());
    assert!(!store.delete(&key).unwrap());
    assert_eq!(store.get(&key).unwrap(), None);
}

fn inner() {
    assert!(
        std::env::var("DBUS_SESSION_BUS_ADDRESS").is_ok_and(|a| !a.is_empty()),
        "dbus-run-session should have set DBUS_SESSION_BUS_ADDRESS"
    );
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let service = format!("dev.airlock.test.ss.{nanos}");

    // With a session bus and a service that answers, the platform choice is the Secret Service.
    let store = SecretStore::open_with_service(Backend::Platform, &service).unwrap();
    assert_eq!(store.backend(), Backend::SecretService);
    let explicit = SecretStore::open_with_service(Backend::SecretService, &service).unwrap();
    assert_eq!(explicit.backend(), Backend::SecretService);

    // 1. From a plain thread (no async runtime anywhere).
    exercise(&store, "plain");

    // 2. From spawn_blocking on a multi-thread runtime — how the engine calls it.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = store.clone();
    rt.block_on(async move {
        tokio::task::spawn_blocking(move || exercise(&s, "spawn-blocking"))
            .await
            .unwrap();
    });

    // 3. From spawn_blocking on a current-thread runtime.
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = store.clone();
    current.block_on(async move {
        tokio::task::spawn_blocking(move || exercise(&s, "current-thread"))
            .await
            .unwrap();
    });

    // 4. Even straight from async code (wrong, it blocks a worker) there is no
    //    "runtime within a runtime" panic: Secret Service calls run on an isolated thread.
    let s = store.clone();
    rt.block_on(async move { exercise(&s, "async-task") });
    let s = store.clone();
    rt.block_on(async move {
        tokio::spawn(async move { exercise(&s, "spawned-task") })
            .await
            .unwrap();
    });

    // Named secrets, tokens and the audit key, and a second store object (as another
    // process would open) sees them.
    store
        .set_secret("SS_TOKEN", "secret-service-value")
        .unwrap();
    assert_eq!(store.secret_names().unwrap(), ["SS_TOKEN"]);
    let audit = store.audit_key().unwrap();
    let tokens = TokenRegistry::new(store.clone(), None).unwrap();
    let token = tokens.ensure_default().unwrap();
    let again = SecretStore::open_with_service(Backend::SecretService, &service).unwrap();
    assert_eq!(
        again.secret("SS_TOKEN").unwrap().as_deref(),
        Some("secret-service-value")
    );
    assert_eq!(again.audit_key().unwrap(), audit);
    let tokens_again = TokenRegistry::new(again, None).unwrap();
    assert_eq!(tokens_again.client_for(&token).as_deref(), Some("default"));

    // It really is in the Secret Service: libsecret's own client finds the item.
    let lookup = Command::new("secret-tool")
        .args(["lookup", "service", &service, "username", "secret:SS_TOKEN"])
        .output()
        .unwrap();
    assert!(
        lookup.status.success(),
        "secret-tool lookup failed: {}",
        String::from_utf8_lossy(&lookup.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&lookup.stdout).trim_end(),
        "secret-service-value"
    );

    assert!(store.remove_secret("SS_TOKEN").unwrap());
    assert!(tokens.revoke("default").unwrap());
    assert!(store.delete("audit-hmac-key").unwrap());
    assert!(store.secret_names().unwrap().is_empty());
    println!("\nINNER-OK");
}
