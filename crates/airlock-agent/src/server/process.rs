//! Commands: foreground `run` (with timeout, caps and cancel) and background processes.
//! Each command is a job (see `tree`): killing it kills everything it started, in any session.

use crate::server::errors::{self, AgentResult};
use crate::server::resolve::Roots;
use crate::server::tree::{JobId, Jobs};
use airlock_agent::{ErrorKind, ProcInfo, Reply, RunResult, RunSpec, SpawnSpec};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const SHELL: &str = "/bin/sh";
/// How long output may keep flowing after the shell itself has exited.
const DRAIN_GRACE: Duration = Duration::from_millis(500);
/// Finished background processes kept for `proc_list` / `proc_read`.
const KEEP_FINISHED: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A foreground run the engine may cancel.
#[derive(Default)]
struct RunSlot {
    job: Option<JobId>,
    cancelled: bool,
}

/// Every process the agent started.
pub struct Procs {
    runs: Mutex<HashMap<u64, RunSlot>>,
    bg: Mutex<BTreeMap<u32, Arc<Bg>>>,
    next_handle: AtomicU32,
    jobs: Arc<Jobs>,
}

impl Procs {
    /// Makes the agent the reaper of its commands' orphans; call before any other thread starts.
    /// Background-process handles start after `first_handle`.
    pub fn start(first_handle: u32) -> Procs {
        Procs {
            runs: Mutex::default(),
            bg: Mutex::default(),
            next_handle: AtomicU32::new(first_handle),
            jobs: Jobs::start(),
        }
    }

    /// Notes an incoming `run` before its worker starts, so a quick `cancel` finds it.
    pub fn register_run(&self, id: u64) {
        lock(&self.runs).insert(id, RunSlot::default());
    }

    /// Kills every process of the run started by request `request`.
    pub fn cancel(&self, request: u64) -> AgentResult<Reply> {
        let job = {
            let mut runs = lock(&self.runs);
            let Some(slot) = runs.get_mut(&request) else {
                return Err(errors::err(
                    ErrorKind::NoSuchProcess,
                    format!("no command from request {request} is running"),
                ));
            };
            slot.cancelled = true;
            slot.job
        };
        // Not yet started: the run sees `cancelled` once it has, and kills itself.
        if let Some(job) = job {
            self.jobs.kill(job);
        }
        Ok(Reply::Done {
            path: String::new(),
        })
    }

    /// Kills every process the agent started (the engine went away).
    pub fn kill_all(&self) {
        for slot in lock(&self.runs).values_mut() {
            slot.cancelled = true;
        }
        self.jobs.kill_all();
    }

    pub fn run(&self, roots: &Roots, id: u64, spec: &RunSpec) -> AgentResult<Reply> {
        let result = self.run_inner(roots, id, spec);
        lock(&self.runs).remove(&id);
        result
    }

    fn run_inner(&self, roots: &Roots, id: u64, spec: &RunSpec) -> AgentResult<Reply> {
        let started = Instant::now();
        let (mut cmd, cwd) = command(roots, &spec.command, spec.cwd.as_deref(), &spec.env)?;
        cmd.stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let helpers = Helpers::start(spec.stdin.is_some())?;
        let (job, child) = self.spawn_job(cmd, cwd)?;
        let result = self.run_job(id, spec, started, job, child, helpers);
        self.jobs.forget(job);
        result
    }

