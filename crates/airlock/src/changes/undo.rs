//! Undo: a call's changes put back from their pre-images, and a call's changes described
//! (a unified diff per text file, sizes for the rest) for `airlock changes` and the app.
//!
//! Every path is first checked, by the agent, to still be as the call left it; one that is not
//! is a conflict and nothing is changed unless forced. Restores run in the agent beneath the
//! workspace root, following no symlink, each file replaced atomically.

use super::{CallChanges, Change, ChangeError, ChangeStore, PathState};
use crate::sandbox::{SandboxKey, SandboxManager};
use airlock_agent::{Content, Op, Reply, RestoreConflict, RestoreStep};
use serde::{Deserialize, Serialize};

/// Bytes of content sent to the agent in one restore request at most (a file larger than
/// this still goes alone).
const BATCH_BYTES: usize = 16 << 20;

/// What an undo did, or why it did nothing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum UndoReport {
    /// Every undoable change was put back.
    Restored {
        paths: u32,
        /// Changed paths whose pre-image is not kept (hidden, excluded, evicted, too large).
        not_undoable: Vec<String>,
    },
    /// Paths are no longer as the call left them; nothing was changed.
    Conflicts { conflicts: Vec<RestoreConflict> },
    /// The call was undone before (by the user action named).
    AlreadyUndone { by: String },
    /// The call changed nothing that was captured.
    NothingToUndo,
    /// A dry run: what an undo would put back, and what stands in its way.
    Checked {
        paths: Vec<String>,
        not_undoable: Vec<String>,
        conflicts: Vec<RestoreConflict>,
    },
}

impl UndoReport {
    /// One paragraph for the user.
    pub fn message(&self, call_id: &str) -> String {
        match self {
            UndoReport::Restored {
                paths,
                not_undoable,
            } => {
                let mut s = format!("Undid call {call_id}: {paths} path(s) put back.");
                if !not_undoable.is_empty() {
                    s.push_str(&format!(
                        " Not undoable (not kept): {}.",
                        not_undoable.join(", ")
                    ));
                }
                s
            }
            UndoReport::Conflicts { conflicts } => {
                let mut s = format!(
                    "Not undone: {} path(s) changed after call {call_id}, so nothing was touched (forcing it puts the call's earlier content back anyway):",
                    conflicts.len()
                );
                for c in conflicts {
                    s.push_str(&format!(
                        "\n  {}: now {}, expected {}",
                        c.path,
                        describe(&c.found),
                        describe(&c.expected)
                    ));
                }
                s
            }
            UndoReport::AlreadyUndone { by } => {
                format!("Call {call_id} was already undone (by {by}); nothing to do.")
            }
            UndoReport::NothingToUndo => {
                format!("Call {call_id} changed nothing that can be undone.")
            }
            UndoReport::Checked {
                paths, conflicts, ..
            } => format!(
                "Undoing call {call_id} would put back {} path(s); {} conflict(s).",
                paths.len(),
                conflicts.len()
            ),
        }
    }
}

/// A path state in a few words.
pub fn describe(state: &PathState) -> String {
    match state {
        PathState::Absent => "absent".into(),
        PathState::File { hash, mode } if hash.is_empty() => format!("a file (mode {mode:o})"),
        PathState::File { hash, mode } => {
            format!("file {} (mode {mode:o})", &hash[..hash.len().min(12)])
        }
        PathState::Dir { mode } => format!("a folder (mode {mode:o})"),
        PathState::Symlink { target } => format!("a symlink to {target}"),
    }
}

/// The restore steps that undo `changes`: what is to be removed first, deepest first; then
/// what is to be put back, parents before children. Returns the paths that cannot be undone.
pub fn steps_of(changes: &[Change]) -> (Vec<RestoreStep>, Vec<String>) {
    let mut removals = Vec::new();
    let mut restores = Vec::new();
    let mut not_undoable = Vec::new();
    for c in changes {
        if !c.kept {
            not_undoable.push(c.path.clone());
            continue;
        }
        let step = RestoreStep {
            path: c.path.clone(),
            expect: c.after.clone(),
            restore: c.before.clone(),
            content: None,
        };
        if c.before == PathState::Absent {
            removals.push(step);
        } else {
            restores.push(step);
        }
    }
    removals.sort_by(|a, b| b.path.cmp(&a.path));
    restores.sort_by(|a, b| a.path.cmp(&b.path));
    removals.extend(restores);
    (removals, not_undoable)
}

