//! Finding and connecting to a Docker engine: the `docker_host` setting, `DOCKER_HOST`,
//! the active Docker context (Colima, OrbStack, Podman live there), then the default socket, then
//! the home sockets of Docker Desktop, Colima, OrbStack, Rancher Desktop and Podman.

use bollard::Docker;
use std::path::{Path, PathBuf};

/// Seconds any single Engine API request may take (image pulls and attached streams included).
const REQUEST_TIMEOUT_SECS: u64 = 3600;

/// Where the engine was looked for, and why that place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineAddress {
    pub host: String,
    pub source: AddressSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressSource {
    Settings,
    DockerHostEnv,
    Context,
    Default,
}

impl std::fmt::Display for AddressSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AddressSource::Settings => "runtime.docker_host",
            AddressSource::DockerHostEnv => "DOCKER_HOST",
            AddressSource::Context => "the active Docker context",
            AddressSource::Default => "the default socket",
        })
    }
}

/// Decides which engine address to use, in the documented order.
pub fn engine_address(setting: &str) -> EngineAddress {
    let setting = setting.trim();
    if !setting.is_empty() {
        return EngineAddress {
            host: setting.to_string(),
            source: AddressSource::Settings,
        };
    }
    if let Some(host) = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()) {
        return EngineAddress {
            host,
            source: AddressSource::DockerHostEnv,
        };
    }
    if let Some(host) = docker_config_dir().and_then(|dir| context_host(&dir)) {
        return EngineAddress {
            host,
            source: AddressSource::Context,
        };
    }
    EngineAddress {
        host: default_socket(),
        source: AddressSource::Default,
    }
}

/// Connects (without contacting the engine yet) and negotiates the API version.
pub async fn connect(address: &EngineAddress) -> Result<Docker, bollard::errors::Error> {
    let host = address.host.as_str();
    let docker = if host.starts_with("unix://") || host.starts_with('/') {
        let path = host.trim_start_matches("unix://");
        Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)?
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)?
    } else {
        Docker::connect_with_host(host)?
    };
    docker.negotiate_version().await
}

fn docker_config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    directories::BaseDirs::new().map(|b| b.home_dir().join(".docker"))
}

/// The endpoint of the context named in `config.json`'s `currentContext` (or `DOCKER_CONTEXT`).
fn context_host(config_dir: &Path) -> Option<String> {
    let name = match std::env::var("DOCKER_CONTEXT")
        .ok()
        .filter(|c| !c.is_empty())
    {
        Some(name) => name,
        None => {
            let config: serde_json::Value =
                serde_json::from_slice(&std::fs::read(config_dir.join("config.json")).ok()?)
                    .ok()?;
            config.get("currentContext")?.as_str()?.to_string()
        }
    };
    if name.is_empty() || name == "default" {
        return None;
    }
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let meta_path = config_dir
        .join("contexts/meta")
        .join(digest)
        .join("meta.json");
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(meta_path).ok()?).ok()?;
    let host = meta.pointer("/Endpoints/docker/Host")?.as_str()?;
    Some(host.to_string())
}

fn default_socket() -> String {
    let standard = Path::new("/var/run/docker.sock");
    if standard.exists() {
        return format!("unix://{}", standard.display());
    }
    let home = directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf());
    let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    let found = well_known_socket(home.as_deref(), runtime_dir.as_deref())
        .unwrap_or_else(|| standard.to_path_buf());
    format!("unix://{}", found.display())
}

/// When the standard socket is absent: the sockets Docker Desktop (without its privileged
/// helper), Colima, OrbStack, Rancher Desktop and Podman keep in the user's home or runtime
/// dir, in that order; the first that exists.
fn well_known_socket(home: Option<&Path>, runtime_dir: Option<&Path>) -> Option<PathBuf> {
    let in_home = [
        ".docker/run/docker.sock",
        ".colima/default/docker.sock",
        ".orbstack/run/docker.sock",
        ".rd/docker.sock",
    ];
    let home_sockets = home
        .into_iter()
        .flat_map(|h| in_home.iter().map(move |c| h.join(c)));
    let podman = runtime_dir
        .map(|r| r.join("podman/podman.sock"))
        .into_iter()
        .chain([PathBuf::from("/run/podman/podman.sock")]);
    home_sockets.chain(podman).find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_sockets_are_found_in_order_in_a_fake_home() {
        let home = tempfile::tempdir().unwrap();
        let runtime = tempfile::tempdir().unwrap();
        let put = |dir: &Path, rel: &str| {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, b"").unwrap();
            p
        };
        let found = || well_known_socket(Some(home.path()), Some(runtime.path()));
        if !Path::new("/run/podman/podman.sock").exists() {
            assert_eq!(found(), None);
        }
        let podman = put(runtime.path(), "podman/podman.sock");
        assert_eq!(found(), Some(podman));
        let rancher = put(home.path(), ".rd/docker.sock");
        assert_eq!(found(), Some(rancher));
        let colima = put(home.path(), ".colima/default/docker.sock");
        assert_eq!(found(), Some(colima));
        let desktop = put(home.path(), ".docker/run/docker.sock");
        assert_eq!(
            found(),
            Some(desktop),
            "Docker Desktop's own socket comes first"
        );
    }

    #[test]
    fn setting_wins() {
        let a = engine_address("unix:///tmp/x.sock");
        assert_eq!(a.host, "unix:///tmp/x.sock");
        assert_eq!(a.source, AddressSource::Settings);
    }

    #[test]
    fn context_endpoint_is_read_from_meta() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"currentContext":"colima"}"#,
        )
        .unwrap();
        use sha2::Digest;
        let digest: String = sha2::Sha256::digest(b"colima")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let meta = dir.path().join("contexts/meta").join(digest);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"colima","Endpoints":{"docker":{"Host":"unix:///Users/me/.colima/default/docker.sock"}}}"#,
        )
        .unwrap();
        assert_eq!(
            context_host(dir.path()).as_deref(),
            Some("unix:///Users/me/.colima/default/docker.sock")
        );
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"currentContext":"default"}"#,
        )
        .unwrap();
        assert_eq!(context_host(dir.path()), None);
    }
}
