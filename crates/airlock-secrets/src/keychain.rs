//! Keychain backends: which OS credential store is used and how it is opened and probed.
//! macOS → Keychain; Linux → Secret Service over D-Bus when it answers, else the kernel keyring.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
#[cfg(target_os = "linux")]
use std::time::Duration;

use keyring_core::CredentialStore;

use crate::error::{Error, Result};

/// Environment variable that overrides the backend choice: `mock`, `keyutils`, `secret-service`
/// (or `platform`, the default). Read only by [`Backend::from_env`], which the engine calls once
/// at start-up.
pub const KEYRING_ENV: &str = "AIRLOCK_KEYRING";

/// How long start-up waits for the Secret Service to answer before falling back to keyutils.
#[cfg(target_os = "linux")]
const SECRET_SERVICE_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Which credential store holds Airlock's secrets.
///
/// # Blocking and async runtimes
///
/// Every keychain call may block (a D-Bus round trip, or a keychain unlock prompt). The engine
/// calls [`SecretStore`](crate::SecretStore) methods from `tokio::task::spawn_blocking`.
///
/// The Secret Service store is built on zbus with its tokio backend, whose blocking API runs each
/// call on zbus's own private tokio runtime (`Runtime::block_on`). Called on a thread that is
/// inside another runtime's async context, that would panic ("Cannot start a runtime from within
/// a runtime"). So every Secret Service call — connecting included — is made on a short-lived
/// helper thread that has no runtime context at all: it works the same from a plain
/// thread, from `spawn_blocking`, and even (though it then blocks a worker) from inside an async
/// task. Nothing in this crate creates a runtime of its own.
///
/// # Kernel keyring (keyutils): which keyring, and how long entries live
///
/// Entries go to the **user keyring** (`@u`), not the session keyring (`@s`) that the
/// `linux-keyutils-keyring-store` crate hard-codes. A session keyring belongs to one login session
/// (or one systemd service, or whatever process last called `keyctl join`), so `airlock secrets
/// set` in a terminal and a later `airlock serve` started elsewhere would not see each other's
/// entries. The user keyring is shared by every process of the same UID (in the same user
/// namespace), and since Linux 5.3 it is anchored in the user namespace, so it outlives the
/// processes that wrote to it. Two details make every process of the user able to use the
/// keys: before each call `@u` is linked into the caller's session keyring (as `pam_keyinit`
/// does at login), which makes the caller a *possessor* of the keys; and each key also gets
/// "user" view/read/write/search/setattr permission, for a process whose session keyring
/// refuses the link (a systemd service with `KeyringMode=private`, a locked-down `keyctl
/// session`). Both are covered by tests that read and write from child processes in session
/// keyrings of their own.
///
/// Limits of keyutils, by design of the kernel: entries live in kernel memory and are **gone after
/// a reboot** (tokens and the audit key are then created anew; named secrets must be set again);
/// a value is at most 32 767 bytes; and a non-root user has a small total quota
/// (`/proc/sys/kernel/keys/maxbytes`, 20 000 bytes by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The platform's own choice: the macOS Keychain; on Linux the Secret Service when a D-Bus
    /// session bus is set (`DBUS_SESSION_BUS_ADDRESS`) and the service answers, else the kernel
    /// keyring. After opening, a store reports the backend actually chosen (on Linux never
    /// `Platform`).
    Platform,
    /// The Linux kernel keyring (keyutils), user keyring `@u`. Works without D-Bus.
    Keyutils,
    /// The freedesktop Secret Service (GNOME Keyring, KeePassXC, KWallet) over D-Bus.
    SecretService,
    /// keyring-core's in-memory mock store: nothing persists. For tests.
    Mock,
}

impl Backend {
    /// The backend named by `AIRLOCK_KEYRING`, or [`Backend::Platform`] when it is unset or empty.
    pub fn from_env() -> Result<Self> {
        match std::env::var(KEYRING_ENV) {
            Ok(value) if !value.trim().is_empty() => value.parse(),
            _ => Ok(Backend::Platform),
        }
    }

