//! The `serve` loop: reads request lines, runs each on a worker thread, writes responses.
//! Owns the shared state (roots, processes) and the single, locked stdout.

mod changes;
mod diff;
mod errors;
mod files;
pub mod masks;
pub mod mounts;
mod patterns;
mod process;
mod quarantine;
mod resolve;
mod sys;
mod tree;
mod walk;

use airlock_agent::{
    AgentConfig, AgentError, ErrorKind, Op, Outcome, Reply, Request, Response, PROTOCOL_VERSION,
};
use std::io::{BufRead, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// State shared by all workers.
struct Ctx {
    roots: resolve::Roots,
    procs: process::Procs,
    /// Takes protected entries that commands created (one sweep at a time).
    sweeper: quarantine::Sweeper,
    /// Scans roots for change capture, keeping file hashes between scans.
    capture: changes::Capture,
    out: Mutex<std::io::Stdout>,
    /// Requests still being handled, for a short drain at exit.
    in_flight: Mutex<usize>,
    idle: Condvar,
}

impl Ctx {
    /// Writes one response line; a broken stdout means the engine is gone.
    fn send(&self, response: &Response) {
        let mut line = match serde_json::to_vec(response) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("airlock-agent: cannot encode response {}: {e}", response.id);
                return;
            }
        };
        line.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if out.write_all(&line).and_then(|()| out.flush()).is_err() {
            self.procs.kill_all();
            std::process::exit(0);
        }
    }
}

impl Ctx {
    fn track(&self, delta: isize) {
        let mut n = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            self.idle.notify_all();
        }
    }

    /// Waits until no request is being handled, or `deadline`.
    fn drain(&self, deadline: Instant) {
        let mut n = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            n = match self.idle.wait_timeout(n, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

/// Runs `serve --config JSON` until stdin closes; returns the exit code.
pub fn serve(config_json: &str) -> i32 {
    let config: AgentConfig = match serde_json::from_str(config_json) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("airlock-agent: bad --config: {e}");
            return 2;
        }
    };
    // The channel is the agent's: processes of the workload's uid cannot open our stdin/stdout
    // through /proc/<pid>/fd (children start dumpable again when they execute).
    mounts::make_undumpable();
    // Before any thread starts: the agent becomes the reaper of its commands' orphans.
    let procs = process::Procs::start(config.first_handle);
    let roots = match resolve::Roots::new(&config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("airlock-agent: {e}");
            return 2;
        }
    };
    eprintln!(
        "airlock-agent: serving {} (resolver: {})",
        roots.paths().join(", "),
        roots.mode.name()
    );
    let ctx = Arc::new(Ctx {
        roots,
        procs,
        sweeper: quarantine::Sweeper::new(),
        capture: changes::Capture::new(),
        out: Mutex::new(std::io::stdout()),
        in_flight: Mutex::new(0),
        idle: Condvar::new(),
    });
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("airlock-agent: reading stdin failed: {e}");
                break;
            }
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let request: Request = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => {
                ctx.send(&malformed(&line, &e));
                continue;
            }
        };
        if matches!(request.op, Op::Run(_)) {
            ctx.procs.register_run(request.id);
        }
        let id = request.id;
        ctx.track(1);
        // Handed to whichever start of the worker succeeds (a start is retried while the
        // sandbox is out of pids for a moment).
        let slot = Arc::new(Mutex::new(Some(request)));
        let spawned = process::while_out_of_pids(|| {
            let worker = Arc::clone(&ctx);
            let slot = Arc::clone(&slot);
            std::thread::Builder::new()
                .name(format!("req-{id}"))
                .spawn(move || {
                    let Some(request) = slot.lock().ok().and_then(|mut s| s.take()) else {
                        return;
                    };
                    let exact = request.exact;
                    let outcome = match resolve::exactly(exact, || handle(&worker, request)) {
                        Ok(reply) => Outcome::Ok(reply),
                        Err(e) => Outcome::Err(e),
                    };
                    worker.send(&Response { id, outcome });
                    worker.track(-1);
                })
        });
        if let Err(e) = spawned {
            ctx.track(-1);
            ctx.send(&Response {
                id,
                outcome: Outcome::Err(errors::err(
                    ErrorKind::Io,
                    format!("the agent is overloaded (cannot start a worker: {e}); retry"),
                )),
            });
        }
    }
    // The engine is gone: nothing may outlive it. Answers already under way get a moment.
    ctx.procs.kill_all();
    ctx.drain(Instant::now() + Duration::from_secs(2));
    // Anything a request still in flight started meanwhile.
    ctx.procs.kill_all();
    0
}

