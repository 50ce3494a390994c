//! The seccomp-bpf filter installed in the traced command before exec: selected syscalls stop
//! the tracee (SECCOMP_RET_TRACE), everything else runs at native speed.
//!
//! Written by hand rather than with seccompiler: seccompiler's filters kill the process on a
//! syscall from another ABI, which would change the traced program's behaviour. vigil must
//! instead *see* those calls (i386 `int 0x80` and x32 calls from a 64-bit process are a known
//! way around naive filters), so every call from another ABI is traced.

use std::collections::BTreeSet;

use vigil_tracee::bpf::{
    AUDIT_ARCH_X86_64, BPF_JA, BPF_JEQ_K, BPF_JGE_K, BPF_JGT_K, BPF_JSET_K, BPF_LD_W_ABS,
    BPF_RET_K, OFFSET_ARCH, OFFSET_ARGS, OFFSET_NR, SECCOMP_RET_ALLOW, SECCOMP_RET_TRACE,
    X32_SYSCALL_BIT, jump, stmt,
};

/// A call traced only when some bits of one of its arguments are set (clone with
/// CLONE_UNTRACED): `(number, argument index, mask)`.
pub type ArgTrap = (u32, u32, u32);

/// A call traced only when one of its pointer arguments lies in an address window (the
/// shared mappings of smo.rs): `(number, argument index)`; the window is given by the high
/// 32 bits of its addresses, `[lo, hi)`.
pub type WindowTrap = (u32, u32);

/// The filter program. `trace_all` traces every call; otherwise the x86_64 numbers in `nrs`,
/// the calls of `arg_traps` (not in `nrs`) whose argument has one of the mask's bits set, and
/// those of `window_traps` (not in `nrs`) whose argument's high word is in `window`.
pub fn build(
    trace_all: bool,
    nrs: &BTreeSet<u32>,
    arg_traps: &[ArgTrap],
    window_traps: &[WindowTrap],
    window: (u32, u32),
) -> Vec<libc::sock_filter> {
    if trace_all {
        return vec![stmt(BPF_RET_K, SECCOMP_RET_TRACE)];
    }
    let mut prog = vec![
        stmt(BPF_LD_W_ABS, OFFSET_ARCH),
        jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(BPF_RET_K, SECCOMP_RET_TRACE), // i386 (or any other ABI): trace everything
        stmt(BPF_LD_W_ABS, OFFSET_NR),
        jump(BPF_JSET_K, X32_SYSCALL_BIT, 0, 1),
        stmt(BPF_RET_K, SECCOMP_RET_TRACE), // x32: trace everything
    ];
    for &(nr, arg, mask) in arg_traps.iter().filter(|(nr, _, _)| !nrs.contains(nr)) {
        // [jeq nr ? next : skip 4] [ld arg (low word)] [jset mask ? next : skip 1]
        // [ret TRACE] [ret ALLOW]; A still holds the number when the jump is taken.
        prog.push(jump(BPF_JEQ_K, nr, 0, 4));
        prog.push(stmt(BPF_LD_W_ABS, OFFSET_ARGS + 8 * arg));
        prog.push(jump(BPF_JSET_K, mask, 0, 1));
        prog.push(stmt(BPF_RET_K, SECCOMP_RET_TRACE));
        prog.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    }
    for &(nr, arg) in window_traps.iter().filter(|(nr, _)| !nrs.contains(nr)) {
        // [jeq nr ? next : skip 5] [ld arg (high word)] [jge lo ? next : skip 2]
        // [jge hi ? skip 1 : next] [ret TRACE] [ret ALLOW]
        prog.push(jump(BPF_JEQ_K, nr, 0, 5));
        prog.push(stmt(BPF_LD_W_ABS, OFFSET_ARGS + 8 * arg + 4));
        prog.push(jump(BPF_JGE_K, window.0, 0, 2));
        prog.push(jump(BPF_JGE_K, window.1, 1, 0));
        prog.push(stmt(BPF_RET_K, SECCOMP_RET_TRACE));
        prog.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    }
    // Test whichever of the set and its complement has fewer runs of consecutive numbers.
    let ranges = runs(nrs);
    let complement: BTreeSet<u32> = (0..512).filter(|n| !nrs.contains(n)).collect();
    let complement_ranges = runs(&complement);
    if complement_ranges.len() < ranges.len() {
        // Numbers outside the table (none exist below 512 today) are then traced.
        tree(
            &complement_ranges,
            SECCOMP_RET_ALLOW,
            SECCOMP_RET_TRACE,
            &mut prog,
        );
    } else {
        tree(&ranges, SECCOMP_RET_TRACE, SECCOMP_RET_ALLOW, &mut prog);
    }
    prog
}

