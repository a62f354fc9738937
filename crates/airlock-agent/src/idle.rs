//! `airlock-agent idle`: the container's main process (PID 1). It gives up every capability,
//! reaps orphaned processes, and ends the container when its engine is gone.
//!
//! The engine talks to `airlock-agent serve`, an attached exec: when the engine exits or is
//! killed, that stream closes and the serving agent exits. Once a serving agent has run and
//! none is left — or none ever came within [`FIRST_SERVE_GRACE`] — this process exits, so the
//! container stops (and, created with auto-remove, is removed) without the engine's help.

use std::time::{Duration, Instant};

/// How long a new container may wait for its first serving agent.
const FIRST_SERVE_GRACE: Duration = Duration::from_secs(120);
/// How often the process table is looked at (a scan of /proc in a small container).
const TICK_MS: libc::c_long = 250;
/// How often it is looked at while no serving agent has been seen yet, for the first seconds.
const EARLY_TICK_MS: libc::c_long = 10;
const EARLY: Duration = Duration::from_secs(15);

extern "C" fn stop(_signal: libc::c_int) {
    // SAFETY: `_exit` is async-signal-safe and ends the process at once.
    unsafe { libc::_exit(0) };
}

pub fn idle() -> i32 {
    // Started as root so that the setup step's exec has its capabilities; this process needs
    // none of them.
    if let Err(e) = crate::server::mounts::drop_all_capabilities() {
        eprintln!(
            "airlock-agent idle: cannot drop capabilities: {}",
            std::io::Error::from_raw_os_error(e)
        );
        return 1;
    }
    let handler = stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: installs handlers that only call the async-signal-safe `_exit`; blocks SIGCHLD so
    // that it is only taken by `sigtimedwait` below (no reap is ever missed).
    let children = unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let started = Instant::now();
    let mut served = false;
    loop {
        // Orphans of the workload are re-parented to this process: reap every one.
        loop {
            let mut status = 0;
            // SAFETY: plain waitpid with a valid status pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
        }
        let serving = serving_agent_running();
        served |= serving;
        if !serving && (served || started.elapsed() > FIRST_SERVE_GRACE) {
            return 0;
        }
        // Until the first serving agent is seen, look often: one whose engine died at once
        // may live for less than a tick, and missing it would keep the container for the grace.
        let tick_ms = if served || started.elapsed() > EARLY {
            TICK_MS
        } else {
            EARLY_TICK_MS
        };
        let tick = libc::timespec {
            tv_sec: 0,
            tv_nsec: tick_ms * 1_000_000,
        };
        // SAFETY: `children` is a valid set; waits for SIGCHLD or the tick, whichever is first.
        unsafe { libc::sigtimedwait(&children, std::ptr::null_mut(), &tick) };
    }
}

/// Whether an `airlock-agent serve` runs in this container now.
fn serving_agent_running() -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true; // cannot tell: keep the container
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .any(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|cmd| {
                let mut args = cmd.split(|b| *b == 0);
                let program = args.next().unwrap_or_default();
                program.ends_with(b"airlock-agent") && args.next() == Some(b"serve".as_slice())
            })
        })
}