    fn run_job(
        &self,
        id: u64,
        spec: &RunSpec,
        started: Instant,
        job: JobId,
        mut child: Child,
        helpers: Helpers,
    ) -> AgentResult<Reply> {
        let cancelled = {
            let mut runs = lock(&self.runs);
            let slot = runs.entry(id).or_default();
            slot.job = Some(job);
            slot.cancelled
        };
        if cancelled {
            self.jobs.kill(job);
        }
        if let (Some(data), Some(mut stdin), Some(h)) =
            (spec.stdin.clone(), child.stdin.take(), helpers.stdin)
        {
            h.run(move || {
                let _ = stdin.write_all(data.as_bytes());
            });
        }
        let cap = spec.output_cap as usize;
        let out = Arc::new(Capture::new(cap));
        let err = Arc::new(Capture::new(cap));
        if let Some(s) = child.stdout.take() {
            reader(helpers.out, s, Arc::clone(&out), Sink::Head);
        }
        if let Some(s) = child.stderr.take() {
            reader(helpers.err, s, Arc::clone(&err), Sink::Head);
        }
        let (tx, rx) = mpsc::channel();
        let jobs = Arc::clone(&self.jobs);
        helpers.wait.run(move || {
            let _ = tx.send(jobs.wait(job, &mut child));
        });
        let deadline =
            (spec.timeout_ms > 0).then(|| started + Duration::from_millis(spec.timeout_ms));
        let mut timed_out = false;
        let status = loop {
            let wait = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            match rx.recv_timeout(wait) {
                Ok(status) => break status,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) && !timed_out {
                        timed_out = true;
                        self.jobs.kill(job);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(errors::err(ErrorKind::Io, "lost track of the command"))
                }
            }
        };
        let status = status.map_err(|e| {
            errors::err(
                ErrorKind::Io,
                format!("waiting for the command failed: {e}"),
            )
        })?;
        // Leftovers (`cmd &`) may hold the pipes open: give them a moment, then kill the job.
        let grace = Instant::now() + DRAIN_GRACE;
        if !(out.wait_eof(grace) && err.wait_eof(grace)) {
            self.jobs.kill(job);
            let more = Instant::now() + DRAIN_GRACE;
            out.wait_eof(more);
            err.wait_eof(more);
        }
        let cancelled = lock(&self.runs).get(&id).is_some_and(|s| s.cancelled);
        let (stdout, stdout_dropped) = out.take_all();
        let (stderr, stderr_dropped) = err.take_all();
        Ok(Reply::Ran(RunResult {
            exit_code: status.code(),
            signal: status.signal(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            stdout_dropped,
            stderr_dropped,
            timed_out,
            cancelled,
            duration_ms: started.elapsed().as_millis() as u64,
        }))
    }

    pub fn spawn(&self, roots: &Roots, spec: &SpawnSpec) -> AgentResult<Reply> {
        let (mut cmd, cwd) = command(roots, &spec.command, spec.cwd.as_deref(), &spec.env)?;
        cmd.stdin(Stdio::piped());
        let helpers = Helpers::start(false)?;
        let (job, mut child) = self.spawn_job(cmd, cwd)?;
        let pid = child.id();
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed) + 1;
        let out = Arc::new(Capture::new(spec.output_cap as usize));
        let err = Arc::new(Capture::new(spec.output_cap as usize));
        if let Some(s) = child.stdout.take() {
            reader(helpers.out, s, Arc::clone(&out), Sink::Ring);
        }
        if let Some(s) = child.stderr.take() {
            reader(helpers.err, s, Arc::clone(&err), Sink::Ring);
        }
        let bg = Arc::new(Bg {
            handle,
            job,
            pid,
            command: spec.command.clone(),
            stdin: Mutex::new(child.stdin.take()),
            out,
            err,
            exit: Mutex::new(None),
            exited: Condvar::new(),
        });
        let waiter = Arc::clone(&bg);
        let jobs = Arc::clone(&self.jobs);
        helpers.wait.run(move || waiter.wait(&jobs, child));
        let mut table = lock(&self.bg);
        table.insert(handle, bg);
        for gone in prune(&mut table) {
            self.jobs.forget(gone.job);
        }
        Ok(Reply::Spawned { handle, pid })
    }

    fn get(&self, handle: u32) -> AgentResult<Arc<Bg>> {
        lock(&self.bg).get(&handle).cloned().ok_or_else(|| {
            errors::err(
                ErrorKind::NoSuchProcess,
                format!("no background process with handle {handle}"),
            )
        })
    }

    pub fn read(&self, handle: u32, wait_ms: u64) -> AgentResult<Reply> {
        let bg = self.get(handle)?;
        let deadline = Instant::now() + Duration::from_millis(wait_ms.min(600_000));
        loop {
            let done = bg.ended().is_some();
            if done || bg.out.has_data() || bg.err.has_data() || Instant::now() >= deadline {
                break;
            }
            // Wake for new output on either stream or for the exit.
            bg.out
                .wait_data(deadline.min(Instant::now() + Duration::from_millis(20)));
        }
        Ok(bg.output())
    }

    pub fn write(&self, handle: u32, data: &str, close: bool) -> AgentResult<Reply> {
        let bg = self.get(handle)?;
        let mut stdin = lock(&bg.stdin);
        let Some(pipe) = stdin.as_mut() else {
            return Err(errors::invalid(format!(
                "the stdin of background process {handle} is already closed"
            )));
        };
        if !data.is_empty() {
            if let Err(e) = pipe.write_all(data.as_bytes()).and_then(|()| pipe.flush()) {
                *stdin = None;
                return Err(errors::err(
                    ErrorKind::Io,
                    format!("writing to background process {handle} failed (has it exited?): {e}"),
                ));
            }
        }
        if close {
            *stdin = None;
        }
        Ok(Reply::Done {
            path: String::new(),
        })
    }

    /// Kills every process of the background process `handle` (even once its own process has
    /// ended: what it left behind), and waits briefly for its exit.
    pub fn kill(&self, handle: u32) -> AgentResult<Reply> {
        let bg = self.get(handle)?;
        self.jobs.kill(bg.job);
        if bg.ended().is_none() {
            let deadline = Instant::now() + Duration::from_secs(2);
            let mut exit = lock(&bg.exit);
            while exit.is_none() && Instant::now() < deadline {
                exit = bg
                    .exited
                    .wait_timeout(exit, Duration::from_millis(50))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
        }
        Ok(bg.output())
    }

    pub fn list(&self) -> Reply {
        let processes = lock(&self.bg)
            .values()
            .map(|bg| {
                let ended = bg.ended();
                ProcInfo {
                    handle: bg.handle,
                    pid: bg.pid,
                    command: bg.command.clone(),
                    running: ended.is_none(),
                    exit_code: ended.flatten(),
                }
            })
            .collect();
        Reply::Processes { processes }
    }
}

