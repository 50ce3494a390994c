//! What the monitor does to a variant's fresh image, at the exit stop of each successful
//! execve, before the program's first instruction:
//!
//! - maps the monitor's page ([`crate::page`]) at its fixed address;
//! - hides the vDSO from the C library (the aux vector's `AT_SYSINFO_EHDR` becomes
//!   `AT_IGNORE`), so clock_gettime, gettimeofday, time and getcpu are real system calls the
//!   monitor sees and replicates, not reads of a page that differ between variants;
//! - traps rdtsc/rdtscp (`PR_SET_TSC`, `PR_TSC_SIGSEGV`) so the leader's value is given to
//!   every variant;
//! - moves the initial stack down by a per-variant offset (`--diversify stack`): the
//!   argc/argv/envp/auxv words are copied lower and the stack pointer follows, so every
//!   stack address differs between variants even where ASLR would not make it;
//! - reads the 16 `AT_RANDOM` bytes (the leader's are then written into the others: the
//!   C library seeds its stack protector and pointer guard from them).

use crate::page;
use vigil_tracee::{Error, Memory, Stopped, Tracer};

const AT_NULL: u64 = libc::AT_NULL;
const AT_IGNORE: u64 = libc::AT_IGNORE;
const AT_RANDOM: u64 = libc::AT_RANDOM;
const AT_SYSINFO_EHDR: u64 = libc::AT_SYSINFO_EHDR;
const PR_SET_TSC: u64 = libc::PR_SET_TSC as u64;
const PR_TSC_SIGSEGV: u64 = libc::PR_TSC_SIGSEGV as u64;
const MAP_FIXED_NOREPLACE: i32 = libc::MAP_FIXED_NOREPLACE;
/// More words than this before the aux vector's end is not a stack the kernel built.
const MAX_WORDS: usize = 1 << 20;

/// What the setup found in a fresh image.
#[derive(Clone, Copy, Debug)]
pub struct Image {
    /// Where the 16 AT_RANDOM bytes are, if the aux vector has them.
    pub at_random: Option<u64>,
}

/// Why a variant's image could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Tracee(#[from] Error),
    #[error("variant process {pid}: {what}")]
    Image { pid: i32, what: String },
}

/// Sets up a variant stopped at the exit stop of a successful execve. `stack_shift` bytes
/// (a multiple of 16) move its initial stack down.
pub fn fresh_image(
    t: &mut Stopped,
    tracer: &mut Tracer,
    nap_ns: u64,
    stack_shift: u64,
) -> Result<Image, SetupError> {
    let pid = t.tid();
    let bad = |what: String| SetupError::Image { pid, what };
    {
        let mut r = t.remote(tracer)?;
        let got = r.syscall(
            syscalls::Sysno::mmap,
            &[
                page::PAGE,
                page::PAGE_LEN,
                (libc::PROT_READ | libc::PROT_EXEC) as u64,
                (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | MAP_FIXED_NOREPLACE) as u64,
                u64::MAX,
                0,
            ],
        )?;
        if got as u64 != page::PAGE {
            return Err(bad(format!(
                "cannot map the monitor's page at {:#x} (mmap returned {got})",
                page::PAGE
            )));
        }
        let tsc = r.syscall(syscalls::Sysno::prctl, &[PR_SET_TSC, PR_TSC_SIGSEGV])?;
        if tsc != 0 {
            return Err(bad(format!("cannot trap rdtsc (prctl returned {tsc})")));
        }
        r.finish()?;
    }
    let mut mem = Memory::new(pid);
    mem.write(t, page::PAGE, &page::contents(nap_ns))
        .map_err(|e| bad(format!("cannot write the monitor's page: {e}")))?;

    // The initial stack: argc, argv[argc], NULL, envp..., NULL, auxv pairs up to AT_NULL.
    let mut regs = t.regs()?;
    let sp = regs.sp();
    let mut words: Vec<u64> = Vec::with_capacity(512);
    // The words are read a page at a time as the walk needs them (one read for most
    // programs), not one word per read.
    let mut stack: Vec<u8> = Vec::new();
    let mut read_word = |mem: &mut Memory, i: usize| -> Result<u64, SetupError> {
        while stack.len() < 8 * (i + 1) {
            let mut page = [0u8; 4096];
            let at = sp + stack.len() as u64;
            let got = mem
                .read_partial(t, at, &mut page)
                .map_err(|e| bad(format!("cannot read the initial stack: {e}")))?;
            if got == 0 {
                return Err(bad(format!("the initial stack ends at {at:#x}")));
            }
            stack.extend_from_slice(&page[..got]);
        }
        let mut w = [0u8; 8];
        w.copy_from_slice(&stack[8 * i..8 * i + 8]);
        Ok(u64::from_le_bytes(w))
    };
    let argc = read_word(&mut mem, 0)?;
    words.push(argc);
    if argc > MAX_WORDS as u64 {
        return Err(bad(format!("the initial stack says argc is {argc}")));
    }
    // argv and its NULL.
    let mut i = 1usize;
    while i <= argc as usize + 1 {
        words.push(read_word(&mut mem, i)?);
        i += 1;
    }
    // envp up to its NULL.
    loop {
        if i > MAX_WORDS {
            return Err(bad("the initial stack has no end".into()));
        }
        let w = read_word(&mut mem, i)?;
        words.push(w);
        i += 1;
        if w == 0 {
            break;
        }
    }
    let mut at_random = None;
    let mut sysinfo_at = None;
    loop {
        if i > MAX_WORDS {
            return Err(bad("the aux vector has no end".into()));
        }
        let ty = read_word(&mut mem, i)?;
        let val = read_word(&mut mem, i + 1)?;
        match ty {
            AT_RANDOM => at_random = Some(val),
            AT_SYSINFO_EHDR => sysinfo_at = Some(words.len()),
            _ => {}
        }
        words.push(ty);
        words.push(val);
        i += 2;
        if ty == AT_NULL {
            break;
        }
    }
    if let Some(at) = sysinfo_at {
        words[at] = AT_IGNORE;
    }
    let new_sp = sp - stack_shift;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    mem.write(t, new_sp, &bytes)
        .map_err(|e| bad(format!("cannot write the initial stack: {e}")))?;
    if new_sp != sp {
        regs.0.rsp = new_sp;
        t.set_regs(&regs)?;
    }
    Ok(Image { at_random })
}

/// Reads the 16 AT_RANDOM bytes.
pub fn read_random(t: &Stopped, at: u64) -> Result<[u8; 16], SetupError> {
    let mut b = [0u8; 16];
    t.read_memory(at, &mut b).map_err(|e| SetupError::Image {
        pid: t.tid(),
        what: format!("cannot read AT_RANDOM: {e}"),
    })?;
    Ok(b)
}

/// Writes the leader's AT_RANDOM bytes into a variant.
pub fn write_random(t: &mut Stopped, at: u64, bytes: &[u8; 16]) -> Result<(), SetupError> {
    t.write_memory(at, bytes).map_err(|e| SetupError::Image {
        pid: t.tid(),
        what: format!("cannot write AT_RANDOM: {e}"),
    })
}
