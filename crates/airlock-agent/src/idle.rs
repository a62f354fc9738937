//! `airlock-agent idle`: the container's main process, which only waits to be stopped.
//! Blocks in `pause()` forever and exits 0 on SIGTERM or SIGINT.

extern "C" fn stop(_signal: libc::c_int) {
    // SAFETY: `_exit` is async-signal-safe and ends the process at once.
    unsafe { libc::_exit(0) };
}

pub fn idle() -> i32 {
    let handler = stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: installs a handler that only calls the async-signal-safe `_exit`.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
    loop {
        // SAFETY: pause(2) has no preconditions; it returns only after a handled signal.
        unsafe { libc::pause() };
    }
}
