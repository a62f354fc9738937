//! Directory walkers behind `list`, `tree`, `glob` and `grep`: descriptor-based, never
//! following symlinks, silently skipping entries hidden by the root's settings.

use crate::server::errors::{self, AgentResult};
use crate::server::files::{self, MAX_DEPTH};
use crate::server::patterns::UserGlob;
use crate::server::resolve::{join_under, Root, Roots};
use crate::server::sys;
use airlock_agent::{Entry, GrepMatch, Reply};
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

const LIST_CAP: usize = 10_000;
const TREE_DEFAULT: u32 = 1000;
const GLOB_DEFAULT: u32 = 1000;
const GREP_DEFAULT: u32 = 500;
/// Entries any one walk looks at before it stops and reports truncation.
const VISIT_CAP: usize = 1_000_000;
/// Characters of a matching line that `grep` returns: the engine shows 500 of them, after
/// redacting the line with this much context (so a secret at the clip is seen whole).
const LINE_CHARS: usize = 1024;
/// The most items any one listing or search returns, whatever the caller asks for.
const MAX_ITEMS: u32 = 10_000;
/// The most text `grep` returns in one answer (its lines together).
const MAX_TEXT: usize = 1 << 20;

/// One entry met during a walk.
struct Seen<'a> {
    dir: BorrowedFd<'a>,
    name: &'a std::ffi::CStr,
    /// Path relative to the walk's start.
    rel: &'a str,
    st: &'a libc::stat,
}

/// What the visitor wants next.
#[derive(PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

struct Walker<'r> {
    root: &'r Root,
    /// Root-relative components of the walk's start directory.
    base: Vec<String>,
    visited: usize,
    truncated: bool,
}

impl Walker<'_> {
    /// Visits every non-hidden entry below `dir` down to `max_depth` levels (1 = children
    /// only), in name order, directories before their contents.
    fn walk(
        &mut self,
        dir: BorrowedFd<'_>,
        rel: &str,
        depth: u32,
        max_depth: u32,
        visit: &mut dyn FnMut(&Seen<'_>) -> Flow,
    ) -> Flow {
        if depth as usize > MAX_DEPTH {
            return Flow::Go;
        }
        let Ok(dup) = dir.try_clone_to_owned() else {
            return Flow::Go;
        };
        let Ok(names) = sys::dir_names(dup) else {
            return Flow::Go;
        };
        for raw in names {
            if self.visited >= VISIT_CAP {
                self.truncated = true;
                return Flow::Stop;
            }
            self.visited += 1;
            let name = String::from_utf8_lossy(&raw).into_owned();
            let child_rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let mut root_rel = self.base.join("/");
            if !root_rel.is_empty() {
                root_rel.push('/');
            }
            root_rel.push_str(&child_rel);
            if self.root.hide.matches_entry(&root_rel, &name) {
                continue;
            }
            let Ok(cname) = sys::cstring(&raw) else {
                continue;
            };
            let Ok(st) = sys::lstatat(dir, &cname) else {
                continue;
            };
            let seen = Seen {
                dir,
                name: &cname,
                rel: &child_rel,
                st: &st,
            };
            if visit(&seen) == Flow::Stop {
                return Flow::Stop;
            }
            if sys::is_dir(&st) && depth + 1 < max_depth {
                let Ok(child) = open_dir_at(dir, &cname) else {
                    continue;
                };
                if self.walk(child.as_fd(), &child_rel, depth + 1, max_depth, visit) == Flow::Stop {
                    return Flow::Stop;
                }
            }
        }
        Flow::Go
    }
}

/// Opens the directory `dir/name` for listing, refusing a symlink.
pub(crate) fn open_dir_at(
    dir: BorrowedFd<'_>,
    name: &std::ffi::CStr,
) -> Result<OwnedFd, sys::Errno> {
    sys::openat(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
}

/// Opens `path` as a directory for walking.
fn start<'r>(roots: &'r Roots, path: &str) -> AgentResult<(OwnedFd, Walker<'r>, String)> {
    let t = roots.target(path)?;
    let opened = roots.open(&t, libc::O_RDONLY | libc::O_DIRECTORY)?;
    let walker = Walker {
        root: t.root,
        base: opened.rel,
        visited: 0,
        truncated: false,
    };
    Ok((opened.fd, walker, t.container_path()))
}

fn entry_of(seen: &Seen<'_>) -> Entry {
    let target = files::link_target(seen.dir, seen.name, seen.st);
    files::entry(seen.rel.to_string(), seen.st, target)
}

pub fn list(roots: &Roots, path: &str) -> AgentResult<Reply> {
    let (fd, mut w, shown) = start(roots, path)?;
    let mut entries = Vec::new();
    let mut truncated = false;
    w.walk(fd.as_fd(), "", 0, 1, &mut |seen| {
        if entries.len() >= LIST_CAP {
            truncated = true;
            return Flow::Stop;
        }
        entries.push(entry_of(seen));
        Flow::Go
    });
    Ok(Reply::Entries {
        path: shown,
        entries,
        truncated: truncated || w.truncated,
    })
}

