//! `install_packages`: apt in the sandbox itself (needs `network = "egress"`), pip / npm / cargo
//! in a short-lived installer container with egress and the same workspace mounts.

use super::{output_schema_of, schema_of, terminal, ToolContext, ToolError, ToolOutput, ToolSpec};
use crate::config::Network;
use crate::workspace::container_path;
use airlock_agent::{RunResult, RunSpec};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Manager {
    /// System packages (Debian/Ubuntu images), installed into the sandbox.
    Apt,
    /// Python packages, installed into `.venv` in the first workspace.
    Pip,
    /// Node packages, installed into the first workspace (`node_modules`).
    Npm,
    /// Rust crates, added to the Cargo project in the first workspace and fetched.
    Cargo,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallArgs {
    /// Which package manager to use.
    pub manager: Manager,
    /// Package names, optionally with a version (`requests==2.32.0`, `lodash@4`, `serde@1`, `curl=7.88.1-10`).
    pub packages: Vec<String>,
}

pub fn specs() -> Vec<ToolSpec> {
    vec![ToolSpec {
        name: "install_packages",
        description: "Install packages with apt (system, into this sandbox), pip (into /workspaces/<first>/.venv), npm (into the first workspace) or cargo (added to the first workspace's Cargo project). Project installs run in a separate short-lived container with network access; the sandbox itself keeps none unless the user allowed it.",
        schema: schema_of::<InstallArgs>,
        output: Some(output_schema_of::<RunResult>),
    }]
}

/// Whether `name` is a valid package spec for `manager` (never an option, never shell syntax).
pub fn valid_name(manager: Manager, name: &str) -> bool {
    let pattern = match manager {
        Manager::Apt => r"^[a-z0-9][a-z0-9+.\-]+(=[A-Za-z0-9.+:~\-]+)?$",
        Manager::Pip => {
            r"^[A-Za-z0-9]([A-Za-z0-9._\-]*[A-Za-z0-9])?(\[[A-Za-z0-9,._\-]+\])?((==|>=|<=|~=|!=|>|<)[A-Za-z0-9.*+!\-]+)?$"
        }
        Manager::Npm => {
            r"^(@[a-z0-9~][a-z0-9\-._~]*/)?[a-z0-9~][a-z0-9\-._~]*(@[A-Za-z0-9.^~<>=*+\-]+)?$"
        }
        Manager::Cargo => r"^[A-Za-z0-9][A-Za-z0-9_\-]*(@[A-Za-z0-9.^~<>=*+\-]+)?$",
    };
    name.len() <= 214 && regex::Regex::new(pattern).is_ok_and(|re| re.is_match(name))
}

/// Single-quotes a validated name for `sh -c` (valid names never contain a quote).
fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Scratch space of the installer container, outside every workspace: the installers' working
/// directory, home, caches and staging areas. Nothing there is read from a workspace.
const SCRATCH: &str = "/var/tmp/airlock-install";

/// The shell script a project installer runs, as a pure function of the settings.
///
/// Nothing the workspace controls is executed or read as configuration (unless
/// `runtime.installers_read_project_config` opts in): the working directory is scratch space
/// outside the workspace; pip is the image's own `python3` in isolated mode (`-I`: no
/// working directory, user site or `PYTHON*` variables on its path) installing into the
/// workspace venv's site-packages with `--target` (console scripts land in its `bin/`), so
/// neither the venv's interpreter nor its `.pth` files run;
/// npm installs in a staging copy of the manifests, so the workspace `.npmrc` is never its
/// project config, with no user config (the global one is the image's) and lifecycle scripts off; cargo runs
/// from scratch space with `--manifest-path` and its home there, so no `.cargo/config*` of
/// the workspace is read. Registries come from `runtime.package_registries` as flags.
pub fn installer_script(
    manager: Manager,
    names: &[String],
    workspace: &str,
    runtime: &crate::config::Runtime,
) -> Option<String> {
    let names = quoted(names);
    let own_config = runtime.installers_read_project_config;
    let registries = registry_flags(manager, &runtime.package_registries).join(" ");
    let prelude = format!(
        "set -e; W='{workspace}'; S='{SCRATCH}'; export HOME=\"$S/home\" PIP_CONFIG_FILE=/dev/null; mkdir -p \"$HOME\"; cd \"$S\"; "
    );
    let body = match manager {
        Manager::Apt => return None,
        Manager::Pip => {
            let config = if own_config {
                "if [ -f \"$W/pip.conf\" ]; then export PIP_CONFIG_FILE=\"$W/pip.conf\"; fi; "
            } else {
                ""
            };
            // The venv's own site-packages (any Python version), found by name only: the
            // venv's interpreter never runs, so neither do its `.pth` files.
            let site =
                "SP=$(ls -d \"$W\"/.venv/lib/python3*/site-packages 2>/dev/null | head -n 1)";
            format!(
                "{config}{site}; if [ -z \"$SP\" ]; then python3 -I -m venv --without-pip \"$W/.venv\"; {site}; fi; \
                 python3 -I -m pip --isolated --no-input --disable-pip-version-check install \
                 --target \"$SP\" --upgrade --no-warn-script-location {registries} {names}"
            )
        }
        Manager::Npm => {
            let config = if own_config { " .npmrc" } else { "" };
            format!(
                "mkdir -p npm; for f in package.json package-lock.json npm-shrinkwrap.json{config}; do \
                 if [ -f \"$W/$f\" ]; then cp \"$W/$f\" npm/; fi; done; \
                 if [ -d \"$W/node_modules\" ]; then cp -a \"$W/node_modules\" npm/; fi; cd npm; \
                 npm install --userconfig=/dev/null --ignore-scripts \
                 --no-fund --no-audit --no-update-notifier {registries} {names}; \
                 for f in package.json package-lock.json npm-shrinkwrap.json; do \
                 if [ -f \"$f\" ]; then cp \"$f\" \"$W/\"; fi; done; \
                 if [ -d node_modules ]; then rm -rf \"$W/node_modules\"; cp -a node_modules \"$W/\"; fi"
            )
        }
        Manager::Cargo => {
            // Cargo reads `.cargo/config.toml` from its working directory upward: from the
            // workspace only when the user opted in.
            let cwd = if own_config { "cd \"$W\"; " } else { "" };
            format!(
                "export CARGO_HOME=\"$S/cargo\"; {cwd}\
                 cargo {registries} add --manifest-path \"$W/Cargo.toml\" {names}; \
                 cargo {registries} fetch --manifest-path \"$W/Cargo.toml\"; \
                 mkdir -p \"$W/.cargo\"; for d in registry git; do \
                 if [ -d \"$CARGO_HOME/$d\" ]; then cp -a \"$CARGO_HOME/$d\" \"$W/.cargo/\"; fi; done"
            )
        }
    };
    Some(prelude + &body)
}

/// The flags that limit `manager` to the allowed registries (validated URLs, single-quoted).
pub fn registry_flags(manager: Manager, r: &crate::config::PackageRegistries) -> Vec<String> {
    match manager {
        Manager::Apt => Vec::new(),
        Manager::Pip => r
            .pip
            .iter()
            .enumerate()
            .map(|(i, url)| {
                let flag = if i == 0 {
                    "--index-url"
                } else {
                    "--extra-index-url"
                };
                format!("{flag} '{url}'")
            })
            .collect(),
        Manager::Npm => r
            .npm
            .iter()
            .map(|entry| match entry.split_once('=') {
                Some((scope, url)) if entry.starts_with('@') => {
                    format!("'--{scope}:registry={url}'")
                }
                _ => format!("'--registry={entry}'"),
            })
            .collect(),
        Manager::Cargo => {
            let named: Vec<(&str, &str)> =
                r.cargo.iter().filter_map(|e| e.split_once('=')).collect();
            let mut flags: Vec<String> = named
                .iter()
                .map(|(name, url)| format!("--config 'registries.{name}.index=\"{url}\"'"))
                .collect();
            if !r.cargo.iter().any(|e| e == "crates-io") {
                if let Some((name, url)) = named.first() {
                    flags.push(format!("--config 'source.{name}.registry=\"{url}\"'"));
                    flags.push(format!(
                        "--config 'source.crates-io.replace-with=\"{name}\"'"
                    ));
                }
            }
            flags
        }
    }
}

/// What an install prompt adds when installers read the workspace's own configuration.
pub fn approval_note(runtime: &crate::config::Runtime) -> Option<&'static str> {
    runtime.installers_read_project_config.then_some(
        "pip, npm and cargo installs read this workspace's own pip.conf, .npmrc and .cargo/config.toml (`runtime.installers_read_project_config` is on)",
    )
}

