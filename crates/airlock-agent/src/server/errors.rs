//! Turning OS errors and refusals into [`AgentError`]s whose messages a model can act on.
//! Every message names the path the caller gave, never an internal descriptor path.

use crate::server::sys::Errno;
use airlock_agent::{AgentError, ErrorKind};

pub type AgentResult<T> = Result<T, AgentError>;

pub fn err(kind: ErrorKind, message: impl Into<String>) -> AgentError {
    AgentError {
        kind,
        message: message.into(),
    }
}

pub fn invalid(message: impl Into<String>) -> AgentError {
    err(ErrorKind::Invalid, message)
}

/// The path is outside every workspace root.
pub fn escape(display: &str, roots: &[String]) -> AgentError {
    err(
        ErrorKind::Escape,
        format!(
            "`{display}` is outside the workspaces; paths must stay under {}",
            roots.join(" or ")
        ),
    )
}

pub fn hidden(display: &str) -> AgentError {
    err(
        ErrorKind::Hidden,
        format!("`{display}` is hidden by the workspace settings"),
    )
}

pub fn protected(display: &str) -> AgentError {
    err(
        ErrorKind::ReadOnly,
        format!("`{display}` is protected by the workspace settings and cannot be changed"),
    )
}

pub fn read_only_root(root: &str) -> AgentError {
    err(
        ErrorKind::ReadOnly,
        format!("{root} is read-only; choose a path under a read-write workspace"),
    )
}

/// Maps an errno from an operation on `display` (inside workspace `root`) to an error.
pub fn from_errno(e: Errno, display: &str, root: &str) -> AgentError {
    match e {
        libc::ENOENT => err(ErrorKind::NotFound, format!("`{display}` does not exist")),
        libc::EEXIST => err(
            ErrorKind::AlreadyExists,
            format!("`{display}` already exists"),
        ),
        libc::ENOTEMPTY => err(
            ErrorKind::AlreadyExists,
            format!("`{display}` is a directory that is not empty"),
        ),
        libc::ENOTDIR => err(
            ErrorKind::NotADirectory,
            format!("`{display}`: a component of the path is not a directory"),
        ),
        libc::EISDIR => err(
            ErrorKind::IsADirectory,
            format!("`{display}` is a directory"),
        ),
        libc::EACCES | libc::EPERM => err(
            ErrorKind::PermissionDenied,
            format!("permission denied for `{display}`"),
        ),
        libc::EROFS => read_only_root(root),
        libc::ELOOP => err(
            ErrorKind::Io,
            format!("`{display}`: too many levels of symbolic links"),
        ),
        libc::ENAMETOOLONG => err(
            ErrorKind::Invalid,
            format!("`{display}`: file name too long"),
        ),
        libc::EINVAL => err(
            ErrorKind::Invalid,
            format!("`{display}`: invalid argument for this operation"),
        ),
        libc::ENOSPC | libc::EDQUOT => err(
            ErrorKind::Io,
            format!("`{display}`: no space left on the device"),
        ),
        libc::EXDEV => err(
            ErrorKind::Io,
            format!("`{display}`: cannot move between different filesystems or workspaces"),
        ),
        other => err(
            ErrorKind::Io,
            format!("`{display}`: {}", std::io::Error::from_raw_os_error(other)),
        ),
    }
}
