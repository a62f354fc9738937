//! Where Airlock keeps things: the settings file, the data dir (audit DB, runtime file),
//! the lock that lets one engine own a data dir, and atomic file replacement.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Resolved locations for one engine instance.
#[derive(Debug, Clone)]
pub struct Paths {
    pub config_file: PathBuf,
    pub data_dir: PathBuf,
}

impl Paths {
    /// `--config`, then `AIRLOCK_CONFIG`, then the platform config dir; `AIRLOCK_DATA_DIR`,
    /// then the platform data dir.
    pub fn resolve(config_flag: Option<PathBuf>) -> anyhow::Result<Paths> {
        let dirs = directories::ProjectDirs::from("dev", "airlock", "Airlock");
        let config_file = match config_flag.or_else(|| env_path("AIRLOCK_CONFIG")) {
            Some(p) => p,
            None => dirs
                .as_ref()
                .map(|d| d.config_dir().join("airlock.toml"))
                .ok_or_else(|| anyhow::anyhow!("no home directory: pass --config PATH"))?,
        };
        let data_dir = match env_path("AIRLOCK_DATA_DIR") {
            Some(p) => p,
            None => dirs
                .as_ref()
                .map(|d| d.data_dir().to_path_buf())
                .ok_or_else(|| anyhow::anyhow!("no home directory: set AIRLOCK_DATA_DIR"))?,
        };
        Ok(Paths {
            config_file: absolute(config_file),
            data_dir: absolute(data_dir),
        })
    }

    pub fn audit_db(&self) -> PathBuf {
        self.data_dir.join("audit.sqlite3")
    }

    /// Where the agent binary is kept for sandboxes to bind read-only (engine-owned).
    pub fn agent_store(&self) -> PathBuf {
        self.data_dir.join("agent")
    }

    /// Where protected entries that commands created are kept (engine-owned).
    pub fn quarantine_dir(&self) -> PathBuf {
        self.data_dir.join("quarantine")
    }

    /// Where pre-images and change sets are kept for undo (engine-owned).
    pub fn changes_dir(&self) -> PathBuf {
        self.data_dir.join("changes")
    }

    pub fn runtime_file(&self) -> PathBuf {
        self.data_dir.join("server.json")
    }

    fn lock_file(&self) -> PathBuf {
        self.data_dir.join("engine.lock")
    }

    /// A stable id for this data dir, used to label (and later clean up) only our own containers.
    pub fn instance_id(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.data_dir.to_string_lossy().as_bytes());
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Takes the exclusive lock on the data dir; fails if another engine holds it.
    pub fn lock_data_dir(&self) -> anyhow::Result<DataDirLock> {
        std::fs::create_dir_all(&self.data_dir).map_err(|e| {
            anyhow::anyhow!("cannot create data dir {}: {e}", self.data_dir.display())
        })?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.lock_file())?;
        if let Err(e) = file.try_lock() {
            let running = RuntimeInfo::read(&self.runtime_file())
                .map(|r| format!(" (pid {}, {})", r.pid, r.url))
                .unwrap_or_default();
            anyhow::bail!(
                "another Airlock engine is already using {}{running}: {e}",
                self.data_dir.display()
            );
        }
        Ok(DataDirLock { _file: file })
    }
}

/// Held for the engine's lifetime; the OS releases the lock when the process dies.
pub struct DataDirLock {
    _file: File,
}

/// What a running server publishes so `connect`, `clients` and the app can find it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RuntimeInfo {
    pub url: String,
    pub pid: u32,
    /// What the user's own tools (`airlock undo`) show the running engine; the file is the
    /// user's alone (mode 0600, in the data dir no sandbox can reach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_token: Option<String>,
}

impl RuntimeInfo {
    pub fn read(path: &Path) -> Option<RuntimeInfo> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_atomic(path, &text)
    }
}

/// Replaces `path` with `bytes` so that readers see the old or the new file, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn absolute(p: PathBuf) -> PathBuf {
    std::path::absolute(&p).unwrap_or(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_same_dir_fails() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            config_file: dir.path().join("c.toml"),
            data_dir: dir.path().join("data"),
        };
        let _held = paths.lock_data_dir().unwrap();
        let err = paths.lock_data_dir().err().unwrap().to_string();
        assert!(err.contains("already using"), "{err}");
    }

    #[test]
    fn instance_id_differs_per_data_dir() {
        let a = Paths {
            config_file: "/c".into(),
            data_dir: "/a".into(),
        };
        let b = Paths {
            config_file: "/c".into(),
            data_dir: "/b".into(),
        };
        assert_ne!(a.instance_id(), b.instance_id());
        assert_eq!(a.instance_id(), a.instance_id());
        assert_eq!(a.instance_id().len(), 12);
    }
}