/// Drops the oldest finished background processes beyond [`KEEP_FINISHED`]; returns them.
fn prune(table: &mut BTreeMap<u32, Arc<Bg>>) -> Vec<Arc<Bg>> {
    let finished: Vec<u32> = table
        .iter()
        .filter(|(_, bg)| bg.ended().is_some())
        .map(|(h, _)| *h)
        .collect();
    let excess = finished.len().saturating_sub(KEEP_FINISHED);
    finished[..excess]
        .iter()
        .filter_map(|h| table.remove(h))
        .collect()
}

/// `/bin/sh -c command` in its own session, in the resolved `cwd`, with `env` on top (and the
/// job's marker over both).
fn command(
    roots: &Roots,
    command: &str,
    cwd: Option<&str>,
    env: &BTreeMap<String, String>,
) -> AgentResult<(Command, OwnedFd)> {
    if std::fs::symlink_metadata(SHELL).is_err() {
        return Err(errors::err(
            ErrorKind::Io,
            "this image has no /bin/sh, so commands cannot run in it; use an image with a shell",
        ));
    }
    let t = roots.target(cwd.unwrap_or(""))?;
    let dir = roots.open(&t, libc::O_PATH | libc::O_DIRECTORY)?.fd;
    let raw = dir.as_raw_fd();
    let mut cmd = Command::new(SHELL);
    cmd.arg("-c").arg(command).envs(env);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only makes the
    // async-signal-safe calls setsid(2) and fchdir(2) on a descriptor that stays open
    // (it is owned by the caller until after spawn returns).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::fchdir(raw) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok((cmd, dir))
}

impl Procs {
    /// Spawns `cmd` as a new job, keeping the cwd descriptor its `pre_exec` uses open until the
    /// child has exec'd.
    fn spawn_job(&self, mut cmd: Command, cwd: OwnedFd) -> AgentResult<(JobId, Child)> {
        let spawned = while_out_of_pids(|| self.jobs.spawn(&mut cmd))
            .map_err(|e| errors::err(ErrorKind::Io, format!("could not start {SHELL}: {e}")));
        drop(cwd);
        spawned
    }
}

