//! Thin wrappers over the ptrace requests this crate makes, with raw signal numbers (nix's
//! `Signal` cannot name real-time signals) and typed errors (ESRCH → [`Error::Gone`]).

use crate::error::Error;
use crate::regs::{FpRegs, Regs};
use crate::stop::SigInfo;
use nix::errno::Errno;
use nix::unistd::Pid;

fn req(
    what: &'static str,
    request: libc::c_uint,
    tid: i32,
    addr: usize,
    data: usize,
) -> Result<libc::c_long, Error> {
    Errno::clear();
    // SAFETY: every caller passes either integers or a pointer to a live, correctly sized
    // buffer for the request (documented at each call site).
    let r = unsafe {
        libc::ptrace(
            request,
            tid,
            addr as *mut libc::c_void,
            data as *mut libc::c_void,
        )
    };
    if r == -1 {
        let e = Errno::last();
        if e != Errno::UnknownErrno {
            return Err(Error::ptrace(what, tid, e));
        }
    }
    Ok(r)
}

/// Resumes with `request` (PTRACE_CONT, PTRACE_SYSCALL, PTRACE_SINGLESTEP, PTRACE_LISTEN,
/// PTRACE_DETACH), delivering `sig` (0: none).
pub(crate) fn resume(
    what: &'static str,
    request: libc::c_uint,
    tid: i32,
    sig: i32,
) -> Result<(), Error> {
    req(what, request, tid, 0, sig as usize).map(|_| ())
}

pub(crate) fn interrupt(tid: i32) -> Result<(), Error> {
    req("PTRACE_INTERRUPT", libc::PTRACE_INTERRUPT, tid, 0, 0).map(|_| ())
}

pub(crate) fn syscall_info(tid: i32) -> Result<libc::ptrace_syscall_info, Error> {
    nix::sys::ptrace::syscall_info(Pid::from_raw(tid))
        .map_err(|e| Error::ptrace("PTRACE_GET_SYSCALL_INFO", tid, e))
}

pub(crate) fn siginfo(tid: i32) -> Result<SigInfo, Error> {
    nix::sys::ptrace::getsiginfo(Pid::from_raw(tid))
        .map(|raw| SigInfo { raw })
        .map_err(|e| Error::ptrace("PTRACE_GETSIGINFO", tid, e))
}

pub(crate) fn set_siginfo(tid: i32, info: &SigInfo) -> Result<(), Error> {
    nix::sys::ptrace::setsiginfo(Pid::from_raw(tid), &info.raw)
        .map_err(|e| Error::ptrace("PTRACE_SETSIGINFO", tid, e))
}

pub(crate) fn event_msg(tid: i32) -> Result<u64, Error> {
    nix::sys::ptrace::getevent(Pid::from_raw(tid))
        .map(|m| m as u64)
        .map_err(|e| Error::ptrace("PTRACE_GETEVENTMSG", tid, e))
}

pub(crate) fn getregs(tid: i32) -> Result<Regs, Error> {
    nix::sys::ptrace::getregs(Pid::from_raw(tid))
        .map(Regs)
        .map_err(|e| Error::ptrace("PTRACE_GETREGS", tid, e))
}

pub(crate) fn setregs(tid: i32, regs: &Regs) -> Result<(), Error> {
    nix::sys::ptrace::setregs(Pid::from_raw(tid), regs.0)
        .map_err(|e| Error::ptrace("PTRACE_SETREGS", tid, e))
}

pub(crate) fn getfpregs(tid: i32) -> Result<FpRegs, Error> {
    // SAFETY: user_fpregs_struct is plain integers; all-zero is a valid value.
    let mut fp: libc::user_fpregs_struct = unsafe { std::mem::zeroed() };
    // PTRACE_GETFPREGS writes one user_fpregs_struct at `data`, which `fp` is.
    req(
        "PTRACE_GETFPREGS",
        libc::PTRACE_GETFPREGS,
        tid,
        0,
        &mut fp as *mut _ as usize,
    )?;
    Ok(FpRegs(fp))
}

pub(crate) fn setfpregs(tid: i32, fp: &FpRegs) -> Result<(), Error> {
    // PTRACE_SETFPREGS reads one user_fpregs_struct at `data`.
    req(
        "PTRACE_SETFPREGS",
        libc::PTRACE_SETFPREGS,
        tid,
        0,
        &fp.0 as *const _ as usize,
    )
    .map(|_| ())
}

/// The blocked signal mask (PTRACE_GETSIGMASK), as the kernel's 64-bit set.
pub(crate) fn get_sigmask(tid: i32) -> Result<u64, Error> {
    let mut mask = 0u64;
    // PTRACE_GETSIGMASK takes the set's size in `addr` and writes 8 bytes at `data`.
    req(
        "PTRACE_GETSIGMASK",
        libc::PTRACE_GETSIGMASK,
        tid,
        8,
        &mut mask as *mut u64 as usize,
    )?;
    Ok(mask)
}

pub(crate) fn set_sigmask(tid: i32, mask: u64) -> Result<(), Error> {
    // PTRACE_SETSIGMASK takes the set's size in `addr` and reads 8 bytes at `data`.
    req(
        "PTRACE_SETSIGMASK",
        libc::PTRACE_SETSIGMASK,
        tid,
        8,
        &mask as *const u64 as usize,
    )
    .map(|_| ())
}

pub(crate) fn seize(tid: i32, options: i32) -> Result<(), Errno> {
    // SAFETY: PTRACE_SEIZE takes the options as `data` and no pointers.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_SEIZE,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            options as usize as *mut libc::c_void,
        )
    };
    if r == -1 { Err(Errno::last()) } else { Ok(()) }
}
