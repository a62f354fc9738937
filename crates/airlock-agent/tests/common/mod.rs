//! Test harness: starts the real `airlock-agent serve` binary over pipes with roots in
//! temporary directories, and talks the wire protocol to it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use airlock_agent::{
    AgentConfig, AgentError, Content, ErrorKind, Op, Outcome, Reply, Request, Response, RootSpec,
};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_airlock-agent");

/// Both resolvers: the default (openat2 on this kernel) and the forced fallback walk.
pub const RESOLVERS: [&str; 2] = ["openat2", "walk"];

/// A workspace in a temp dir: `<tmp>/ws` is the root, `<tmp>/outside` holds a secret.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub ws: PathBuf,
    pub outside: PathBuf,
}

pub const SECRET: &str = "TOP-SECRET-OUTSIDE";

impl Fixture {
    pub fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(ws.join("src")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), SECRET).unwrap();
        std::fs::write(ws.join("src/a.txt"), "hello\nworld\n").unwrap();
        Fixture { tmp, ws, outside }
    }

    pub fn root(&self) -> String {
        self.ws.to_str().unwrap().to_string()
    }

    pub fn spec(&self) -> RootSpec {
        RootSpec {
            name: "ws".into(),
            path: self.root(),
            read_only: false,
            hide: vec![],
            protect: vec![],
            case_insensitive: false,
        }
    }

    pub fn write(&self, rel: &str, data: &str) {
        let p = self.ws.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    pub fn symlink(&self, target: impl AsRef<Path>, rel: &str) {
        std::os::unix::fs::symlink(target, self.ws.join(rel)).unwrap();
    }

    /// Symlinks every escape route into the workspace: `link_out` → outside dir (absolute),
    /// `link_rel` → `../outside` (relative), `file_link` → the outside secret file.
    pub fn escape_links(&self) {
        self.symlink(&self.outside, "link_out");
        self.symlink("../outside", "link_rel");
        self.symlink(self.outside.join("secret"), "file_link");
        self.symlink("../../outside", "src/deep_rel");
    }

    /// A second root, read-only: the empty directory `<tmp>/data`, made here.
    pub fn read_only_root(&self) -> RootSpec {
        let data = self.tmp.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        RootSpec {
            name: "data".into(),
            path: data.to_str().unwrap().into(),
            read_only: true,
            ..self.spec()
        }
    }

    /// Names at the top of the workspace that look like the agent's temporary files.
    pub fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(&self.ws)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("airlock"))
            .collect()
    }

    /// The outside directory is untouched: only the secret, with its content.
    pub fn assert_outside_untouched(&self) {
        let names: Vec<String> = std::fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["secret".to_string()], "outside dir changed");
        assert_eq!(
            std::fs::read_to_string(self.outside.join("secret")).unwrap(),
            SECRET
        );
    }
}

/// A running agent.
pub struct Agent {
    pub child: Child,
    stdin: Option<ChildStdin>,
    rx: mpsc::Receiver<Response>,
    /// Raw lines, in arrival order (ids), for ordering assertions.
    pub order: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
    stash: HashMap<u64, Response>,
    next: u64,
}

impl Agent {
    pub fn start(roots: Vec<RootSpec>, resolver: &str) -> Agent {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--config", &config_json(roots)]);
        Agent::start_command(cmd, resolver)
    }

