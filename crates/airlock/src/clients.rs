//! MCP client configuration: ready-to-paste snippets for Claude Desktop, Claude Code, Cursor
//! and VS Code, and installing one into the client's own config file (merged, with a backup).

use crate::engine::Engine;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The clients Airlock knows how to configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientKind {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    Vscode,
}

impl ClientKind {
    pub const ALL: [ClientKind; 4] = [
        ClientKind::ClaudeDesktop,
        ClientKind::ClaudeCode,
        ClientKind::Cursor,
        ClientKind::Vscode,
    ];

    /// The name its token is issued under (and the audit log shows).
    pub fn id(self) -> &'static str {
        match self {
            ClientKind::ClaudeDesktop => "claude-desktop",
            ClientKind::ClaudeCode => "claude-code",
            ClientKind::Cursor => "cursor",
            ClientKind::Vscode => "vscode",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ClientKind::ClaudeDesktop => "Claude Desktop",
            ClientKind::ClaudeCode => "Claude Code",
            ClientKind::Cursor => "Cursor",
            ClientKind::Vscode => "VS Code",
        }
    }

    /// The client's config file on this platform.
    pub fn config_file(self) -> Option<PathBuf> {
        let home = directories::BaseDirs::new()?;
        let app_config = home.config_dir().to_path_buf(); // ~/Library/Application Support on macOS
        Some(match self {
            ClientKind::ClaudeDesktop => app_config.join("Claude/claude_desktop_config.json"),
            ClientKind::ClaudeCode => home.home_dir().join(".claude.json"),
            ClientKind::Cursor => home.home_dir().join(".cursor/mcp.json"),
            ClientKind::Vscode => app_config.join("Code/User/mcp.json"),
        })
    }
}

impl std::str::FromStr for ClientKind {
    type Err = String;
    fn from_str(s: &str) -> Result<ClientKind, String> {
        ClientKind::ALL
            .into_iter()
            .find(|c| c.id() == s)
            .ok_or_else(|| {
                format!("unknown client {s:?}: use claude-desktop, claude-code, cursor or vscode")
            })
    }
}

/// Where a server entry goes in a client's config, and the entry itself.
pub struct Snippet {
    /// Top-level key holding the servers (`mcpServers`, or `servers` for VS Code).
    pub servers_key: &'static str,
    pub entry: Value,
    /// A shell command that does the same, where the client has one.
    pub command: Option<String>,
}

/// Which token a snippet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// The `default` client's token: what `airlock clients` prints, works as pasted.
    Default,
    /// A token issued to this client (`--install`): the audit log names the client.
    OwnToken,
}

/// The config entry for `client`: stdio through `airlock connect` for Claude Desktop,
/// Streamable HTTP with the bearer token for the others. With [`TokenKind::Default`], Claude
/// Desktop's `connect` presents the default token, which exists as soon as Airlock has run.
pub fn snippet(
    client: ClientKind,
    url: &str,
    token: &str,
    kind: TokenKind,
    airlock_exe: &Path,
) -> Snippet {
    let auth = format!("Bearer {token}");
    match client {
        ClientKind::ClaudeDesktop => Snippet {
            servers_key: "mcpServers",
            entry: match kind {
                TokenKind::Default => {
                    json!({ "command": airlock_exe.display().to_string(), "args": ["connect"] })
                }
                TokenKind::OwnToken => json!({
                    "command": airlock_exe.display().to_string(),
                    "args": ["connect", "--client", client.id()]
                }),
            },
            command: None,
        },
        ClientKind::ClaudeCode => Snippet {
            servers_key: "mcpServers",
            entry: json!({ "type": "http", "url": url, "headers": { "Authorization": auth } }),
            command: Some(format!(
                "claude mcp add --scope user --transport http airlock {url} --header \"Authorization: {auth}\""
            )),
        },
        ClientKind::Cursor => Snippet {
            servers_key: "mcpServers",
            entry: json!({ "url": url, "headers": { "Authorization": auth } }),
            command: None,
        },
        ClientKind::Vscode => Snippet {
            servers_key: "servers",
            entry: json!({ "type": "http", "url": url, "headers": { "Authorization": auth } }),
            command: None,
        },
    }
}

/// The whole config document a user would paste for `client`.
pub fn document(s: &Snippet) -> Value {
    json!({ s.servers_key: { "airlock": s.entry } })
}

fn airlock_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("airlock"))
}

/// Snippets for every client with the `default` token, for the app's Clients pane.
pub fn snippets_json(url: &str) -> Value {
    let token = crate::secrets::tokens()
        .and_then(|t| Ok(t.ensure_default()?))
        .unwrap_or_else(|_| "<token>".to_string());
    let exe = airlock_exe();
    let list: Vec<Value> = ClientKind::ALL
        .into_iter()
        .map(|c| {
            let s = snippet(c, url, &token, TokenKind::Default, &exe);
            json!({
                "id": c.id(),
                "title": c.title(),
                "config_file": c.config_file().map(|p| p.display().to_string()),
                "config": serde_json::to_string_pretty(&document(&s)).unwrap_or_default(),
                "command": s.command,
            })
        })
        .collect();
    json!({ "url": url, "clients": list })
}