    /// What the user can do when this backend cannot be reached.
    pub fn hint(self) -> &'static str {
        match self {
            Backend::SecretService => {
                "Start a Secret Service provider in your desktop session (gnome-keyring-daemon, \
                 KeePassXC or KWallet) and unlock it, or set AIRLOCK_KEYRING=keyutils to keep \
                 secrets in the Linux kernel keyring instead"
            }
            Backend::Keyutils => {
                "The kernel keyring (keyctl system calls) is blocked or missing, as inside \
                 containers with a default seccomp profile: run Airlock on the host, or set \
                 AIRLOCK_KEYRING=secret-service with a running Secret Service"
            }
            Backend::Platform if cfg!(target_os = "macos") => {
                "Unlock your login keychain (Keychain Access) and allow Airlock to use it"
            }
            Backend::Platform => {
                "Set AIRLOCK_KEYRING=keyutils or AIRLOCK_KEYRING=secret-service to choose a keychain"
            }
            Backend::Mock => "The in-memory mock keychain should always be reachable",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Platform if cfg!(target_os = "macos") => "macOS Keychain",
            Backend::Platform => "platform keychain",
            Backend::Keyutils => "Linux kernel keyring (keyutils)",
            Backend::SecretService => "Secret Service (D-Bus)",
            Backend::Mock => "mock keychain",
        })
    }
}

impl FromStr for Backend {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "platform" | "auto" | "default" => Ok(Backend::Platform),
            "keyutils" | "kernel" => Ok(Backend::Keyutils),
            "secret-service" | "secret_service" | "secretservice" => Ok(Backend::SecretService),
            "mock" => Ok(Backend::Mock),
            _ => Err(Error::UnknownBackend(s.to_string())),
        }
    }
}

/// A credential store, opened, with the backend it really is.
pub(crate) struct Opened {
    pub(crate) store: Arc<CredentialStore>,
    pub(crate) backend: Backend,
}

/// Opens (and for real keychains, probes) the store for `backend`.
pub(crate) fn open(backend: Backend) -> Result<Opened> {
    match backend {
        Backend::Mock => {
            let store = keyring_core::mock::Store::new().map_err(|e| unavailable(backend, &e))?;
            Ok(Opened {
                store,
                backend: Backend::Mock,
            })
        }
        Backend::Keyutils => open_keyutils(),
        Backend::SecretService => open_secret_service(),
        Backend::Platform => open_platform(),
    }
}

/// Runs `f` on a fresh thread with no async-runtime context and waits for it (see [`Backend`] on blocking and runtimes).
pub(crate) fn isolate<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

pub(crate) fn unavailable(backend: Backend, err: &dyn fmt::Display) -> Error {
    Error::Unavailable {
        backend,
        detail: err.to_string(),
        hint: backend.hint(),
    }
}

#[cfg(target_os = "macos")]
fn open_platform() -> Result<Opened> {
    let store = apple_native_keyring_store::keychain::Store::new()
        .map_err(|e| unavailable(Backend::Platform, &e))?;
    Ok(Opened {
        store,
        backend: Backend::Platform,
    })
}

