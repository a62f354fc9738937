//! A tool call as the policy sees it: the tool and its already-normalised primary argument(s).
//! Built from typed parts or from the MCP `(tool, arguments)` JSON the engine receives.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::command_line::{Analysis, CommandLine};
use crate::error::{CallError, PathError};
use crate::path::{normalize_absolute, normalize_container_path};
use crate::tool::{PrimaryArg, ToolInfo, ToolKind};

/// The primary argument(s) of a call: what rules with a pattern are matched against.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The tool takes no primary argument; only bare `tool` rules match.
    None,
    /// One normalised absolute container path.
    Path(String),
    /// `move_path`: both normalised absolute ends.
    PathPair { source: String, destination: String },
    /// A shell command (`run_command`, `start_process`) or process input (`write_process_input`),
    /// with what changes its meaning: see [`CommandLine`].
    Command(CommandLine),
    /// Package specifications as given (`numpy`, `requests==2.32`, `@types/node`); never empty.
    Packages(Vec<String>),
}

impl Target {
    fn describe(&self) -> &'static str {
        match self {
            Target::None => "no argument",
            Target::Path(_) => "a path",
            Target::PathPair { .. } => "a source and a destination path",
            Target::Command(_) => "a command",
            Target::Packages(_) => "a list of packages",
        }
    }
}

/// A tool call ready to be decided. Invariant: the target is the kind the tool takes, paths are
/// absolute and lexically normalised, package lists are non-empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Call {
    tool: ToolKind,
    target: Target,
}

impl Call {
    /// Build a call from typed parts. Paths must be absolute; they are normalised lexically
    /// (`/workspaces/p/src/../x` becomes `/workspaces/p/x`). Package names are trimmed.
    pub fn new(tool: ToolKind, target: Target) -> Result<Call, CallError> {
        let primary = tool.info().primary;
        let mismatch = || CallError::TargetMismatch {
            tool,
            expected: primary.describe(),
            given: target.describe(),
        };
        let target = match (primary, &target) {
            (PrimaryArg::None, Target::None) => Target::None,
            (PrimaryArg::Path { arg }, Target::Path(p)) => Target::Path(absolute(tool, arg, p)?),
            (
                PrimaryArg::PathPair {
                    source,
                    destination,
                },
                Target::PathPair {
                    source: s,
                    destination: d,
                },
            ) => Target::PathPair {
                source: absolute(tool, source, s)?,
                destination: absolute(tool, destination, d)?,
            },
            (PrimaryArg::Command { .. }, Target::Command(c)) => {
                let mut c = c.clone();
                let cwd = c.cwd().map(|d| absolute(tool, "cwd", d)).transpose()?;
                c.set_cwd(cwd);
                Target::Command(c)
            }
            (PrimaryArg::Packages { arg }, Target::Packages(list)) => {
                Target::Packages(packages(tool, arg, list.iter().map(String::as_str))?)
            }
            _ => return Err(mismatch()),
        };
        Ok(Call { tool, target })
    }

    /// A call of a tool without a primary argument (`list_workspaces`, `kill_process`, …).
    pub fn bare(tool: ToolKind) -> Result<Call, CallError> {
        Call::new(tool, Target::None)
    }

    /// A call of a single-path file tool.
    pub fn path(tool: ToolKind, path: impl Into<String>) -> Result<Call, CallError> {
        Call::new(tool, Target::Path(path.into()))
    }

    /// A `move_path` call.
    pub fn move_path(
        source: impl Into<String>,
        destination: impl Into<String>,
    ) -> Result<Call, CallError> {
        Call::new(
            ToolKind::MovePath,
            Target::PathPair {
                source: source.into(),
                destination: destination.into(),
            },
        )
    }

    /// A `run_command` / `start_process` / `write_process_input` call with nothing but its
    /// text; see [`CommandLine`] for the rest.
    pub fn command(tool: ToolKind, command: impl Into<String>) -> Result<Call, CallError> {
        Call::new(tool, Target::Command(CommandLine::new(command)))
    }

    /// For `write_process_input`: the input goes to a process started with `command` (its
    /// `start_process` command) in `cwd` (absolute, or relative to `/`). Input into a shell is
    /// then parsed and checked like a command — the deny and ask rules of `run_command` and
    /// `start_process` apply to it too —; input into an interpreter (`python3`, `node` …) is
    /// never allowed by a pattern. Other calls are returned unchanged.
    pub fn with_process(self, command: &str, cwd: Option<&str>) -> Result<Call, CallError> {
        let Target::Command(line) = self.target else {
            return Ok(self);
        };
        let mut line = line.with_started_as(command);
        let cwd = cwd.map(|d| absolute(self.tool, "cwd", d)).transpose()?;
        line.set_cwd(cwd.or_else(|| line.cwd().map(str::to_string)));
        Ok(Call {
            tool: self.tool,
            target: Target::Command(line),
        })
    }