/// Issues `client` its own token and merges its entry into `config_file`, keeping a backup.
pub fn install_into(
    config_file: &Path,
    client: ClientKind,
    url: &str,
    token: &str,
) -> anyhow::Result<()> {
    let s = snippet(client, url, token, TokenKind::OwnToken, &airlock_exe());
    let mut doc = match std::fs::read_to_string(config_file) {
        Ok(text) if !text.trim().is_empty() => {
            serde_json::from_str::<Value>(&text).map_err(|e| {
                anyhow::anyhow!(
                    "{} is not valid JSON ({e}); fix it or move it away, nothing was changed",
                    config_file.display()
                )
            })?
        }
        Ok(_) => json!({}),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(e) => anyhow::bail!("cannot read {}: {e}", config_file.display()),
    };
    if config_file.exists() {
        let backup = config_file.with_extension("json.airlock-backup");
        std::fs::copy(config_file, &backup)?;
    }
    let root = doc.as_object_mut().ok_or_else(|| {
        anyhow::anyhow!(
            "{} is not a JSON object; nothing was changed",
            config_file.display()
        )
    })?;
    let servers = root.entry(s.servers_key).or_insert_with(|| json!({}));
    let servers = servers.as_object_mut().ok_or_else(|| {
        anyhow::anyhow!(
            "`{}` in {} is not an object; nothing was changed",
            s.servers_key,
            config_file.display()
        )
    })?;
    servers.insert("airlock".to_string(), s.entry);
    let text = serde_json::to_string_pretty(&doc)? + "\n";
    crate::paths::write_atomic(config_file, text.as_bytes())?;
    Ok(())
}

/// Installs `client` with a fresh per-client token; returns the file written.
pub async fn install(engine: &Engine, client: ClientKind) -> anyhow::Result<PathBuf> {
    let url = crate::paths::RuntimeInfo::read(&engine.paths.runtime_file())
        .map(|r| r.url)
        .unwrap_or_else(|| format!("http://{}/mcp", engine.settings().listen));
    issue_and_install(&engine.paths, client, &url).await
}

/// Issues `client` a token and writes its config. The running server is told at once (through
/// [`crate::secrets::note_tokens_changed`]), so the new token is accepted on the first call.
pub async fn issue_and_install(
    paths: &crate::paths::Paths,
    client: ClientKind,
    url: &str,
) -> anyhow::Result<PathBuf> {
    let file = client.config_file().ok_or_else(|| {
        anyhow::anyhow!("no home directory to find {}'s config in", client.title())
    })?;
    let url = url.to_string();
    let target = file.clone();
    let paths = paths.clone();
    tokio::task::spawn_blocking(move || {
        let token = crate::secrets::tokens()?.issue(client.id())?;
        crate::secrets::note_tokens_changed(&paths);
        install_into(&target, client, &url, &token)
    })
    .await??;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_merges_keeps_other_servers_and_backs_up() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mcp.json");
        std::fs::write(
            &file,
            r#"{"mcpServers":{"other":{"command":"x"}},"theme":"dark"}"#,
        )
        .unwrap();
        install_into(
            &file,
            ClientKind::Cursor,
            "http://127.0.0.1:7771/mcp",
            "tok",
        )
        .unwrap();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(doc["mcpServers"]["other"]["command"], "x");
        assert_eq!(doc["theme"], "dark");
        assert_eq!(
            doc["mcpServers"]["airlock"]["headers"]["Authorization"],
            "Bearer tok"
        );
        let backup = std::fs::read_to_string(file.with_extension("json.airlock-backup")).unwrap();
        assert!(backup.contains("\"other\"") && !backup.contains("airlock"));
    }

    #[test]
    fn install_refuses_to_clobber_invalid_json() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mcp.json");
        std::fs::write(&file, "{ not json").unwrap();
        let err = install_into(&file, ClientKind::Vscode, "u", "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid JSON"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "{ not json");
    }

    #[test]
    fn vscode_uses_servers_and_desktop_uses_connect() {
        let exe = Path::new("/bin/airlock");
        let s = snippet(ClientKind::Vscode, "u", "t", TokenKind::Default, exe);
        assert_eq!(s.servers_key, "servers");
        let s = snippet(
            ClientKind::ClaudeDesktop,
            "u",
            "t",
            TokenKind::OwnToken,
            exe,
        );
        assert_eq!(
            s.entry["args"],
            json!(["connect", "--client", "claude-desktop"])
        );
        // Printed for pasting: the default token, which needs no install first.
        let s = snippet(ClientKind::ClaudeDesktop, "u", "t", TokenKind::Default, exe);
        assert_eq!(s.entry["args"], json!(["connect"]));
    }
}
