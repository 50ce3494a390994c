//! Signals sent to vigil while it traces a command.
//!
//! Ctrl-C and Ctrl-\ from the terminal already reach the command (same foreground process
//! group), so vigil ignores them and lets the command decide; it then exits with the command's
//! status. Signals sent to vigil alone (kill PID, a supervisor's SIGTERM/SIGHUP) are passed on
//! to the command, so stopping vigil stops what it traces.

use std::sync::atomic::{AtomicI32, Ordering};

static ROOT: AtomicI32 = AtomicI32::new(0);
const FORWARDED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let code = if info.is_null() {
        0
    } else {
        unsafe { (*info).si_code }
    };
    // From the terminal (SI_KERNEL) SIGINT/SIGQUIT went to the command too: don't double it.
    let from_tty = code == libc::SI_KERNEL && (sig == libc::SIGINT || sig == libc::SIGQUIT);
    let root = ROOT.load(Ordering::Relaxed);
    if root > 0 && !from_tty {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(root, sig) };
    }
}

/// Installed for the duration of a capture; the previous handlers come back on drop.
pub struct Forwarding {
    old: Vec<(libc::c_int, libc::sigaction)>,
}

impl Forwarding {
    pub fn install(root: i32) -> Forwarding {
        ROOT.store(root, Ordering::Relaxed);
        let mut old = Vec::new();
        for sig in FORWARDED {
            // SAFETY: a zeroed sigaction with a valid handler and flags is a valid argument.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = forward as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                let mut prev: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &sa, &mut prev) == 0 {
                    old.push((sig, prev));
                }
            }
        }
        Forwarding { old }
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        ROOT.store(0, Ordering::Relaxed);
        for (sig, prev) in &self.old {
            // SAFETY: restoring the action we saved.
            unsafe { libc::sigaction(*sig, prev, std::ptr::null_mut()) };
        }
    }
}