pub fn tree(roots: &Roots, path: &str, depth: u32, max_entries: Option<u32>) -> AgentResult<Reply> {
    let (fd, mut w, shown) = start(roots, path)?;
    let max = max_entries.unwrap_or(TREE_DEFAULT).min(MAX_ITEMS) as usize;
    let mut entries = Vec::new();
    let mut truncated = false;
    w.walk(fd.as_fd(), "", 0, depth.max(1), &mut |seen| {
        if entries.len() >= max {
            truncated = true;
            return Flow::Stop;
        }
        entries.push(entry_of(seen));
        Flow::Go
    });
    Ok(Reply::Entries {
        path: shown,
        entries,
        truncated: truncated || w.truncated,
    })
}

pub fn glob(
    roots: &Roots,
    path: &str,
    pattern: &str,
    max_results: Option<u32>,
) -> AgentResult<Reply> {
    let matcher = UserGlob::new(pattern).map_err(errors::invalid)?;
    let (fd, mut w, shown) = start(roots, path)?;
    let max = max_results.unwrap_or(GLOB_DEFAULT).min(MAX_ITEMS) as usize;
    let mut matches = Vec::new();
    let mut truncated = false;
    w.walk(fd.as_fd(), "", 0, u32::MAX, &mut |seen| {
        let name = seen.name.to_string_lossy();
        if matcher.is_match(seen.rel, &name) {
            if matches.len() >= max {
                truncated = true;
                return Flow::Stop;
            }
            matches.push(join_under(&shown, &[seen.rel]));
        }
        Flow::Go
    });
    Ok(Reply::Matches {
        path: shown,
        matches,
        truncated: truncated || w.truncated,
    })
}

pub fn grep(
    roots: &Roots,
    path: &str,
    regex: &str,
    glob: Option<&str>,
    case_insensitive: bool,
    max_results: Option<u32>,
) -> AgentResult<Reply> {
    let re = regex::RegexBuilder::new(regex)
        .case_insensitive(case_insensitive)
        .size_limit(16 << 20)
        .build()
        .map_err(|e| errors::invalid(format!("bad regex: {e}")))?;
    let filter = glob
        .map(UserGlob::new)
        .transpose()
        .map_err(errors::invalid)?;
    let max = max_results.unwrap_or(GREP_DEFAULT).min(MAX_ITEMS) as usize;
    let mut text = 0usize;
    let t = roots.target(path)?;
    let opened = roots.open(&t, libc::O_RDONLY | libc::O_NONBLOCK)?;
    let st = sys::fstat(opened.fd.as_fd()).map_err(|e| t.err(e))?;
    let mut matches = Vec::new();
    let mut truncated = false;
    if !sys::is_dir(&st) {
        // A single file: search it, naming it by its last component.
        let shown = t.container_path();
        if sys::is_reg(&st) {
            truncated = grep_file(opened.fd, &shown, &re, &mut matches, max, &mut text);
        }
        return Ok(Reply::GrepMatches {
            path: shown,
            matches,
            truncated,
        });
    }
    let shown = t.container_path();
    let mut w = Walker {
        root: t.root,
        base: opened.rel,
        visited: 0,
        truncated: false,
    };
    w.walk(opened.fd.as_fd(), "", 0, u32::MAX, &mut |seen| {
        if !sys::is_reg(seen.st) {
            return Flow::Go;
        }
        if let Some(f) = &filter {
            if !f.is_match(seen.rel, &seen.name.to_string_lossy()) {
                return Flow::Go;
            }
        }
        let Ok(fd) = sys::openat(
            seen.dir,
            seen.name,
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
            0,
        ) else {
            return Flow::Go;
        };
        let named = join_under(&shown, &[seen.rel]);
        if grep_file(fd, &named, &re, &mut matches, max, &mut text) {
            truncated = true;
            return Flow::Stop;
        }
        Flow::Go
    });
    Ok(Reply::GrepMatches {
        path: shown,
        matches,
        truncated: truncated || w.truncated,
    })
}

/// Appends `fd`'s matching lines, naming the file `shown`; skips binary files (a NUL in the first 8 KiB).
/// Returns true when `max` matches or [`MAX_TEXT`] bytes of lines (`text`, shared across
/// files) were reached with more to find.
fn grep_file(
    fd: OwnedFd,
    shown: &str,
    re: &regex::Regex,
    out: &mut Vec<GrepMatch>,
    max: usize,
    text_bytes: &mut usize,
) -> bool {
    let Ok(st) = sys::fstat(fd.as_fd()) else {
        return false;
    };
    if !sys::is_reg(&st) {
        return false;
    }
    let mut reader = BufReader::with_capacity(64 * 1024, std::fs::File::from(fd));
    match reader.fill_buf() {
        Ok(head) if head.iter().take(8192).any(|b| *b == 0) => return false,
        Ok(_) => {}
        Err(_) => return false,
    }
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        // Bound one line's memory: a huge single-line file is read in 1 MiB pieces.
        match (&mut reader).take(1 << 20).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        number += 1;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if re.is_match(text) {
            if out.len() >= max || *text_bytes >= MAX_TEXT {
                return true;
            }
            let clipped = clip(text);
            *text_bytes += clipped.len() + shown.len();
            out.push(GrepMatch {
                path: shown.to_string(),
                line: number,
                text: clipped,
            });
        }
    }
}

/// The first [`LINE_CHARS`] characters of a line, marked when cut.
fn clip(text: &str) -> String {
    match text.char_indices().nth(LINE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}