pub(super) async fn install(ctx: &ToolContext, a: InstallArgs) -> Result<ToolOutput, ToolError> {
    if a.packages.is_empty() {
        return Err(ToolError::InvalidArguments {
            tool: "install_packages".into(),
            message: "`packages` is empty".into(),
        });
    }
    if let Some(bad) = a.packages.iter().find(|p| !valid_name(a.manager, p)) {
        return Err(ToolError::InvalidArguments {
            tool: "install_packages".into(),
            message: format!("{bad:?} is not a valid {:?} package name", a.manager),
        });
    }
    let settings = ctx.sandboxes.settings();
    let timeout = Duration::from_secs(settings.runtime.command_timeout_secs.max(600));
    if a.manager == Manager::Apt {
        return install_apt(ctx, &a.packages, timeout).await;
    }
    if !settings.runtime.installers {
        return Err(ToolError::Refused(format!(
            "project package installs are turned off; the user can allow them with `runtime.installers = true` (Settings → Runtime). {:?} packages were not installed",
            a.manager
        )));
    }
    let first = settings
        .enabled_workspaces()
        .next()
        .ok_or_else(|| ToolError::Refused("no workspace is configured".into()))?;
    if first.access == crate::config::Access::Ro {
        return Err(ToolError::Refused(format!(
            "{} is read-only, so packages cannot be installed into it",
            container_path(first)
        )));
    }
    let Some(command) = installer_script(
        a.manager,
        &a.packages,
        &container_path(first),
        &settings.runtime,
    ) else {
        return Err(ToolError::Refused(
            "apt installs into the sandbox, not into a workspace".into(),
        ));
    };
    let spec = RunSpec {
        command,
        // The agent starts commands inside a workspace only; the script's first step leaves it
        // for scratch space, so nothing there is on a tool's path or read as its config.
        cwd: Some(container_path(first)),
        timeout_ms: timeout.as_millis() as u64,
        output_cap: settings.runtime.output_cap_bytes,
        ..Default::default()
    };
    let result = ctx.sandboxes.run_installer(&ctx.sandbox, spec).await?;
    Ok(terminal::run_output(result))
}

