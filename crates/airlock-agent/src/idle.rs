//! `airlock-agent idle`: the container's main process (PID 1). It gives up every capability,
//! reaps orphaned processes, and exits 0 on SIGTERM or SIGINT.

extern "C" fn stop(_signal: libc::c_int) {
    // SAFETY: `_exit` is async-signal-safe and ends the process at once.
    unsafe { libc::_exit(0) };
}

extern "C" fn wake(_signal: libc::c_int) {}

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
    let on_child = wake as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: installs handlers that only call the async-signal-safe `_exit`, or nothing; then
    // blocks SIGCHLD so that it is only taken inside `sigsuspend` (no reap is ever missed).
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGCHLD, on_child);
        let mut block: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut block);
        libc::sigaddset(&mut block, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &block, std::ptr::null_mut());
    }
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
        // SAFETY: waits with SIGCHLD unblocked until a signal is handled; `empty` is valid.
        unsafe {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigsuspend(&empty);
        }
    }
}