/// How a capture keeps bytes beyond its cap.
#[derive(Clone, Copy)]
enum Sink {
    /// Keep the first `cap` bytes (a finished command's output).
    Head,
    /// Keep the latest `cap` bytes (a background process between reads).
    Ring,
}

#[derive(Default)]
struct CaptureState {
    buf: VecDeque<u8>,
    dropped: u64,
    eof: bool,
}

/// One output stream, filled by a reader thread.
struct Capture {
    cap: usize,
    state: Mutex<CaptureState>,
    changed: Condvar,
}

impl Capture {
    fn new(cap: usize) -> Self {
        Capture {
            cap,
            state: Mutex::new(CaptureState::default()),
            changed: Condvar::new(),
        }
    }

    fn push(&self, data: &[u8], sink: Sink) {
        let mut s = lock(&self.state);
        match sink {
            Sink::Head => {
                let room = self.cap.saturating_sub(s.buf.len());
                let keep = room.min(data.len());
                s.buf.extend(&data[..keep]);
                s.dropped += (data.len() - keep) as u64;
            }
            Sink::Ring => {
                let data = if data.len() > self.cap {
                    s.dropped += (data.len() - self.cap) as u64;
                    &data[data.len() - self.cap..]
                } else {
                    data
                };
                let over = (s.buf.len() + data.len()).saturating_sub(self.cap);
                s.buf.drain(..over);
                s.dropped += over as u64;
                s.buf.extend(data);
            }
        }
        drop(s);
        self.changed.notify_all();
    }

    fn finish(&self) {
        lock(&self.state).eof = true;
        self.changed.notify_all();
    }

    /// Waits until the writer side closed or `deadline`; true if it closed.
    fn wait_eof(&self, deadline: Instant) -> bool {
        let mut s = lock(&self.state);
        while !s.eof {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        true
    }

    fn has_data(&self) -> bool {
        !lock(&self.state).buf.is_empty()
    }

    fn wait_data(&self, deadline: Instant) {
        let s = lock(&self.state);
        if !s.buf.is_empty() {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = self.changed.wait_timeout(s, left);
    }

    /// Everything kept so far and the count dropped, resetting both.
    fn take_all(&self) -> (Vec<u8>, u64) {
        let mut s = lock(&self.state);
        let dropped = std::mem::take(&mut s.dropped);
        (s.buf.drain(..).collect(), dropped)
    }

    /// Like [`Capture::take_all`], but while the stream is open it leaves a trailing partial
    /// UTF-8 character for the next read.
    fn take_text(&self) -> (String, u64) {
        let mut s = lock(&self.state);
        let mut bytes: Vec<u8> = s.buf.drain(..).collect();
        if !s.eof {
            let keep = incomplete_tail(&bytes);
            let tail = bytes.split_off(bytes.len() - keep);
            s.buf.extend(tail);
        }
        let dropped = std::mem::take(&mut s.dropped);
        (String::from_utf8_lossy(&bytes).into_owned(), dropped)
    }
}

/// Length of an unfinished UTF-8 sequence at the end of `b` (0 if none).
fn incomplete_tail(b: &[u8]) -> usize {
    for back in 1..=3.min(b.len()) {
        let byte = b[b.len() - back];
        if byte & 0xC0 == 0x80 {
            continue; // continuation byte: keep looking for the lead byte
        }
        let need = match byte {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return 0,
        };
        return if need > back { back } else { 0 };
    }
    0
}

/// A thread started before its command, waiting for the work it is handed. A command that
/// exhausts the pids limit at once (a fork bomb) thus cannot leave the agent unable to read
/// its output or wait for it.
struct Helper(mpsc::Sender<Box<dyn FnOnce() + Send>>);

/// Runs `start` (a thread or a process), again for up to [`PIDS_RETRY`] while the sandbox is out
/// of pids for a moment: the processes of a command just killed (a fork bomb) are still being
/// reaped, and the next command should wait for that rather than fail.
pub(crate) fn while_out_of_pids<T>(
    mut start: impl FnMut() -> std::io::Result<T>,
) -> std::io::Result<T> {
    let deadline = Instant::now() + PIDS_RETRY;
    loop {
        match start() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            done => return done,
        }
    }
}

/// How long starting a thread or a command is retried while the sandbox is out of pids.
const PIDS_RETRY: Duration = Duration::from_secs(3);

impl Helper {
    fn start() -> AgentResult<Helper> {
        while_out_of_pids(|| {
            let (tx, rx) = mpsc::channel::<Box<dyn FnOnce() + Send>>();
            std::thread::Builder::new()
                .spawn(move || {
                    if let Ok(work) = rx.recv() {
                        work();
                    }
                })
                .map(|_| Helper(tx))
        })
        .map_err(|e| {
            errors::err(
                ErrorKind::Io,
                format!("the agent cannot start a thread ({e}); retry once processes end"),
            )
        })
    }