/// The steps that undo `set` and the paths that cannot be undone — or, when there is nothing
/// to do, the report that says why.
fn plan(set: &CallChanges) -> Result<(Vec<RestoreStep>, Vec<String>), UndoReport> {
    if let Some(by) = &set.undone_by {
        return Err(UndoReport::AlreadyUndone { by: by.clone() });
    }
    let (steps, not_undoable) = steps_of(&set.changes);
    if steps.is_empty() {
        return Err(UndoReport::NothingToUndo);
    }
    Ok((steps, not_undoable))
}

/// What undoing `set` would put back and what conflicts, changing nothing. `planned` holds
/// what undoing newer calls (of a session, newest first) would leave at each path: those
/// paths are checked against it instead of what is there now; this call's own restores are
/// added to it.
pub async fn check(
    sandboxes: &SandboxManager,
    key: &SandboxKey,
    set: &CallChanges,
    planned: &mut std::collections::HashMap<String, PathState>,
) -> Result<UndoReport, ChangeError> {
    let (steps, not_undoable) = match plan(set) {
        Ok(plan) => plan,
        Err(report) => return Ok(report),
    };
    let (ahead, now): (Vec<&RestoreStep>, Vec<&RestoreStep>) =
        steps.iter().partition(|s| planned.contains_key(&s.path));
    let mut conflicts: Vec<RestoreConflict> = ahead
        .into_iter()
        .filter_map(|s| {
            let found = planned.get(&s.path).cloned().unwrap_or(PathState::Absent);
            (found != s.expect).then(|| RestoreConflict {
                path: s.path.clone(),
                expected: s.expect.clone(),
                found,
            })
        })
        .collect();
    if !now.is_empty() {
        let now = now.into_iter().cloned().collect();
        conflicts.extend(restore(sandboxes, key, now, false, true).await?.0);
    }
    let paths = steps.iter().map(|s| s.path.clone()).collect();
    planned.extend(steps.into_iter().map(|s| (s.path, s.restore)));
    Ok(UndoReport::Checked {
        paths,
        not_undoable,
        conflicts,
    })
}

/// Puts back what `set` changed through the agent of `key`'s sandbox.
pub async fn undo(
    store: &ChangeStore,
    sandboxes: &SandboxManager,
    key: &SandboxKey,
    set: &CallChanges,
    force: bool,
) -> Result<UndoReport, ChangeError> {
    let (steps, not_undoable) = match plan(set) {
        Ok(plan) => plan,
        Err(report) => return Ok(report),
    };
    // Check everything before anything is touched (no content needed for that).
    if !force {
        let conflicts = restore(sandboxes, key, steps.clone(), false, true).await?.0;
        if !conflicts.is_empty() {
            return Ok(UndoReport::Conflicts { conflicts });
        }
    }
    let mut batch = Vec::new();
    let mut bytes = 0;
    let mut applied = 0;
    for mut step in steps {
        if let PathState::File { hash, .. } = &step.restore {
            let content = store.blob(hash)?.ok_or_else(|| {
                ChangeError::Refused(format!(
                    "`{}` is no longer undoable: its earlier content was evicted from the change store",
                    step.path
                ))
            })?;
            bytes += content.len();
            step.content = Some(Content::from_bytes(content));
        }
        batch.push(step);
        if bytes >= BATCH_BYTES {
            applied += apply(sandboxes, key, std::mem::take(&mut batch), force).await?;
            bytes = 0;
        }
    }
    if !batch.is_empty() {
        applied += apply(sandboxes, key, batch, force).await?;
    }
    Ok(UndoReport::Restored {
        paths: applied,
        not_undoable,
    })
}

/// One restore request that must apply (a conflict found now — a path changed since the
/// check — stops the undo with what was already put back in place).
async fn apply(
    sandboxes: &SandboxManager,
    key: &SandboxKey,
    steps: Vec<RestoreStep>,
    force: bool,
) -> Result<u32, ChangeError> {
    let (conflicts, applied) = restore(sandboxes, key, steps, force, false).await?;
    // Forced, the agent names what it overrode; else a conflict means nothing was applied.
    if !force && !conflicts.is_empty() {
        let paths: Vec<&str> = conflicts.iter().map(|c| c.path.as_str()).collect();
        return Err(ChangeError::Refused(format!(
            "undo stopped: {} changed while it ran",
            paths.join(", ")
        )));
    }
    Ok(applied)
}