#[cfg(target_os = "linux")]
fn open_platform() -> Result<Opened> {
    let bus = std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap_or_default();
    if bus.trim().is_empty() {
        tracing::info!(
            "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset): using the kernel keyring"
        );
        return open_keyutils();
    }
    match open_secret_service() {
        Ok(opened) => Ok(opened),
        Err(err) => {
            tracing::info!(error = %err, "Secret Service not answering: using the kernel keyring");
            open_keyutils()
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn open_platform() -> Result<Opened> {
    Err(Error::Unsupported(Backend::Platform))
}

#[cfg(target_os = "linux")]
fn open_keyutils() -> Result<Opened> {
    let store =
        keyutils::UserKeyringStore::open().map_err(|e| unavailable(Backend::Keyutils, &e))?;
    Ok(Opened {
        store,
        backend: Backend::Keyutils,
    })
}

#[cfg(not(target_os = "linux"))]
fn open_keyutils() -> Result<Opened> {
    Err(Error::Unsupported(Backend::Keyutils))
}

/// Connects to the Secret Service on a helper thread, giving up after a timeout (a D-Bus
/// activation that never completes must not hang start-up; the helper thread is then left to
/// finish on its own).
#[cfg(target_os = "linux")]
fn open_secret_service() -> Result<Opened> {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("airlock-secret-service-probe".into())
        .spawn(move || {
            let result = zbus_secret_service_keyring_store::Store::new();
            let _ = tx.send(result);
        });
    if let Err(err) = spawned {
        return Err(unavailable(Backend::SecretService, &err));
    }
    match rx.recv_timeout(SECRET_SERVICE_PROBE_TIMEOUT) {
        Ok(Ok(store)) => Ok(Opened {
            store,
            backend: Backend::SecretService,
        }),
        Ok(Err(err)) => Err(unavailable(Backend::SecretService, &err)),
        Err(_) => Err(unavailable(
            Backend::SecretService,
            &format!(
                "no answer within {} s",
                SECRET_SERVICE_PROBE_TIMEOUT.as_secs()
            ),
        )),
    }
}

#[cfg(not(target_os = "linux"))]
fn open_secret_service() -> Result<Opened> {
    Err(Error::Unsupported(Backend::SecretService))
}

#[cfg(target_os = "linux")]
mod keyutils {
    //! A keyring-core store over the kernel's user keyring `@u` (see `Backend`'s docs).
    //! Same description format as linux-keyutils-keyring-store, but `@u` instead of `@s`.

    use std::collections::HashMap;
    use std::sync::Arc;

    use keyring_core::api::{CredentialApi, CredentialPersistence, CredentialStoreApi};
    use keyring_core::{Credential, Entry, Error as KrError, Result as KrResult};
    use linux_keyutils::{KeyError, KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};

    /// Builds credentials that live in the calling user's user keyring.
    #[derive(Debug)]
    pub(crate) struct UserKeyringStore;

    impl UserKeyringStore {
        /// Checks that the user keyring can be reached (creating it if needed).
        pub(crate) fn open() -> KrResult<Arc<Self>> {
            user_keyring()?;
            Ok(Arc::new(UserKeyringStore))
        }
    }

    impl CredentialStoreApi for UserKeyringStore {
        fn vendor(&self) -> String {
            "Airlock: Linux kernel user keyring (@u)".to_string()
        }

        fn id(&self) -> String {
            "airlock-user-keyring".to_string()
        }

        fn build(
            &self,
            service: &str,
            user: &str,
            modifiers: Option<&HashMap<&str, &str>>,
        ) -> KrResult<Entry> {
            if modifiers.is_some_and(|m| !m.is_empty()) {
                return Err(KrError::NotSupportedByStore(
                    "entry modifiers are not supported".to_string(),
                ));
            }
            // Same description format as linux-keyutils-keyring-store, so `keyctl show @u`
            // reads the same for both.
            Ok(Entry::new_with_credential(Arc::new(UserKeyringCred {
                description: format!("keyring:{user}@{service}"),
                specifiers: (service.to_string(), user.to_string()),
            })))
        }

        fn as_any(&self) -> &dyn std::any::Any {
            self
        }

        fn persistence(&self) -> CredentialPersistence {
            CredentialPersistence::UntilReboot
        }
    }

    /// One `user`-type key in `@u`.
    #[derive(Debug)]
    struct UserKeyringCred {
        description: String,
        specifiers: (String, String),
    }

    impl CredentialApi for UserKeyringCred {
        fn set_secret(&self, secret: &[u8]) -> KrResult<()> {
            if secret.is_empty() {
                return Err(KrError::Invalid(
                    "secret".to_string(),
                    "cannot be empty".to_string(),
                ));
            }
            let ring = user_keyring()?;
            // add_key replaces the payload of an existing key with the same description.
            let key = ring.add_key(&self.description, secret).map_err(map_err)?;
            // Let every process of this user read and update the key even when it does not
            // possess `@u` (see `user_keyring`). Best effort: a process that possesses neither
            // the key nor SETATTR on it cannot change its permissions, but the value is stored.
            let perms = KeyPermissionsBuilder::builder()
                .posessor(Permission::ALL)
                .user(
                    Permission::VIEW
                        | Permission::READ
                        | Permission::WRITE
                        | Permission::SEARCH
                        | Permission::SETATTR,
                )
                .build();
            if let Err(err) = key.set_perms(perms) {
                tracing::debug!(?err, "could not widen the permissions of a keyutils key");
            }
            Ok(())
        }

        fn get_secret(&self) -> KrResult<Vec<u8>> {
            let key = user_keyring()?.search(&self.description).map_err(map_err)?;
            key.read_to_vec().map_err(map_err)
        }

        fn delete_credential(&self) -> KrResult<()> {
            let ring = user_keyring()?;
            let key = ring.search(&self.description).map_err(map_err)?;
            // Invalidate while the key is still linked (and so possessed): it is then invisible
            // to every search at once, and the kernel frees it. The unlink only tidies up before
            // the asynchronous garbage collection does.
            match key.invalidate() {
                Ok(()) | Err(KeyError::KeyDoesNotExist) | Err(KeyError::KeyRevoked) => {}
                Err(err) => return Err(map_err(err)),
            }
            let _ = ring.unlink_key(key);
            Ok(())
        }

        fn get_credential(&self) -> KrResult<Option<Arc<Credential>>> {
            user_keyring()?.search(&self.description).map_err(map_err)?;
            Ok(None)
        }

        fn get_specifiers(&self) -> Option<(String, String)> {
            Some(self.specifiers.clone())
        }

        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    /// The user keyring `@u`, linked into this process's session keyring first (as
    /// `pam_keyinit` does at login) so that this process *possesses* the keys in it: keys are
    /// read by serial number, and the kernel grants possessor permissions only to keys reachable
    /// from the caller's thread, process or session keyring. Linking is best effort (a session
    /// keyring may refuse it); the "user" permissions set on every key cover that case for keys
    /// written by a process that could link.
    fn user_keyring() -> KrResult<KeyRing> {
        let ring = KeyRing::from_special_id(KeyRingIdentifier::User, true).map_err(|err| {
            match err {
                // Missing syscall (ENOSYS), seccomp (EPERM/EACCES): the keyring is out of reach.
                KeyError::Unknown(_) | KeyError::PermissionDenied | KeyError::AccessDenied => {
                    KrError::NoStorageAccess(format!("keyctl failed: {err:?}").into())
                }
                other => map_err(other),
            }
        })?;
        match KeyRing::from_special_id(KeyRingIdentifier::Session, false) {
            Ok(session) => {
                if let Err(err) = session.link_keyring(ring) {
                    tracing::debug!(
                        ?err,
                        "could not link the user keyring into the session keyring"
                    );
                }
            }
            Err(err) => tracing::debug!(?err, "no session keyring"),
        }
        Ok(ring)
    }

    fn map_err(err: KeyError) -> KrError {
        match err {
            // The kernel reports a missing or dying key in several ways.
            KeyError::KeyDoesNotExist | KeyError::KeyRevoked | KeyError::KeyExpired => {
                KrError::NoEntry
            }
            KeyError::AccessDenied | KeyError::PermissionDenied => {
                KrError::NoStorageAccess(format!("keyctl: {err:?}").into())
            }
            KeyError::QuotaExceeded => KrError::PlatformFailure(
                "the kernel key quota for this user is exhausted (see \
                 /proc/sys/kernel/keys/maxbytes and maxkeys)"
                    .into(),
            ),
            KeyError::InvalidArguments => KrError::Invalid(
                "value".to_string(),
                "rejected by the kernel (a keyutils value is at most 32767 bytes)".to_string(),
            ),
            other => KrError::PlatformFailure(format!("keyctl: {other:?}").into()),
        }
    }
}