/// Sorted numbers as inclusive runs `[lo, hi]`.
fn runs(nrs: &BTreeSet<u32>) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &n in nrs {
        match out.last_mut() {
            Some((_, hi)) if *hi + 1 == n => *hi = n,
            _ => out.push((n, n)),
        }
    }
    out
}

/// Binary search over the runs, with A = syscall number: returns `hit` inside a run, `miss`
/// outside. Long jumps go through BPF_JA (32-bit offsets), so any size fits.
fn tree(ranges: &[(u32, u32)], hit: u32, miss: u32, out: &mut Vec<libc::sock_filter>) {
    match ranges {
        [] => out.push(stmt(BPF_RET_K, miss)),
        [(lo, hi)] => {
            out.push(jump(BPF_JGE_K, *lo, 0, 2));
            out.push(jump(BPF_JGT_K, *hi, 1, 0));
            out.push(stmt(BPF_RET_K, hit));
            out.push(stmt(BPF_RET_K, miss));
        }
        _ => {
            let (left, right) = ranges.split_at(ranges.len() / 2);
            let mut left_code = Vec::new();
            tree(left, hit, miss, &mut left_code);
            // [jge pivot ? next : skip 1] [ja over left] [left] [right]
            out.push(jump(BPF_JGE_K, right[0].0, 0, 1));
            out.push(stmt(BPF_JA, left_code.len() as u32));
            out.extend(left_code);
            tree(right, hit, miss, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter for the instructions `build` emits.
    fn run(prog: &[libc::sock_filter], arch: u32, nr: u32) -> u32 {
        run_args(prog, arch, nr, 0)
    }

    fn run_args(prog: &[libc::sock_filter], arch: u32, nr: u32, arg0: u32) -> u32 {
        run_full(prog, arch, nr, [arg0 as u64, 0, 0, 0, 0, 0])
    }

    fn run_full(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            match i.code {
                BPF_LD_W_ABS => {
                    a = match i.k {
                        OFFSET_ARCH => arch,
                        OFFSET_NR => nr,
                        k if (OFFSET_ARGS..OFFSET_ARGS + 48).contains(&k) => {
                            let w = args[((k - OFFSET_ARGS) / 8) as usize];
                            if (k - OFFSET_ARGS).is_multiple_of(8) {
                                w as u32
                            } else {
                                (w >> 32) as u32
                            }
                        }
                        k => panic!("unexpected load at {k}"),
                    }
                }
                BPF_RET_K => return i.k,
                BPF_JA => pc += i.k as usize,
                code => {
                    let t = match code {
                        BPF_JEQ_K => a == i.k,
                        BPF_JGT_K => a > i.k,
                        BPF_JGE_K => a >= i.k,
                        BPF_JSET_K => a & i.k != 0,
                        _ => panic!("unexpected opcode {code:#x}"),
                    };
                    pc += if t { i.jt as usize } else { i.jf as usize };
                }
            }
            pc += 1;
        }
    }

    #[test]
    fn traces_exactly_the_selected_numbers() {
        for set in [
            vec![0u32, 1, 2, 3, 9, 57, 59, 257, 435],
            vec![],
            (0..400).collect(),
            (0..500).step_by(3).collect(),
        ] {
            let nrs: BTreeSet<u32> = set.into_iter().collect();
            let prog = build(false, &nrs, &[], &[], (0, 0));
            assert!(prog.len() < 4096);
            for nr in 0..512 {
                let want = if nrs.contains(&nr) {
                    SECCOMP_RET_TRACE
                } else {
                    SECCOMP_RET_ALLOW
                };
                assert_eq!(run(&prog, AUDIT_ARCH_X86_64, nr), want, "nr {nr}");
            }
            assert_eq!(
                run(&prog, 0x4000_0003, 5),
                SECCOMP_RET_TRACE,
                "i386 is traced"
            );
            assert_eq!(
                run(&prog, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 1),
                SECCOMP_RET_TRACE,
                "x32 is traced"
            );
        }
    }

    #[test]
    fn clone_is_traced_only_with_the_flag() {
        let nrs: BTreeSet<u32> = [0u32, 1, 257].into_iter().collect();
        let untraced = 0x0080_0000;
        let prog = build(false, &nrs, &[(56, 0, untraced)], &[], (0, 0));
        assert_eq!(
            run_args(&prog, AUDIT_ARCH_X86_64, 56, 0x11),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(
            run_args(&prog, AUDIT_ARCH_X86_64, 56, 0x11 | untraced),
            SECCOMP_RET_TRACE
        );
        // The rest of the filter is unchanged.
        assert_eq!(
            run_args(&prog, AUDIT_ARCH_X86_64, 257, 0),
            SECCOMP_RET_TRACE
        );
        assert_eq!(run_args(&prog, AUDIT_ARCH_X86_64, 2, 0), SECCOMP_RET_ALLOW);
        // A selected clone is traced whatever its flags.
        let with: BTreeSet<u32> = [56u32].into_iter().collect();
        let prog = build(false, &with, &[(56, 0, untraced)], &[], (0, 0));
        assert_eq!(
            run_args(&prog, AUDIT_ARCH_X86_64, 56, 0x11),
            SECCOMP_RET_TRACE
        );
    }

    #[test]
    fn window_traps_test_the_pointers_high_word() {
        let nrs: BTreeSet<u32> = [257u32, 1].into_iter().collect();
        // read's buffer (argument 1) in [0x6ee0 << 32, 0x6f00 << 32); write is selected.
        let prog = build(false, &nrs, &[], &[(0, 1), (1, 1)], (0x6ee0, 0x6f00));
        let read = |buf: u64| run_full(&prog, AUDIT_ARCH_X86_64, 0, [3, buf, 10, 0, 0, 0]);
        assert_eq!(read(0x6ee0_0000_0000), SECCOMP_RET_TRACE);
        assert_eq!(read(0x6eff_ffff_f000), SECCOMP_RET_TRACE);
        assert_eq!(read(0x6f00_0000_0000), SECCOMP_RET_ALLOW);
        assert_eq!(read(0x6edf_ffff_f000), SECCOMP_RET_ALLOW);
        assert_eq!(read(0x7fff_0000_1000), SECCOMP_RET_ALLOW);
        assert_eq!(read(0x5555_0000_1000), SECCOMP_RET_ALLOW);
        // A selected call is traced whatever its pointer.
        assert_eq!(
            run_full(&prog, AUDIT_ARCH_X86_64, 1, [1, 0x1000, 1, 0, 0, 0]),
            SECCOMP_RET_TRACE
        );
        assert_eq!(
            run_full(&prog, AUDIT_ARCH_X86_64, 257, [0; 6]),
            SECCOMP_RET_TRACE
        );
        assert_eq!(
            run_full(&prog, AUDIT_ARCH_X86_64, 2, [0; 6]),
            SECCOMP_RET_ALLOW
        );
    }
}