async fn restore(
    sandboxes: &SandboxManager,
    key: &SandboxKey,
    steps: Vec<RestoreStep>,
    force: bool,
    dry_run: bool,
) -> Result<(Vec<RestoreConflict>, u32), ChangeError> {
    match sandboxes
        .call_exact(
            key.clone(),
            Op::Restore {
                steps,
                force,
                dry_run,
            },
        )
        .await?
    {
        Reply::Restored { conflicts, applied } => Ok((conflicts, applied)),
        _ => Err(ChangeError::Corrupt(
            "the agent answered a restore with something else".into(),
        )),
    }
}

/// A unified diff of `old` → `new` labelled with `path`.
pub fn unified_diff(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(path, path)
        .to_string()
}

/// One change as `airlock changes` and the app show it.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeView {
    #[serde(flatten)]
    pub change: Change,
    /// A unified diff when both sides are kept text (redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Sizes when a side is binary or not kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_before: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_after: Option<u64>,
}

/// Every change of `set` with its diff, redacted by `redact`.
pub fn views(
    store: &ChangeStore,
    set: &CallChanges,
    redact: &dyn Fn(&str) -> String,
) -> Vec<ChangeView> {
    let content = |state: &PathState| match state {
        PathState::File { hash, .. } if !hash.is_empty() => store.blob(hash).ok().flatten(),
        _ => None,
    };
    set.changes
        .iter()
        .map(|c| {
            let (before, after) = (content(&c.before), content(&c.after));
            let text = |b: &Option<Vec<u8>>, state: &PathState| match (b, state) {
                (Some(b), _) => std::str::from_utf8(b).ok().map(str::to_string),
                (None, PathState::Absent) => Some(String::new()),
                (None, _) => None,
            };
            let diff = match (text(&before, &c.before), text(&after, &c.after)) {
                (Some(old), Some(new)) if old != new => {
                    Some(redact(&unified_diff(&c.path, &old, &new)))
                }
                _ => None,
            };
            ChangeView {
                change: c.clone(),
                size_before: diff
                    .is_none()
                    .then(|| before.as_ref().map(|b| b.len() as u64))
                    .flatten(),
                size_after: diff
                    .is_none()
                    .then(|| after.as_ref().map(|b| b.len() as u64))
                    .flatten(),
                diff,
            }
        })
        .collect()
}

/// `views` as text for a terminal.
pub fn render(set: &CallChanges, views: &[ChangeView]) -> String {
    let mut out = format!(
        "call {} ({}, session {}){}\n",
        set.call_id,
        set.tool,
        set.session,
        set.undone_by
            .as_ref()
            .map(|by| format!(", undone by {by}"))
            .unwrap_or_default()
    );
    for v in views {
        let c = &v.change;
        let mut line = format!("{} {}", c.kind.label(), c.path);
        if let Some(from) = &c.renamed_from {
            line.push_str(&format!(" (renamed from {from})"));
        }
        line.push_str(&format!(
            ": {} → {}",
            describe(&c.before),
            describe(&c.after)
        ));
        if !c.kept {
            line.push_str(" [not undoable]");
        }
        out.push_str(&line);
        out.push('\n');
        if let Some(diff) = &v.diff {
            out.push_str(diff);
        } else if v.size_before.is_some() || v.size_after.is_some() {
            out.push_str(&format!(
                "  (binary or not kept: {} → {} bytes)\n",
                v.size_before.map(|n| n.to_string()).unwrap_or("-".into()),
                v.size_after.map(|n| n.to_string()).unwrap_or("-".into())
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::ChangeKind;

    fn change(path: &str, before: PathState, after: PathState) -> Change {
        Change {
            path: path.into(),
            kind: ChangeKind::Modified,
            before,
            after,
            kept: true,
            renamed_from: None,
        }
    }

    #[test]
    fn removals_go_deepest_first_and_restores_parents_first() {
        let f = |h: &str| PathState::File {
            hash: h.into(),
            mode: 0o644,
        };
        let d = PathState::Dir { mode: 0o755 };
        let changes = vec![
            change("/w/new", PathState::Absent, d.clone()),
            change("/w/new/x", PathState::Absent, f("1")),
            change("/w/src", d.clone(), PathState::Absent),
            change("/w/src/a", f("2"), PathState::Absent),
            Change {
                kept: false,
                ..change("/w/.env", f(""), f(""))
            },
        ];
        let (steps, not) = steps_of(&changes);
        let order: Vec<&str> = steps.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(order, vec!["/w/new/x", "/w/new", "/w/src", "/w/src/a"]);
        assert_eq!(not, vec!["/w/.env".to_string()]);
        assert_eq!(steps[2].expect, PathState::Absent);
        assert_eq!(steps[2].restore, d);
    }
}