    /// An `install_packages` call.
    pub fn install_packages<I, S>(packages: I) -> Result<Call, CallError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Call::new(
            ToolKind::InstallPackages,
            Target::Packages(packages.into_iter().map(Into::into).collect()),
        )
    }

    /// Build a call from an MCP tool name and its JSON arguments, reading the argument names in
    /// the catalogue: file tools `path` (`move_path`: `source`, `destination`), `run_command` and
    /// `start_process` `command` (and `cwd`, default `default_root`; `run_command` also `stdin`),
    /// `write_process_input` `input` (then call [`Call::with_process`]), `install_packages`
    /// `packages` (array of strings). Other arguments are ignored.
    ///
    /// Paths are normalised lexically with [`normalize_container_path`]; relative paths land under
    /// `default_root`. Symlinks are not resolved: the engine may do that afterwards with
    /// [`Call::try_map_paths`].
    pub fn from_arguments(
        tool: &str,
        arguments: &Value,
        default_root: &str,
    ) -> Result<Call, CallError> {
        let kind = ToolKind::from_name(tool).ok_or_else(|| CallError::UnknownTool {
            tool: tool.to_string(),
        })?;
        let primary = kind.info().primary;
        if primary == PrimaryArg::None {
            return Ok(Call {
                tool: kind,
                target: Target::None,
            });
        }
        let object = match arguments {
            Value::Object(map) => Some(map),
            Value::Null => None,
            _ => return Err(CallError::ArgumentsNotObject { tool: kind }),
        };
        let get = |name: &'static str| -> Result<&Value, CallError> {
            match object.and_then(|m| m.get(name)) {
                None | Some(Value::Null) => Err(CallError::MissingArgument {
                    tool: kind,
                    argument: name,
                }),
                Some(v) => Ok(v),
            }
        };
        let string = |name: &'static str| -> Result<&str, CallError> {
            get(name)?.as_str().ok_or(CallError::InvalidArgument {
                tool: kind,
                argument: name,
                expected: "a string",
            })
        };
        let path = |name: &'static str| -> Result<String, CallError> {
            normalize_container_path(string(name)?, default_root).map_err(|error| CallError::Path {
                tool: kind,
                argument: name,
                error,
            })
        };
        let target = match primary {
            PrimaryArg::None => Target::None,
            PrimaryArg::Path { arg } => Target::Path(path(arg)?),
            PrimaryArg::PathPair {
                source,
                destination,
            } => Target::PathPair {
                source: path(source)?,
                destination: path(destination)?,
            },
            PrimaryArg::Command { arg } => {
                let mut line = CommandLine::new(string(arg)?);
                let optional = |name: &'static str| -> Result<Option<&str>, CallError> {
                    match object.and_then(|m| m.get(name)) {
                        None | Some(Value::Null) => Ok(None),
                        Some(_) => string(name).map(Some),
                    }
                };
                if matches!(kind, ToolKind::RunCommand | ToolKind::StartProcess) {
                    line = match optional("cwd")? {
                        Some(_) => line.with_cwd(path("cwd")?),
                        None => line.with_default_cwd(
                            normalize_container_path(".", default_root).map_err(|error| {
                                CallError::Path {
                                    tool: kind,
                                    argument: "cwd",
                                    error,
                                }
                            })?,
                        ),
                    };
                }
                if kind == ToolKind::RunCommand {
                    if let Some(stdin) = optional("stdin")? {
                        line = line.with_stdin(stdin);
                    }
                }
                Target::Command(line)
            }
            PrimaryArg::Packages { arg } => {
                let invalid = CallError::InvalidArgument {
                    tool: kind,
                    argument: arg,
                    expected: "a non-empty array of package names",
                };
                let items = get(arg)?.as_array().ok_or_else(|| invalid.clone())?;
                let names = items
                    .iter()
                    .map(Value::as_str)
                    .collect::<Option<Vec<&str>>>()
                    .ok_or(invalid)?;
                Target::Packages(packages(kind, arg, names)?)
            }
        };
        Ok(Call { tool: kind, target })
    }

    /// Replace every path with `f(path)` (e.g. the engine's symlink resolution), then normalise
    /// the result lexically again; it must be absolute. A terminal call's working directory is
    /// mapped when the caller gave one. Other calls are returned unchanged.
    pub fn try_map_paths<E, F>(self, mut f: F) -> Result<Call, E>
    where
        F: FnMut(&str) -> Result<String, E>,
        E: From<PathError>,
    {
        let target = match self.target {
            Target::Path(p) => Target::Path(normalize_absolute(&f(&p)?)?),
            Target::PathPair {
                source,
                destination,
            } => Target::PathPair {
                source: normalize_absolute(&f(&source)?)?,
                destination: normalize_absolute(&f(&destination)?)?,
            },
            // A defaulted working directory is the default root, already canonical.
            Target::Command(mut line) if line.cwd_given() => {
                let cwd = match line.cwd() {
                    Some(c) => Some(normalize_absolute(&f(c)?)?),
                    None => None,
                };
                line.set_cwd(cwd);
                Target::Command(line)
            }
            other => other,
        };
        Ok(Call {
            tool: self.tool,
            target,
        })
    }

    /// The tool called.
    pub fn tool(&self) -> ToolKind {
        self.tool
    }

    /// The tool's catalogue entry.
    pub fn info(&self) -> &'static ToolInfo {
        self.tool.info()
    }

    /// The primary argument(s).
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// A terminal call's analysis (made once, on first use).
    pub(crate) fn command_analysis(&self) -> Option<&Analysis> {
        match &self.target {
            Target::Command(line) => Some(line.analysis(self.tool)),
            _ => None,
        }
    }
}