/// System packages: a root exec in the session's own sandbox, which needs egress.
async fn install_apt(
    ctx: &ToolContext,
    packages: &[String],
    timeout: Duration,
) -> Result<ToolOutput, ToolError> {
    if ctx.sandboxes.settings().runtime.network != Network::Egress {
        return Err(ToolError::Refused(
            "apt needs network access inside the sandbox, which is off. The user can allow it with `runtime.network = \"egress\"` (Settings → Runtime → Network); pip, npm and cargo installs work without it".into(),
        ));
    }
    let script = format!(
        "export DEBIAN_FRONTEND=noninteractive; apt-get -o APT::Sandbox::User=root update -qq && apt-get -o APT::Sandbox::User=root install -y -qq --no-install-recommends {}",
        quoted(packages)
    );
    let (code, out) = ctx
        .sandboxes
        .exec_as_root(&ctx.sandbox, &["sh", "-c", &script], timeout)
        .await?;
    let keep = out.len().saturating_sub(8000);
    let tail = out.get(out.ceil_char_boundary(keep)..).unwrap_or_default();
    // The same result as a project install's (one outputSchema): apt's output is its tail.
    Ok(terminal::run_output(RunResult {
        exit_code: Some(i32::try_from(code).unwrap_or(i32::MAX)),
        stdout: tail.to_string(),
        stdout_dropped: (out.len() - tail.len()) as u64,
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated_per_manager() {
        for (m, ok) in [
            (Manager::Apt, "curl"),
            (Manager::Apt, "libssl-dev=3.0.1"),
            (Manager::Pip, "requests==2.32.0"),
            (Manager::Pip, "uvicorn[standard]"),
            (Manager::Npm, "@types/node@20"),
            (Manager::Npm, "lodash"),
            (Manager::Cargo, "serde@1"),
        ] {
            assert!(valid_name(m, ok), "{m:?} {ok}");
        }
        for (m, bad) in [
            (Manager::Apt, "-o=evil"),
            (Manager::Apt, "curl; rm -rf /"),
            (Manager::Pip, "--index-url=http://x"),
            (Manager::Pip, "a b"),
            (Manager::Npm, "$(id)"),
            (Manager::Npm, "x'y"),
            (Manager::Cargo, "../x"),
            (Manager::Cargo, ""),
        ] {
            assert!(!valid_name(m, bad), "{m:?} {bad}");
        }
    }

    #[test]
    fn registries_become_flags() {
        let r = crate::config::PackageRegistries::default();
        assert_eq!(
            registry_flags(Manager::Pip, &r),
            vec!["--index-url 'https://pypi.org/simple'"]
        );
        assert_eq!(
            registry_flags(Manager::Npm, &r),
            vec!["'--registry=https://registry.npmjs.org/'"]
        );
        assert!(registry_flags(Manager::Cargo, &r).is_empty());
        let own = crate::config::PackageRegistries {
            pip: vec!["https://a/simple".into(), "https://b/simple".into()],
            npm: vec!["https://n/".into(), "@acme=https://acme/".into()],
            cargo: vec!["corp=https://corp/index".into()],
        };
        assert_eq!(
            registry_flags(Manager::Pip, &own),
            vec![
                "--index-url 'https://a/simple'",
                "--extra-index-url 'https://b/simple'"
            ]
        );
        assert_eq!(
            registry_flags(Manager::Npm, &own),
            vec![
                "'--registry=https://n/'",
                "'--@acme:registry=https://acme/'"
            ]
        );
        assert_eq!(
            registry_flags(Manager::Cargo, &own),
            vec![
                "--config 'registries.corp.index=\"https://corp/index\"'",
                "--config 'source.corp.registry=\"https://corp/index\"'",
                "--config 'source.crates-io.replace-with=\"corp\"'",
            ]
        );
    }

    #[test]
    fn installers_never_start_in_the_workspace_or_run_its_interpreter() {
        let rt = crate::config::Runtime::default();
        for m in [Manager::Pip, Manager::Npm, Manager::Cargo] {
            let script = installer_script(m, &["x".into()], "/workspaces/p", &rt).unwrap();
            assert!(!script.contains(".venv/bin"), "{script}");
            assert!(!script.contains("cd \"$W\""), "{script}");
        }
        assert!(installer_script(Manager::Apt, &["x".into()], "/workspaces/p", &rt).is_none());
    }

    #[test]
    fn the_prompt_says_when_installers_read_the_workspace_config() {
        let mut rt = crate::config::Runtime::default();
        assert_eq!(approval_note(&rt), None);
        rt.installers_read_project_config = true;
        assert!(approval_note(&rt).is_some_and(|n| n.contains("installers_read_project_config")));
    }

    #[test]
    fn quoting_wraps_each_name() {
        assert_eq!(quoted(&["a>=1".into(), "b".into()]), "'a>=1' 'b'");
    }
}
