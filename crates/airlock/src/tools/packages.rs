//! `install_packages`: apt in the sandbox itself (needs `network = "egress"`), pip / npm / cargo
//! in a short-lived installer container with egress and the same workspace mounts.

use super::{schema_of, terminal, ToolContext, ToolError, ToolOutput, ToolSpec};
use crate::config::Network;
use crate::workspace::container_path;
use airlock_agent::RunSpec;
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
    let project_command = |names: String| {
        match a.manager {
        Manager::Apt => None,
        Manager::Pip => Some(format!(
            "(test -x .venv/bin/python || python3 -m venv .venv) && PIP_CONFIG_FILE=/dev/null python3 -m pip --isolated --disable-pip-version-check --python .venv/bin/python install {names}"
        )),
        Manager::Npm => Some(format!("HOME=/tmp npm install --ignore-scripts --no-fund --no-audit {names}")),
        Manager::Cargo => Some(format!(
            "CARGO_HOME=$PWD/.cargo cargo add {names} && CARGO_HOME=$PWD/.cargo cargo fetch"
        )),
    }
    };
    let Some(command) = project_command(quoted(&a.packages)) else {
        return install_apt(ctx, &a.packages, timeout).await;
    };
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
    let spec = RunSpec {
        command,
        cwd: Some(container_path(first)),
        timeout_ms: timeout.as_millis() as u64,
        output_cap: settings.runtime.output_cap_bytes,
        ..Default::default()
    };
    let result = ctx.sandboxes.run_installer(&ctx.session, spec).await?;
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
        .exec_as_root(&ctx.session, &["sh", "-c", &script], timeout)
        .await?;
    let keep = out.len().saturating_sub(8000);
    let tail = out.get(out.ceil_char_boundary(keep)..).unwrap_or_default();
    Ok(ToolOutput {
        text: format!("apt exit code: {code}\n{tail}"),
        is_error: code != 0,
        exit_code: i32::try_from(code).ok(),
        ..Default::default()
    })
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
    fn quoting_wraps_each_name() {
        assert_eq!(quoted(&["a>=1".into(), "b".into()]), "'a>=1' 'b'");
    }
}