/// `read_file /workspaces/p/x`, `move_path /a -> /b`, `install_packages numpy, pandas`.
impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::None => write!(f, "{}", self.tool),
            Target::Path(p) => write!(f, "{} {p}", self.tool),
            Target::PathPair {
                source,
                destination,
            } => write!(f, "{} {source} -> {destination}", self.tool),
            Target::Command(c) => write!(f, "{} {c}", self.tool),
            Target::Packages(list) => write!(f, "{} {}", self.tool, list.join(", ")),
        }
    }
}

fn absolute(tool: ToolKind, argument: &'static str, path: &str) -> Result<String, CallError> {
    normalize_absolute(path).map_err(|error| CallError::Path {
        tool,
        argument,
        error,
    })
}

fn packages<'a>(
    tool: ToolKind,
    argument: &'static str,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>, CallError> {
    let list: Vec<String> = names.into_iter().map(|n| n.trim().to_string()).collect();
    if list.is_empty() || list.iter().any(String::is_empty) {
        return Err(CallError::InvalidArgument {
            tool,
            argument,
            expected: "a non-empty array of package names",
        });
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROOT: &str = "/workspaces/project";

    #[test]
    fn from_arguments_reads_the_right_names() {
        let c = Call::from_arguments(
            "read_file",
            &json!({"path": "src/../a.rs", "offset": 3}),
            ROOT,
        )
        .unwrap();
        assert_eq!(c.target(), &Target::Path("/workspaces/project/a.rs".into()));

        let c = Call::from_arguments(
            "move_path",
            &json!({"source": "a", "destination": "/workspaces/x/b"}),
            ROOT,
        )
        .unwrap();
        assert_eq!(
            c.target(),
            &Target::PathPair {
                source: "/workspaces/project/a".into(),
                destination: "/workspaces/x/b".into()
            }
        );

        let c = Call::from_arguments("run_command", &json!({"command": "ls -la /"}), ROOT).unwrap();
        assert_eq!(
            c.target(),
            &Target::Command(CommandLine::new("ls -la /").with_cwd(ROOT))
        );
        let c = Call::from_arguments(
            "run_command",
            &json!({"command": "sh", "cwd": "sub/..//x", "stdin": "ls"}),
            ROOT,
        )
        .unwrap();
        assert_eq!(
            c.target(),
            &Target::Command(
                CommandLine::new("sh")
                    .with_cwd("/workspaces/project/x")
                    .with_stdin("ls")
            )
        );

        let c = Call::from_arguments(
            "write_process_input",
            &json!({"pid": 3, "input": "y\n"}),
            ROOT,
        )
        .unwrap();
        assert_eq!(c.target(), &Target::Command("y\n".into()));
        let c = c
            .with_process("python3", Some("/workspaces/project/./a"))
            .unwrap();
        assert_eq!(
            c.target(),
            &Target::Command(
                CommandLine::new("y\n")
                    .with_started_as("python3")
                    .with_cwd("/workspaces/project/a")
            )
        );

        let c = Call::from_arguments(
            "install_packages",
            &json!({"packages": ["numpy", " pandas "]}),
            ROOT,
        )
        .unwrap();
        assert_eq!(
            c.target(),
            &Target::Packages(vec!["numpy".into(), "pandas".into()])
        );

        let c = Call::from_arguments("list_processes", &json!({}), ROOT).unwrap();
        assert_eq!(c.target(), &Target::None);
        let c = Call::from_arguments("kill_process", &Value::Null, ROOT).unwrap();
        assert_eq!(c.target(), &Target::None);
    }

    #[test]
    fn from_arguments_errors() {
        let cases: &[(&str, Value, &str)] = &[
            ("nope", json!({}), "unknown tool `nope`"),
            (
                "read_file",
                json!({}),
                "`read_file` needs the argument `path`",
            ),
            (
                "read_file",
                json!({"path": null}),
                "needs the argument `path`",
            ),
            (
                "read_file",
                json!({"path": 3}),
                "`read_file` argument `path` must be a string",
            ),
            ("read_file", json!("x"), "must be a JSON object"),
            ("read_file", json!({"path": "/.."}), "climbs above `/`"),
            (
                "move_path",
                json!({"source": "a"}),
                "needs the argument `destination`",
            ),
            (
                "run_command",
                json!({"cmd": "ls"}),
                "needs the argument `command`",
            ),
            (
                "install_packages",
                json!({"packages": []}),
                "non-empty array",
            ),
            (
                "install_packages",
                json!({"packages": "numpy"}),
                "non-empty array",
            ),
            (
                "install_packages",
                json!({"packages": ["a", 1]}),
                "non-empty array",
            ),
            (
                "install_packages",
                json!({"packages": ["a", " "]}),
                "non-empty array",
            ),
        ];
        for (tool, args, expected) in cases {
            let err = Call::from_arguments(tool, args, ROOT)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(expected),
                "{tool} {args}: got {err:?}, expected {expected:?}"
            );
        }
    }

    #[test]
    fn new_checks_target_kind_and_normalises() {
        assert!(matches!(
            Call::path(ToolKind::RunCommand, "/x"),
            Err(CallError::TargetMismatch { .. })
        ));
        assert!(matches!(
            Call::bare(ToolKind::ReadFile),
            Err(CallError::TargetMismatch { .. })
        ));
        assert!(matches!(
            Call::path(ToolKind::ReadFile, "relative"),
            Err(CallError::Path {
                error: PathError::NotAbsolute { .. },
                ..
            })
        ));
        let c = Call::path(ToolKind::ReadFile, "/workspaces/p/./a/../b").unwrap();
        assert_eq!(c.target(), &Target::Path("/workspaces/p/b".into()));
    }

    #[test]
    fn map_paths_maps_a_given_cwd_only() {
        let fail = |_: &str| Err::<String, PathError>(PathError::Empty);
        let c = Call::from_arguments("run_command", &json!({"command": "ls"}), ROOT).unwrap();
        assert!(c.try_map_paths(fail).is_ok());
        let c = Call::from_arguments("run_command", &json!({"command": "ls", "cwd": "x"}), ROOT)
            .unwrap();
        assert!(c.clone().try_map_paths(fail).is_err());
        let mapped = c
            .try_map_paths(|p| Ok::<_, PathError>(p.replace("/x", "/real")))
            .unwrap();
        let Target::Command(line) = mapped.target() else {
            panic!("not a command")
        };
        assert_eq!(line.cwd(), Some("/workspaces/project/real"));
    }

    #[test]
    fn map_paths_renormalises() {
        let c = Call::move_path("/workspaces/p/link", "/workspaces/p/b").unwrap();
        let mapped = c
            .try_map_paths(|p| Ok::<_, PathError>(p.replace("link", "real/../target")))
            .unwrap();
        assert_eq!(
            mapped.target(),
            &Target::PathPair {
                source: "/workspaces/p/target".into(),
                destination: "/workspaces/p/b".into()
            }
        );
        let c = Call::path(ToolKind::ReadFile, "/a").unwrap();
        let err = c
            .try_map_paths(|_| Ok::<_, PathError>("rel".into()))
            .unwrap_err();
        assert!(matches!(err, PathError::NotAbsolute { .. }));
    }

    #[test]
    fn display() {
        let c = Call::move_path("/a", "/b").unwrap();
        assert_eq!(c.to_string(), "move_path /a -> /b");
        let c = Call::install_packages(["a", "b"]).unwrap();
        assert_eq!(c.to_string(), "install_packages a, b");
    }
}