    fn run(self, work: impl FnOnce() + Send + 'static) {
        let _ = self.0.send(Box::new(work));
    }
}

/// The threads watching one command: its stdin writer (if any), output readers and waiter.
struct Helpers {
    stdin: Option<Helper>,
    out: Helper,
    err: Helper,
    wait: Helper,
}

impl Helpers {
    fn start(stdin: bool) -> AgentResult<Helpers> {
        Ok(Helpers {
            stdin: stdin.then(Helper::start).transpose()?,
            out: Helper::start()?,
            err: Helper::start()?,
            wait: Helper::start()?,
        })
    }
}

/// Has `helper` copy `src` into `cap` until end of file. It never stops reading early, so a
/// chatty child never blocks on a full pipe.
fn reader<R: Read + Send + 'static>(helper: Helper, mut src: R, cap: Arc<Capture>, sink: Sink) {
    helper.run(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => cap.push(&buf[..n], sink),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        cap.finish();
    });
}

/// A background process.
struct Bg {
    handle: u32,
    job: JobId,
    pid: u32,
    command: String,
    stdin: Mutex<Option<ChildStdin>>,
    out: Arc<Capture>,
    err: Arc<Capture>,
    /// Set once ended: the exit code, `None` when killed by a signal.
    exit: Mutex<Option<Option<i32>>>,
    exited: Condvar,
}

impl Bg {
    /// Reaps the child, lets its output drain, then records the exit.
    fn wait(&self, jobs: &Jobs, mut child: Child) {
        let status = jobs.wait(self.job, &mut child);
        let grace = Instant::now() + DRAIN_GRACE;
        self.out.wait_eof(grace);
        self.err.wait_eof(grace);
        let code = status.ok().and_then(|s| s.code());
        *lock(&self.exit) = Some(code);
        self.exited.notify_all();
        // Wake readers waiting for output.
        self.out.changed.notify_all();
    }

    /// `None` while running, then `Some(exit code)` (`Some(None)` when killed by a signal).
    fn ended(&self) -> Option<Option<i32>> {
        *lock(&self.exit)
    }

    /// Output since the last read.
    fn output(&self) -> Reply {
        let ended = self.ended();
        let (stdout, d1) = self.out.take_text();
        let (stderr, d2) = self.err.take_text();
        Reply::ProcOutput {
            handle: self.handle,
            stdout,
            stderr,
            exit_code: ended.flatten(),
            running: ended.is_none(),
            dropped_bytes: d1 + d2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_latest_and_counts_dropped() {
        let c = Capture::new(4);
        c.push(b"abc", Sink::Ring);
        c.push(b"def", Sink::Ring);
        assert_eq!(c.take_all(), (b"cdef".to_vec(), 2));
        c.push(b"0123456789", Sink::Ring);
        assert_eq!(c.take_all(), (b"6789".to_vec(), 6));
    }

    #[test]
    fn head_keeps_first_and_counts_dropped() {
        let c = Capture::new(4);
        c.push(b"abc", Sink::Head);
        c.push(b"def", Sink::Head);
        assert_eq!(c.take_all(), (b"abcd".to_vec(), 2));
    }

    #[test]
    fn partial_utf8_waits_for_the_rest() {
        assert_eq!(incomplete_tail("aé".as_bytes()), 0);
        assert_eq!(incomplete_tail(&"aé".as_bytes()[..2]), 1);
        assert_eq!(incomplete_tail(&"a€".as_bytes()[..3]), 2);
        assert_eq!(incomplete_tail(b"abc"), 0);
    }
}
