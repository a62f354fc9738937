//! `airlock doctor`: checks each thing a sandbox needs — settings, the Docker engine, the image,
//! the agent build, the workspaces — and says what to do about each failure.

use airlock::config::Settings;
use airlock::paths::Paths;
use airlock::sandbox::{agent, docker};
use airlock::workspace;
use std::path::PathBuf;
use std::process::ExitCode;

struct Report {
    failures: usize,
}

impl Report {
    fn ok(&self, what: &str, detail: &str) {
        println!("ok    {what}: {detail}");
    }
    /// Works, but may not do what the user expects (see `airlock::advice`).
    fn note(&self, what: &str, detail: &str) {
        println!("note  {what}: {detail}");
    }
    fn warn(&self, what: &str, detail: &str) {
        println!("warn  {what}: {detail}");
    }
    fn fail(&mut self, what: &str, detail: &str, fix: &str) {
        self.failures += 1;
        println!("FAIL  {what}: {detail}\n      fix: {fix}");
    }
}

pub async fn run(config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let mut r = Report { failures: 0 };
    let paths = Paths::resolve(config)?;
    let settings = match Settings::load(&paths.config_file) {
        Ok(s) => {
            r.ok("settings", &paths.config_file.display().to_string());
            s
        }
        Err(e) => {
            r.fail(
                "settings",
                &e.to_string(),
                "correct the file; the engine will not start on it",
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    for note in airlock::advice::settings_notes(&settings) {
        r.note(&note.about, &note.message);
    }
    if !settings.runtime.enabled {
        r.fail(
            "runtime",
            "the Docker Runtime is turned off",
            "turn it on in the tray menu or set `runtime.enabled = true`",
        );
    }
    let address = docker::engine_address(&settings.runtime.docker_host);
    match docker::connect(&address).await {
        Ok(d) => match d.version().await {
            Ok(v) => {
                r.ok(
                    "docker",
                    &format!(
                        "{} (from {}): engine {} API {} {}/{}",
                        address.host,
                        address.source,
                        v.version.unwrap_or_default(),
                        v.api_version.unwrap_or_default(),
                        v.os.unwrap_or_default(),
                        v.arch.clone().unwrap_or_default()
                    ),
                );
                match agent::choose_agent(&v.arch.unwrap_or_default()) {
                    Ok(chosen) => {
                        r.ok("agent", &chosen.path.display().to_string());
                        if let Some(note) = chosen.note() {
                            r.note("agent", &note);
                        }
                    }
                    Err(e) => r.fail("agent", &e.to_string(), "run `make agent`"),
                }
                match d.inspect_image(&settings.runtime.image).await {
                    Ok(_) => r.ok("image", &settings.runtime.image),
                    Err(_) => r.fail(
                        "image",
                        &format!("{} is not present", settings.runtime.image),
                        &format!("`docker pull {}` (Airlock also pulls it on first use), or set `runtime.image`", settings.runtime.image),
                    ),
                }
            }
            Err(e) => r.fail(
                "docker",
                &format!(
                    "{} (from {}) does not answer: {e}",
                    address.host, address.source
                ),
                "start Docker Desktop, Colima, OrbStack or dockerd; or set `runtime.docker_host`",
            ),
        },
        Err(e) => r.fail(
            "docker",
            &format!("{}: {e}", address.host),
            "check `runtime.docker_host` / DOCKER_HOST",
        ),
    }
    if settings.workspaces.is_empty() {
        r.fail(
            "workspaces",
            "none configured",
            "add a folder in Settings or a [[workspaces]] entry",
        );
    }
    for ws in &settings.workspaces {
        if workspace::is_available(ws) {
            r.ok(
                "workspace",
                &format!(
                    "{} → {} ({:?})",
                    ws.path.display(),
                    workspace::container_path(ws),
                    ws.access
                ),
            );
        } else {
            r.fail(
                "workspace",
                &format!("{} is not there", ws.path.display()),
                "plug in the drive or fix the path",
            );
        }
    }
    for warning in
        workspace::home_folder_warnings(&settings.workspaces, workspace::user_home().as_deref())
    {
        r.warn("workspace", &warning.to_string());
    }
    Ok(if r.failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
