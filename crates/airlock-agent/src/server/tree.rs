//! Jobs: every process a command started, even through `setsid`, double forks or fork loops,
//! found through /proc (the agent is a child subreaper), frozen, killed and reaped.
//!
//! A pid namespace or a cgroup per command is not available to the unprivileged agent, so a
//! job is found by parent links: the command's own process and its descendants, plus the
//! orphans re-parented to the agent that belong to the job. Each command starts with
//! [`JOB_ENV`] set to its job id; an orphan is the job's if its initial environment says so,
//! or, when that cannot be read or was scrubbed, if it started after the job did. Orphans
//! marked for another job are left to it (rewriting the marker on purpose only buys a process
//! the life a background process could have had anyway; all die when the agent exits).
//! Killing a job stops every member with SIGSTOP
//! until a scan finds no new member (a stopped process cannot fork, so a fork loop cannot
//! outrun it), then kills them all and reaps the orphans, until nothing is left or a deadline.
//!
//! Reaping stays correct next to `std::process::Child::wait`: the agent's own children (the
//! jobs' first processes) are waited for by their `Child`; every other child — an orphan — is
//! reaped here by its pid, never with `waitpid(-1)`, and only while no spawn is half-recorded.

use crate::server::sys;
use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The environment variable naming a command's job (inherited by everything it starts).
pub const JOB_ENV: &str = "AIRLOCK_JOB";
/// How long killing a job may take before it gives up (unkillable processes).
const KILL_DEADLINE: Duration = Duration::from_secs(5);
/// The reaper's wake-up when no SIGCHLD arrives.
const REAP_TICK: Duration = Duration::from_secs(1);

/// A job's number, unique within this agent.
pub type JobId = u64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Job {
    /// The first process, until its `Child` has been waited for.
    root: Option<i32>,
    /// The first process's start time (clock ticks since boot).
    start: u64,
    /// No longer wanted; dropped once its root is reaped.
    forgotten: bool,
}

#[derive(Default)]
struct Table {
    jobs: HashMap<JobId, Job>,
    next: JobId,
}

impl Table {
    /// The agent's own children still owned by a `Child`.
    fn roots(&self) -> HashSet<i32> {
        self.jobs.values().filter_map(|j| j.root).collect()
    }
}