    /// Starts the agent through `cmd` (which must end up exec'ing `serve`).
    pub fn start_command(mut cmd: Command, resolver: &str) -> Agent {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env("AIRLOCK_AGENT_RESOLVER", resolver);
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let order2 = order.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let resp: Response = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("agent wrote a bad line {line:?}: {e}"));
                order2.lock().unwrap().push(resp.id);
                if tx.send(resp).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut agent = Agent {
            child,
            stdin,
            rx,
            order,
            stash: HashMap::new(),
            next: 1,
        };
        match agent.call(Op::Hello) {
            Ok(Reply::Hello { resolver: r, .. }) => assert_eq!(r, resolver),
            other => panic!("hello failed: {other:?}"),
        }
        agent
    }

    pub fn one(f: &Fixture, resolver: &str) -> Agent {
        Agent::start(vec![f.spec()], resolver)
    }

    pub fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    pub fn send(&mut self, op: Op) -> u64 {
        let id = self.next;
        self.next += 1;
        let line = serde_json::to_string(&Request {
            id,
            op,
            exact: false,
        })
        .unwrap();
        self.send_raw(&line);
        id
    }

    pub fn wait(&mut self, id: u64) -> Outcome {
        self.wait_for(id, Duration::from_secs(30))
    }

    pub fn wait_for(&mut self, id: u64, timeout: Duration) -> Outcome {
        if let Some(r) = self.stash.remove(&id) {
            return r.outcome;
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let r = self
                .rx
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no response to request {id}: {e}"));
            if r.id == id {
                return r.outcome;
            }
            self.stash.insert(r.id, r);
        }
    }

    pub fn call(&mut self, op: Op) -> Result<Reply, AgentError> {
        let id = self.send(op);
        match self.wait(id) {
            Outcome::Ok(r) => Ok(r),
            Outcome::Err(e) => Err(e),
        }
    }

    pub fn ok(&mut self, op: Op) -> Reply {
        let desc = format!("{op:?}");
        self.call(op)
            .unwrap_or_else(|e| panic!("{desc} failed: {e:?}"))
    }

    pub fn err(&mut self, op: Op) -> AgentError {
        let desc = format!("{op:?}");
        match self.call(op) {
            Ok(r) => panic!("{desc} should have failed, got {r:?}"),
            Err(e) => e,
        }
    }

    /// Asserts that `op` fails with `kind`; returns the message.
    pub fn err_kind(&mut self, op: Op, kind: ErrorKind) -> String {
        let desc = format!("{op:?}");
        let e = self.err(op);
        assert_eq!(e.kind, kind, "{desc}: {}", e.message);
        e.message
    }

    pub fn read_text(&mut self, path: &str) -> String {
        match self.ok(read(path)) {
            Reply::Read {
                content: Content::Text(t),
                ..
            } => t,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Closes the agent's stdin (the engine going away) and waits for it to exit.
    pub fn close(mut self) -> std::process::ExitStatus {
        self.stdin = None;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(std::time::Instant::now() < deadline, "agent did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    /// Closes stdin first, so that the agent kills what it started, then makes sure it is gone.
    fn drop(&mut self) {
        self.stdin = None;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn config_json(roots: Vec<RootSpec>) -> String {
    serde_json::to_string(&AgentConfig {
        roots,
        ..Default::default()
    })
    .unwrap()
}

pub fn read(path: &str) -> Op {
    Op::Read {
        path: path.into(),
        offset: None,
        limit: None,
    }
}

pub fn write(path: &str, data: &str) -> Op {
    Op::Write {
        path: path.into(),
        content: Content::Text(data.into()),
        create_dirs: false,
    }
}

pub fn text(s: &str) -> Content {
    Content::Text(s.into())
}

/// Whether process `pid` is gone (or a zombie waiting for a reaper).
pub fn pid_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.trim_start().starts_with('Z') || rest.trim_start().starts_with('X')
            })
            .unwrap_or(false),
    }
}

/// Waits up to `secs` for `pid` to be gone.
pub fn wait_dead(pid: u32, secs: u64) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if pid_dead(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    pid_dead(pid)
}

/// Reads a pid a command wrote to a file, waiting for it to appear.
pub fn read_pid(path: &Path) -> u32 {
    for _ in 0..250 {
        if let Ok(s) = std::fs::read_to_string(path) {
            if let Ok(pid) = s.trim().parse() {
                return pid;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no pid in {}", path.display());
}