/// The response to a line that is not a valid request: its id if one can be read, else 0.
fn malformed(line: &[u8], e: &serde_json::Error) -> Response {
    let id = serde_json::from_slice::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("id").and_then(serde_json::Value::as_u64))
        .unwrap_or(0);
    Response {
        id,
        outcome: Outcome::Err(errors::invalid(format!("malformed request: {e}"))),
    }
}

fn handle(ctx: &Ctx, request: Request) -> Result<Reply, AgentError> {
    let roots = &ctx.roots;
    match request.op {
        Op::Hello => Ok(Reply::Hello {
            version: PROTOCOL_VERSION,
            roots: roots.paths().to_vec(),
            uid: sys::uid(),
            resolver: roots.mode.name().to_string(),
        }),
        Op::Read {
            path,
            offset,
            limit,
        } => files::read(roots, &path, offset, limit),
        Op::Write {
            path,
            content,
            create_dirs,
        } => files::write(roots, &path, &content, create_dirs),
        Op::Edit {
            path,
            edits,
            dry_run,
        } => files::edit(roots, &path, &edits, dry_run),
        Op::List { path } => walk::list(roots, &path),
        Op::Tree {
            path,
            depth,
            max_entries,
        } => walk::tree(roots, &path, depth, max_entries),
        Op::Glob {
            path,
            pattern,
            max_results,
        } => walk::glob(roots, &path, &pattern, max_results),
        Op::Grep {
            path,
            regex,
            glob,
            case_insensitive,
            max_results,
        } => walk::grep(
            roots,
            &path,
            &regex,
            glob.as_deref(),
            case_insensitive,
            max_results,
        ),
        Op::Move {
            from,
            to,
            overwrite,
        } => files::rename(roots, &from, &to, overwrite),
        Op::Delete { path, recursive } => files::delete(roots, &path, recursive),
        Op::Mkdir { path } => files::mkdir(roots, &path),
        Op::Stat { path } => files::stat(roots, &path),
        Op::Resolve { paths } => Ok(Reply::Resolved {
            paths: paths
                .iter()
                .map(|p| roots.canonical(p))
                .collect::<Result<_, _>>()?,
        }),
        Op::Run(spec) => ctx.procs.run(roots, request.id, &spec),
        Op::Spawn(spec) => ctx.procs.spawn(roots, &spec),
        Op::ProcRead { handle, wait_ms } => ctx.procs.read(handle, wait_ms),
        Op::ProcWrite {
            handle,
            data,
            close,
        } => ctx.procs.write(handle, &data, close),
        Op::ProcKill { handle } => ctx.procs.kill(handle),
        Op::ProcList => Ok(ctx.procs.list()),
        Op::Cancel { request } => ctx.procs.cancel(request),
        Op::Quarantine { if_busy } => Ok(ctx.sweeper.sweep(roots, if_busy)),
        Op::Scan {
            root,
            exclude,
            paths,
        } => ctx.capture.scan(roots, &root, &exclude, &paths),
        Op::Fetch { path, hash } => changes::fetch(roots, &path, &hash),
        Op::Restore {
            steps,
            force,
            dry_run,
        } => changes::restore(roots, &steps, force, dry_run),
    }
}