/// Every job of this agent.
pub struct Jobs {
    table: Mutex<Table>,
    me: i32,
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Stat {
    pid: i32,
    state: u8,
    ppid: i32,
    start: u64,
}

impl Stat {
    /// Still running (not a zombie or dying).
    fn live(&self) -> bool {
        !matches!(self.state, b'Z' | b'X' | b'x')
    }
}

/// Parses one `/proc/<pid>/stat`: state, ppid and start time follow the `(comm)` field.
fn parse_stat(pid: i32, text: &[u8]) -> Option<Stat> {
    let close = text.iter().rposition(|b| *b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = *fields.next()?.as_bytes().first()?;
    let ppid = fields.next()?.parse().ok()?;
    // Fields 5 to 21 lie between the ppid (4) and the start time (22).
    let start = fields.nth(17)?.parse().ok()?;
    Some(Stat {
        pid,
        state,
        ppid,
        start,
    })
}

fn stat(pid: i32) -> Option<Stat> {
    parse_stat(pid, &std::fs::read(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process visible in /proc.
fn scan() -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

/// The job a process was started in, from its initial environment (`None` if unreadable).
fn job_of(pid: i32) -> Option<JobId> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{JOB_ENV}=");
    environ
        .split(|b| *b == 0)
        .find_map(|var| var.strip_prefix(prefix.as_bytes()))
        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
}

/// `starts` and all their descendants in `procs`, zombies included.
fn descendants(procs: &[Stat], starts: Vec<i32>) -> Vec<&Stat> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    let mut by_pid = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p.pid);
        by_pid.insert(p.pid, p);
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut queue = starts;
    while let Some(pid) = queue.pop() {
        if !seen.insert(pid) {
            continue;
        }
        if let Some(p) = by_pid.get(&pid) {
            out.push(*p);
        }
        if let Some(c) = children.get(&pid) {
            queue.extend(c);
        }
    }
    out
}

impl Jobs {
    /// Makes this process a child subreaper and starts the orphan reaper. Call before any
    /// other thread starts, so that SIGCHLD stays blocked in all of them.
    pub fn start() -> Arc<Jobs> {
        sys::block_sigchld();
        if let Err(e) = sys::set_child_subreaper() {
            eprintln!(
                "airlock-agent: cannot become a child subreaper ({}); processes that leave \
                 their session may outlive their command",
                std::io::Error::from_raw_os_error(e)
            );
        }
        let jobs = Arc::new(Jobs {
            table: Mutex::new(Table::default()),
            me: std::process::id() as i32,
        });
        let reaper = Arc::clone(&jobs);
        let started = std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || loop {
                sys::wait_sigchld(REAP_TICK);
                reaper.reap(&scan());
            });
        if let Err(e) = started {
            eprintln!("airlock-agent: cannot start the reaper: {e}");
        }
        jobs
    }

    /// Spawns `cmd` as a new job. The spawn and its recording happen under the table lock, so
    /// the reaper never mistakes the new child for an orphan.
    pub fn spawn(&self, cmd: &mut Command) -> std::io::Result<(JobId, Child)> {
        let mut table = lock(&self.table);
        table.next += 1;
        let id = table.next;
        cmd.env(JOB_ENV, id.to_string());
        let child = cmd.spawn()?;
        let pid = child.id() as i32;
        let start = stat(pid).map_or(0, |s| s.start);
        table.jobs.insert(
            id,
            Job {
                root: Some(pid),
                start,
                forgotten: false,
            },
        );
        Ok((id, child))
    }

    /// Waits for the job's first process, then lets the reaper handle its pid again.
    pub fn wait(&self, id: JobId, child: &mut Child) -> std::io::Result<ExitStatus> {
        let status = child.wait();
        let mut table = lock(&self.table);
        if let Some(job) = table.jobs.get_mut(&id) {
            job.root = None;
            if job.forgotten {
                table.jobs.remove(&id);
            }
        }
        status
    }

    /// The job is over: its leftovers (if any) are no longer looked for.
    pub fn forget(&self, id: JobId) {
        let mut table = lock(&self.table);
        if let Some(job) = table.jobs.get_mut(&id) {
            if job.root.is_none() {
                table.jobs.remove(&id);
            } else {
                job.forgotten = true;
            }
        }
    }

    /// Kills every process of job `id`.
    pub fn kill(&self, id: JobId) {
        self.kill_members(Some(id));
    }

    /// Kills every process this agent started, in every job (the agent is shutting down).
    pub fn kill_all(&self) {
        self.kill_members(None);
    }

    /// The live members of job `only` (or of every job) in `procs`.
    fn members(&self, only: Option<JobId>, procs: &[Stat]) -> Vec<i32> {
        let starts = match only {
            None => procs
                .iter()
                .filter(|p| p.ppid == self.me)
                .map(|p| p.pid)
                .collect(),
            Some(id) => {
                let table = lock(&self.table);
                let Some(job) = table.jobs.get(&id) else {
                    return Vec::new();
                };
                let roots = table.roots();
                let mut starts: Vec<i32> = job.root.into_iter().collect();
                starts.extend(
                    procs
                        .iter()
                        .filter(|p| p.ppid == self.me && p.live() && !roots.contains(&p.pid))
                        .filter(|p| match job_of(p.pid) {
                            Some(owner) => owner == id,
                            None => p.start >= job.start,
                        })
                        .map(|p| p.pid),
                );
                starts
            }
        };
        descendants(procs, starts)
            .into_iter()
            .filter(|p| p.live() && p.pid != self.me)
            .map(|p| p.pid)
            .collect()
    }

    /// Stops, kills and reaps the members of job `only` (or of every job) until none is left.
    fn kill_members(&self, only: Option<JobId>) {
        let deadline = Instant::now() + KILL_DEADLINE;
        let mut stopped = HashSet::new();
        loop {
            let procs = scan();
            let live = self.members(only, &procs);
            let reaped = self.reap(&procs);
            if live.is_empty() && !reaped {
                return;
            }
            if !live.is_empty() {
                // Freeze: a member with SIGSTOP pending cannot fork any more, so once a scan
                // after the last SIGSTOP finds no new member, the whole job is frozen.
                let mut members = live;
                loop {
                    let fresh: Vec<i32> = members
                        .iter()
                        .copied()
                        .filter(|p| stopped.insert(*p))
                        .collect();
                    if fresh.is_empty() || Instant::now() >= deadline {
                        break;
                    }
                    for pid in fresh {
                        sys::kill(pid, libc::SIGSTOP);
                    }
                    members = self.members(only, &scan());
                }
                for pid in members {
                    sys::kill(pid, libc::SIGKILL);
                }
            }
            if Instant::now() >= deadline {
                eprintln!("airlock-agent: some processes of a command could not be killed");
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Reaps the zombies among `procs` that are this agent's children but no job's root.
    /// Under the table lock, so no root can be half-recorded meanwhile. True if there was any.
    fn reap(&self, procs: &[Stat]) -> bool {
        let table = lock(&self.table);
        let roots = table.roots();
        let mut any = false;
        for p in procs {
            if p.ppid == self.me && p.state == b'Z' && !roots.contains(&p.pid) {
                sys::reap(p.pid);
                any = true;
            }
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_follow_the_last_parenthesis() {
        let text = b"42 (a) b (c)) S 7 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(
            parse_stat(42, text),
            Some(Stat {
                pid: 42,
                state: b'S',
                ppid: 7,
                start: 98765
            })
        );
        assert_eq!(parse_stat(1, b"1 (x) Z"), None);
    }

    #[test]
    fn descendants_follow_parent_links() {
        let p = |pid, ppid| Stat {
            pid,
            state: b'S',
            ppid,
            start: 0,
        };
        let procs = [p(10, 1), p(11, 10), p(12, 11), p(13, 1), p(14, 12)];
        let mut found: Vec<i32> = descendants(&procs, vec![11])
            .iter()
            .map(|s| s.pid)
            .collect();
        found.sort();
        assert_eq!(found, vec![11, 12, 14]);
    }
}
