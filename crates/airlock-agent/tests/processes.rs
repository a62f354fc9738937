//! Commands: foreground runs (exit, streams, stdin, env, timeout, caps, cancel), background
//! processes, overlapping requests, shutdown when the engine goes away, and `idle`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use airlock_agent::{ErrorKind, Op, Outcome, Reply, RunResult, RunSpec, SpawnSpec};
use common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn run(command: &str) -> RunSpec {
    RunSpec {
        command: command.into(),
        timeout_ms: 20_000,
        output_cap: 1 << 20,
        ..Default::default()
    }
}

fn ran(a: &mut Agent, spec: RunSpec) -> RunResult {
    match a.ok(Op::Run(spec)) {
        Reply::Ran(r) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn run_exit_code_streams_stdin_env_cwd() {
    let f = Fixture::new();
    let mut a = Agent::one(&f, "openat2");
    let r = ran(&mut a, run("echo out; echo err >&2; exit 3"));
    assert_eq!(r.exit_code, Some(3));
    assert_eq!(r.signal, None);
    assert_eq!(r.stdout, "out\n");
    assert_eq!(r.stderr, "err\n");
    assert!(!r.timed_out && !r.cancelled);
    // stdin is written then closed.
    let mut spec = run("tr a-z A-Z; echo done");
    spec.stdin = Some("shout\n".into());
    let r = ran(&mut a, spec);
    assert_eq!(r.stdout, "SHOUT\ndone\n");
    // Without stdin the command reads end of file at once.
    let r = ran(&mut a, run("cat; echo eof"));
    assert_eq!(r.stdout, "eof\n");
    // env is merged over the agent's.
    let mut spec = run("echo \"$GREETING $PATH_SEEN\"");
    spec.env = BTreeMap::from([
        ("GREETING".to_string(), "hi".to_string()),
        ("PATH_SEEN".to_string(), "yes".to_string()),
    ]);
    let r = ran(&mut a, spec);
    assert_eq!(r.stdout, "hi yes\n");
    let r = ran(&mut a, run("test -n \"$PATH\" && echo has-path"));
    assert_eq!(r.stdout, "has-path\n");
    // cwd: the first root by default, else the resolved directory.
    let r = ran(&mut a, run("pwd -P"));
    assert_eq!(
        r.stdout.trim(),
        std::fs::canonicalize(&f.ws).unwrap().to_str().unwrap()
    );
    let mut spec = run("cat a.txt");
    spec.cwd = Some("src".into());
    assert_eq!(ran(&mut a, spec).stdout, "hello\nworld\n");
    let mut spec = run("true");
    spec.cwd = Some("nope".into());
    a.err_kind(Op::Run(spec), ErrorKind::NotFound);
    // The child leads its own process group.
    let r = ran(&mut a, run("echo $$; cut -d' ' -f5 /proc/$$/stat"));
    let lines: Vec<_> = r.stdout.lines().collect();
    assert_eq!(lines[0], lines[1], "pid should equal pgid: {:?}", r.stdout);
    // Killed by a signal.
    let r = ran(&mut a, run("kill -9 $$"));
    assert_eq!(r.exit_code, None);
    assert_eq!(r.signal, Some(9));
}

#[test]
fn run_timeout_kills_the_whole_group() {
    let f = Fixture::new();
    let mut a = Agent::one(&f, "openat2");
    let pidfile = f.tmp.path().join("child.pid");
    let mut spec = run(&format!(
        "sleep 1000 & echo $! > {}; sleep 1000",
        pidfile.display()
    ));
    spec.timeout_ms = 500;
    let started = Instant::now();
    let r = ran(&mut a, spec);
    assert!(r.timed_out, "{r:?}");
    assert_eq!(r.signal, Some(9));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let child = read_pid(&pidfile);
    assert!(
        wait_dead(child, 5),
        "background child {child} survived the timeout"
    );
}

#[test]
fn run_output_is_capped_and_counted() {
    let f = Fixture::new();
    let mut a = Agent::one(&f, "openat2");
    // Deterministic: exactly 100000 bytes on stdout, 50000 on stderr.
    let mut spec =
        run("head -c 100000 /dev/zero | tr '\\0' y; head -c 50000 /dev/zero | tr '\\0' e >&2");
    spec.output_cap = 1000;
    let r = ran(&mut a, spec);
    assert_eq!(r.exit_code, Some(0));
    assert_eq!(r.stdout, "y".repeat(1000));
    assert_eq!(r.stdout_dropped, 99_000);
    assert_eq!(r.stderr.len(), 1000);
    assert_eq!(r.stderr_dropped, 49_000);
    // `yes` never stops: the cap holds while reading continues, then the timeout ends it.
    let mut spec = run("yes");
    spec.output_cap = 4096;
    spec.timeout_ms = 700;
    let r = ran(&mut a, spec);
    assert!(r.timed_out);
    assert_eq!(r.stdout.len(), 4096);
    assert!(r.stdout.starts_with("y\ny\n"));
    assert!(r.stdout_dropped > 100_000, "{}", r.stdout_dropped);
}

#[test]
fn cancel_kills_an_inflight_run() {
    let f = Fixture::new();
    let mut a = Agent::one(&f, "openat2");
    let pidfile = f.tmp.path().join("c.pid");
    let id = a.send(Op::Run(run(&format!(
        "sleep 1000 & echo $! > {}; wait",
        pidfile.display()
    ))));
    let child = read_pid(&pidfile);
    let started = Instant::now();
    match a.call(Op::Cancel { request: id }) {
        Ok(Reply::Done { .. }) => {}
        other => panic!("{other:?}"),
    }
    match a.wait_for(id, Duration::from_secs(10)) {
        Outcome::Ok(Reply::Ran(r)) => {
            assert!(r.cancelled, "{r:?}");
            assert!(!r.timed_out);
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(wait_dead(child, 5));
    // Nothing to cancel any more.
    a.err_kind(Op::Cancel { request: id }, ErrorKind::NoSuchProcess);
}

#[test]
fn overlapping_requests_answer_independently() {
    let f = Fixture::new();
    let mut a = Agent::one(&f, "openat2");
    let slow = a.send(Op::Run(run("sleep 1; echo slow")));
    let fast = a.send(read("src/a.txt"));
    let fast_started = Instant::now();
    match a.wait(fast) {
        Outcome::Ok(Reply::Read { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(fast_started.elapsed() < Duration::from_millis(800));
    match a.wait(slow) {
        Outcome::Ok(Reply::Ran(r)) => assert_eq!(r.stdout, "slow\n"),
        other => panic!("{other:?}"),
    }
    let order = a.order.lock().unwrap().clone();
    let pos = |id| order.iter().position(|x| *x == id).unwrap();
    assert!(pos(fast) < pos(slow), "{order:?}");
}

fn proc_read(a: &mut Agent, handle: u32, wait_ms: u64) -> (String, String, Option<i32>, bool, u64) {
    match a.ok(Op::ProcRead { handle, wait_ms }) {
        Reply::ProcOutput {
            stdout,
            stderr,
            exit_code,
            running,
            dropped_bytes,
            ..
        } => (stdout, stderr, exit_code, running, dropped_bytes),
        other => panic!("{other:?}"),
    }
}

#[test]
fn background_process_lifecycle() {
    let f = Fixture::new();
    let mut a = Agent::one(&f, "walk");
    let Reply::Spawned { handle, pid } = a.ok(Op::Spawn(SpawnSpec {
        command:
            "echo started; while read line; do echo \"got $line\"; echo warn >&2; done; exit 7"
                .into(),
        cwd: Some("src".into()),
        output_cap: 10_000,
        ..Default::default()
    })) else {
        panic!()
    };
    assert!(pid > 0);
    let (out, _, code, running, _) = proc_read(&mut a, handle, 5000);
    assert_eq!(out, "started\n");
    assert!(running && code.is_none());
    // Output since the last read only.
    a.ok(Op::ProcWrite {
        handle,
        data: "one\n".into(),
        close: false,
    });
    let mut out = String::new();
    let mut err = String::new();
    while !out.contains("got one") || !err.contains("warn") {
        let (o, e, _, _, _) = proc_read(&mut a, handle, 2000);
        assert!(!o.contains("started"));
        out += &o;
        err += &e;
    }
    let Reply::Processes { processes } = a.ok(Op::ProcList) else {
        panic!()
    };
    assert_eq!(processes.len(), 1);
    assert_eq!(processes[0].handle, handle);
    assert!(processes[0].running);
    assert!(processes[0].command.contains("while read"));
    // Closing stdin ends the loop; the exit code arrives with the last output.
    a.ok(Op::ProcWrite {
        handle,
        data: "two\n".into(),
        close: true,
    });
    let mut out = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        let (o, _, code, running, _) = proc_read(&mut a, handle, 1000);
        out += &o;
        if !running {
            break code;
        }
        assert!(Instant::now() < deadline);
    };
    assert_eq!(code, Some(7));
    assert_eq!(out, "got two\n");
    a.err_kind(
        Op::ProcWrite {
            handle,
            data: "x".into(),
            close: false,
        },
        ErrorKind::Invalid,
    );
    let Reply::Processes { processes } = a.ok(Op::ProcList) else {
        panic!()
    };
    assert!(!processes[0].running);
    assert_eq!(processes[0].exit_code, Some(7));
    // Unknown handles.
    a.err_kind(
        Op::ProcRead {
            handle: 999,
            wait_ms: 0,
        },
        ErrorKind::NoSuchProcess,
    );
    a.err_kind(Op::ProcKill { handle: 999 }, ErrorKind::NoSuchProcess);
    a.err_kind(
        Op::ProcWrite {
            handle: 999,
            data: String::new(),
            close: true,
        },
        ErrorKind::NoSuchProcess,
    );
}

#[test]
fn background_kill_and_ring_buffer() {
    let f = Fixture::new();
    let mut a = Agent::one(&f, "openat2");
    let pidfile = f.tmp.path().join("bg.pid");
    let Reply::Spawned { handle, .. } = a.ok(Op::Spawn(SpawnSpec {
        command: format!("sleep 1000 & echo $! > {}; sleep 1000", pidfile.display()),
        output_cap: 100,
        ..Default::default()
    })) else {
        panic!()
    };
    let child = read_pid(&pidfile);
    let started = Instant::now();
    let (_, _, _, running, _) = proc_read(&mut a, handle, 300);
    assert!(running);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "wait_ms not honoured"
    );
    match a.ok(Op::ProcKill { handle }) {
        Reply::ProcOutput {
            running, exit_code, ..
        } => {
            assert!(!running);
            assert_eq!(exit_code, None, "killed by a signal: no exit code");
        }
        other => panic!("{other:?}"),
    }
    assert!(wait_dead(child, 5), "group member survived proc_kill");
    // Ring buffer: the latest `output_cap` bytes are kept, older ones counted as dropped.
    let Reply::Spawned { handle, .. } = a.ok(Op::Spawn(SpawnSpec {
        command: "seq 1 20000".into(),
        output_cap: 1000,
        ..Default::default()
    })) else {
        panic!()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Reply::Processes { processes } = a.ok(Op::ProcList) {
        if processes.iter().any(|p| p.handle == handle && !p.running) {
            break;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let (out, _, code, _, dropped) = proc_read(&mut a, handle, 0);
    assert_eq!(code, Some(0));
    assert_eq!(out.len(), 1000);
    assert!(out.ends_with("19999\n20000\n"), "{out}");
    let total: usize = (1..=20000).map(|i: u32| i.to_string().len() + 1).sum();
    assert_eq!(dropped as usize, total - 1000);
}

#[test]
fn engine_gone_kills_every_group() {
    let f = Fixture::new();
    let mut a = Agent::one(&f, "openat2");
    let bg_pid = f.tmp.path().join("bg.pid");
    let run_pid = f.tmp.path().join("run.pid");
    a.ok(Op::Spawn(SpawnSpec {
        command: format!("sleep 1000 & echo $! > {}; wait", bg_pid.display()),
        output_cap: 100,
        ..Default::default()
    }));
    a.send(Op::Run(run(&format!(
        "sleep 1000 & echo $! > {}; wait",
        run_pid.display()
    ))));
    let bg = read_pid(&bg_pid);
    let fg = read_pid(&run_pid);
    let status = a.close();
    assert!(status.success(), "{status:?}");
    assert!(wait_dead(bg, 5), "background group survived the engine");
    assert!(wait_dead(fg, 5), "run group survived the engine");
}

/// `idle` as a container runs it: PID 1 of a PID namespace of its own, so that the serving
/// agents other tests start on this machine are not in its process table (one seen, then gone,
/// would rightly end it). Needs `unshare -p` (util-linux, as root): fails without it.
#[test]
fn idle_blocks_until_sigterm_then_exits_zero() {
    let mut unshare = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", BIN, "idle"])
        .spawn()
        .expect("this test needs `unshare` (util-linux)");
    // The idle process, as the host sees it: the child `unshare` forked.
    let children = format!("/proc/{0}/task/{0}/children", unshare.id());
    let deadline = Instant::now() + Duration::from_secs(5);
    let idle: u32 = loop {
        if let Some(status) = unshare.try_wait().unwrap() {
            panic!("`unshare --pid` failed ({status}): this test needs it (run as root)");
        }
        let listed = std::fs::read_to_string(&children).unwrap_or_default();
        if let Some(pid) = listed.split_whitespace().next() {
            break pid.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "unshare started no idle process");
        std::thread::sleep(Duration::from_millis(10));
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        unshare.try_wait().unwrap().is_none(),
        "idle exited on its own"
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &idle.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = unshare.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "idle ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
}

/// Pid files written by a test's commands. Dropping it kills every recorded process, so a
/// failing test leaves nothing running on the machine.
struct PidFiles(Vec<std::path::PathBuf>);

impl PidFiles {
    fn new(f: &Fixture, names: &[&str]) -> PidFiles {
        PidFiles(names.iter().map(|n| f.tmp.path().join(n)).collect())
    }

    fn path(&self, i: usize) -> String {
        self.0[i].display().to_string()
    }

    fn lines(&self, i: usize) -> usize {
        std::fs::read_to_string(&self.0[i]).map_or(0, |s| s.lines().count())
    }

    fn pids(&self) -> Vec<u32> {
        self.0
            .iter()
            .flat_map(|p| {
                let text = std::fs::read_to_string(p).unwrap_or_default();
                text.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect()
    }

    /// Asserts that every recorded process is gone within a deadline.
    fn assert_all_dead(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let alive: Vec<u32> = self.pids().into_iter().filter(|p| !pid_dead(*p)).collect();
            if alive.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} survivors, the first: {:?}",
                alive.len(),
                &alive[..alive.len().min(10)]
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PidFiles {
    fn drop(&mut self) {
        for _ in 0..5 {
            for pid in self.pids() {
                // SAFETY: plain syscall on a process this test started.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A command leaving processes in other sessions, each pid recorded: a `setsid` child, a
/// double fork into a new session whose middle process exits at once, and a fork loop in its
/// own session (its shell first, then every child) that keeps forking for a while (bounded).
struct Escapes(PidFiles);

impl Escapes {
    fn new(f: &Fixture) -> Escapes {
        let status = std::process::Command::new("setsid").arg("true").status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "these tests need `setsid` (util-linux)"
        );
        Escapes(PidFiles::new(
            f,
            &["setsid.pids", "double.pids", "loop.pids"],
        ))
    }

    fn command(&self) -> String {
        let (a, b, c) = (self.0.path(0), self.0.path(1), self.0.path(2));
        format!(
            "setsid sleep 1000 & echo $! >> {a}; \
             ( setsid sh -c 'sleep 1000 & echo $! >> {b}' & ); \
             setsid sh -c 'echo $$ >> {c}; i=0; while [ $i -lt 2000 ]; do sleep 1000 & echo $! >> {c}; i=$((i+1)); done; wait' & \
             sleep 1000"
        )
    }

    /// Waits until every escape has started and the fork loop is under way.
    fn wait_started(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.0.lines(0) < 1 || self.0.lines(1) < 1 || self.0.lines(2) < 20 {
            assert!(Instant::now() < deadline, "the escapes did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn assert_all_dead(&self) {
        self.0.assert_all_dead();
    }
}

/// The agent's children (pid and state), zombies included.
fn children_of(parent: u32) -> Vec<(u32, char)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (_, rest) = stat.rsplit_once(')')?;
            let mut fields = rest.split_whitespace();
            let state = fields.next()?.chars().next()?;
            let ppid: u32 = fields.next()?.parse().ok()?;
            (ppid == parent).then_some((pid, state))
        })
        .collect()
}

/// Waits until the agent has no child left, not even a zombie (everything killed and reaped).
fn assert_no_children(a: &Agent) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = children_of(a.child.id());
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "agent children left: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_timeout_kills_setsid_double_fork_and_fork_loop() {
    let f = Fixture::new();
    let mut a = Agent::one(&f, "openat2");
    let escapes = Escapes::new(&f);
    let mut spec = run(&escapes.command());
    spec.timeout_ms = 1_000;
    let id = a.send(Op::Run(spec));
    escapes.wait_started();
    match a.wait(id) {
        Outcome::Ok(Reply::Ran(r)) => assert!(r.timed_out, "{r:?}"),
        other => panic!("{other:?}"),
    }
    escapes.assert_all_dead();
    assert_no_children(&a);
}

#[test]
fn cancel_kills_setsid_double_fork_and_fork_loop() {
    let f = Fixture::new();
    let mut a = Agent::one(&f, "openat2");
    let escapes = Escapes::new(&f);
    let id = a.send(Op::Run(run(&escapes.command())));
    escapes.wait_started();
    a.ok(Op::Cancel { request: id });
    match a.wait(id) {
        Outcome::Ok(Reply::Ran(r)) => assert!(r.cancelled, "{r:?}"),
        other => panic!("{other:?}"),
    }
    escapes.assert_all_dead();
    assert_no_children(&a);
}

#[test]
fn proc_kill_kills_setsid_double_fork_and_fork_loop() {
    let f = Fixture::new();
    let mut a = Agent::one(&f, "openat2");
    let escapes = Escapes::new(&f);
    let Reply::Spawned { handle, .. } = a.ok(Op::Spawn(SpawnSpec {
        command: escapes.command(),
        output_cap: 100,
        ..Default::default()
    })) else {
        panic!()
    };
    escapes.wait_started();
    match a.ok(Op::ProcKill { handle }) {
        Reply::ProcOutput { running, .. } => assert!(!running),
        other => panic!("{other:?}"),
    }
    escapes.assert_all_dead();
    assert_no_children(&a);
}

#[test]
fn engine_gone_kills_processes_in_other_sessions() {
    let f = Fixture::new();
    let mut a = Agent::one(&f, "openat2");
    let escapes = Escapes::new(&f);
    a.send(Op::Run(run(&escapes.command())));
    escapes.wait_started();
    let status = a.close();
    assert!(status.success(), "{status:?}");
    escapes.assert_all_dead();
}

#[test]
fn a_kill_spares_other_commands_orphans_and_orphans_are_reaped() {
    let f = Fixture::new();
    let mut a = Agent::one(&f, "openat2");
    let files = PidFiles::new(&f, &["theirs.pid", "mine.pid"]);
    let (theirs, mine) = (files.0[0].clone(), files.0[1].clone());
    // A background process whose orphan (in its own session) must outlive another's timeout.
    let Reply::Spawned { handle, .. } = a.ok(Op::Spawn(SpawnSpec {
        command: format!(
            "( setsid sleep 1000 & echo $! > {} ); sleep 1000",
            theirs.display()
        ),
        output_cap: 100,
        ..Default::default()
    })) else {
        panic!()
    };
    let theirs = read_pid(&theirs);
    let mut spec = run(&format!(
        "( setsid sleep 1000 & echo $! > {} ); sleep 1000",
        mine.display()
    ));
    spec.timeout_ms = 500;
    let r = ran(&mut a, spec);
    assert!(r.timed_out, "{r:?}");
    let mine = read_pid(&mine);
    assert!(
        wait_dead(mine, 10),
        "the timed-out command's orphan {mine} survived"
    );
    assert!(!pid_dead(theirs), "another command's orphan was killed");
    a.ok(Op::ProcKill { handle });
    assert!(
        wait_dead(theirs, 10),
        "the killed process's orphan {theirs} survived"
    );
    // An orphan that ends by itself is reaped by the agent, not left a zombie.
    let r = ran(
        &mut a,
        run("setsid sh -c 'sleep 0.2' >/dev/null 2>&1 & echo $!"),
    );
    let orphan: u32 = r.stdout.trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{orphan}")).exists() {
        assert!(
            Instant::now() < deadline,
            "orphan {orphan} was never reaped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_no_children(&a);
    // Commands start with no signal blocked (the agent blocks SIGCHLD for itself only).
    let r = ran(&mut a, run("grep SigBlk /proc/self/status"));
    assert_eq!(r.stdout.split_whitespace().nth(1), Some("0000000000000000"));
}
