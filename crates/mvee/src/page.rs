//! The monitor's page in every variant, and the seccomp filter that lets only it through.
//!
//! Every system call of a variant stops at the monitor (SECCOMP_RET_TRACE), except those
//! made from two instructions of a page the monitor maps at the same fixed address in every
//! variant after each exec:
//!
//! - the `syscall` at [`SITE`]: where the monitor's own injected calls run (mapping this page
//!   needs one trapped call; everything after it runs without a stop per call);
//! - the `syscall` in the wait loop at [`LOOP`]: a variant that must wait for a signal (see
//!   signals in monitor.rs) sleeps there, in short naps, until the signal interrupts it. If
//!   the bound passes first, the loop ends with a call from an address the filter does not
//!   let through: that stop tells the monitor the variant never got the signal.
//!
//! futex is let through too: lock contention between a variant's threads differs from one
//! variant to the next by nature, and futex has no effect outside the process.
//!
//! The page also holds the path a placeholder fd is opened from ([`DEVNULL`]) and the
//! loop's nap length ([`NAP`]). The code is written by hand (a few bytes, listed below)
//! because nothing else in the monitor assembles code.

/// Where the page lives in every variant: above the shared-memory window of capture-ptrace
/// and far from where the kernel puts mappings, stacks and heaps.
pub const PAGE: u64 = 0x6f00_0000_0000;
pub const PAGE_LEN: u64 = 4096;
/// `syscall; int3`: the injected calls' instruction.
pub const SITE: u64 = PAGE;
/// The wait loop's first instruction.
pub const LOOP: u64 = PAGE + 0x10;
/// The address after the loop's `syscall` (what seccomp reports as its instruction pointer).
pub const LOOP_SYSCALL_END: u64 = PAGE + 0x26;
/// The address after the loop's closing `syscall`: a stop here is a variant that waited in
/// vain.
pub const GAVE_UP_END: u64 = PAGE + 0x32;
/// "/dev/null\0".
pub const DEVNULL: u64 = PAGE + 0x100;
/// A `struct timespec`: one nap of the loop (the loop's `lea` points here).
#[cfg(test)]
pub const NAP: u64 = PAGE + 0x110;
/// How many naps the loop takes before it gives up.
pub const NAPS: u32 = 100;

/// The page's contents (with the nap length the monitor fills in).
pub fn contents(nap_ns: u64) -> Vec<u8> {
    let mut p = vec![0u8; 0x120];
    // SITE: syscall; int3
    p[0..3].copy_from_slice(&[0x0f, 0x05, 0xcc]);
    let n = NAPS.to_le_bytes();
    let code: [u8; 0x23] = [
        // 0x10: mov r12d, NAPS
        0x41, 0xbc, n[0], n[1], n[2], n[3], // 0x16: mov eax, SYS_nanosleep (35)
        0xb8, 0x23, 0x00, 0x00, 0x00,
        // 0x1b: lea rdi, [rip + 0xee]  (0x22 + 0xee = 0x110 = NAP)
        0x48, 0x8d, 0x3d, 0xee, 0x00, 0x00, 0x00, // 0x22: xor esi, esi
        0x31, 0xf6, // 0x24: syscall
        0x0f, 0x05, // 0x26: dec r12
        0x49, 0xff, 0xcc, // 0x29: jnz 0x16
        0x75, 0xeb, // 0x2b: mov eax, SYS_getppid (110): the call that says "gave up"
        0xb8, 0x6e, 0x00, 0x00, 0x00, // 0x30: syscall
        0x0f, 0x05, // 0x32: int3
        0xcc,
    ];
    p[0x10..0x10 + code.len()].copy_from_slice(&code);
    p[0x100..0x10a].copy_from_slice(b"/dev/null\0");
    let secs = nap_ns / 1_000_000_000;
    let nanos = nap_ns % 1_000_000_000;
    p[0x110..0x118].copy_from_slice(&secs.to_le_bytes());
    p[0x118..0x120].copy_from_slice(&nanos.to_le_bytes());
    p
}

use vigil_tracee::bpf::{
    AUDIT_ARCH_X86_64, BPF_JEQ_K, BPF_JSET_K, BPF_LD_W_ABS, BPF_RET_K, OFFSET_ARCH, OFFSET_IP_HI,
    OFFSET_IP_LO, OFFSET_NR, SECCOMP_RET_ALLOW, SECCOMP_RET_TRACE, X32_SYSCALL_BIT, jump, stmt,
};

/// The filter every variant runs under (installed before its first exec; inherited by its
/// children and kept across exec).
pub fn filter() -> Vec<libc::sock_filter> {
    let futex = syscalls::Sysno::futex.id() as u32;
    vec![
        stmt(BPF_LD_W_ABS, OFFSET_ARCH),
        jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(BPF_RET_K, SECCOMP_RET_TRACE),
        stmt(BPF_LD_W_ABS, OFFSET_NR),
        jump(BPF_JSET_K, X32_SYSCALL_BIT, 0, 1),
        stmt(BPF_RET_K, SECCOMP_RET_TRACE),
        jump(BPF_JEQ_K, futex, 0, 1),
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
        stmt(BPF_LD_W_ABS, OFFSET_IP_HI),
        jump(BPF_JEQ_K, (PAGE >> 32) as u32, 0, 4),
        stmt(BPF_LD_W_ABS, OFFSET_IP_LO),
        jump(BPF_JEQ_K, (SITE + 2) as u32, 1, 0),
        jump(BPF_JEQ_K, LOOP_SYSCALL_END as u32, 0, 1),
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
        stmt(BPF_RET_K, SECCOMP_RET_TRACE),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_offsets_match_the_code() {
        let p = contents(1_000_000);
        // The loop's syscall ends where the filter lets it through.
        assert_eq!(
            &p[(LOOP_SYSCALL_END - PAGE - 2) as usize..][..2],
            &[0x0f, 0x05]
        );
        assert_eq!(&p[(GAVE_UP_END - PAGE - 2) as usize..][..2], &[0x0f, 0x05]);
        assert_eq!(&p[(SITE - PAGE) as usize..][..2], &[0x0f, 0x05]);
        // The jnz goes back to the nanosleep setup.
        assert_eq!(0x2b_i64 + (p[0x2a] as i8) as i64, 0x16);
        // lea's target is NAP.
        assert_eq!(0x22 + 0xee, (NAP - PAGE) as usize);
        assert_eq!(&p[0x100..0x10a], b"/dev/null\0");
        // The ALLOW after the page checks is reached from both addresses.
        let f = filter();
        assert_eq!(f[9].jf as usize, 13 - 9);
    }
}
