//! Reading a stopped tracee's memory: PTRACE_PEEKDATA (word by word) vs process_vm_readv vs
//! /proc/PID/mem (kept open), at 8 B, 160 B, 4 KiB and 128 KiB.

use std::os::unix::fs::FileExt;
use std::time::Instant;

const SIZES: [usize; 4] = [8, 160, 4096, 128 * 1024];

fn per_read(mut f: impl FnMut(), budget_ms: u128) -> f64 {
    // Warm up, then run for about `budget_ms`.
    for _ in 0..10 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_millis() < budget_ms {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

pub fn run() -> serde_json::Value {
    // The buffer exists at the same address in the forked child.
    let buf: Vec<u8> = (0..128 * 1024).map(|i| (i % 251) as u8).collect();
    let addr = buf.as_ptr() as u64;
    // SAFETY: the child only calls async-signal-safe functions before it is killed.
    let child = match unsafe { libc::fork() } {
        // SAFETY: in the child, only async-signal-safe calls (ptrace, raise, _exit).
        0 => unsafe {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            libc::raise(libc::SIGSTOP);
            libc::_exit(0);
        },
        pid if pid > 0 => pid,
        _ => panic!("fork failed"),
    };
    let mut status = 0;
    // SAFETY: valid out-pointer.
    unsafe { libc::waitpid(child, &mut status, 0) };
    let mem = std::fs::File::open(format!("/proc/{child}/mem")).expect("open /proc/PID/mem");
    let mut out = vec![0u8; 128 * 1024];
    println!(
        "\n== tracee memory reads (ns per read, median of the run; ratio = PEEKDATA / other) =="
    );
    println!(
        "{:>8} {:>14} {:>16} {:>16} {:>12} {:>12}",
        "size", "PEEKDATA", "process_vm_readv", "/proc/PID/mem", "peek/vm", "peek/mem"
    );
    let mut rows = Vec::new();
    for size in SIZES {
        let budget = 300;
        let peek = per_read(
            || {
                for off in (0..size).step_by(8) {
                    // SAFETY: PEEKDATA on a stopped tracee at a mapped address.
                    let w =
                        unsafe { libc::ptrace(libc::PTRACE_PEEKDATA, child, addr + off as u64, 0) };
                    let n = (size - off).min(8);
                    out[off..off + n].copy_from_slice(&w.to_ne_bytes()[..n]);
                }
            },
            budget,
        );
        let vm = per_read(
            || {
                let local = libc::iovec {
                    iov_base: out.as_mut_ptr().cast(),
                    iov_len: size,
                };
                let remote = libc::iovec {
                    iov_base: addr as *mut libc::c_void,
                    iov_len: size,
                };
                // SAFETY: `local` covers `out`, which is large enough.
                let n = unsafe { libc::process_vm_readv(child, &local, 1, &remote, 1, 0) };
                assert_eq!(n as usize, size);
            },
            budget,
        );
        let procmem = per_read(
            || {
                mem.read_exact_at(&mut out[..size], addr)
                    .expect("read /proc/PID/mem")
            },
            budget,
        );
        assert_eq!(
            &out[..size],
            &buf[..size],
            "all methods read the same bytes"
        );
        println!(
            "{size:>8} {peek:>14.0} {vm:>16.0} {procmem:>16.0} {:>11.1}x {:>11.1}x",
            peek / vm,
            peek / procmem
        );
        rows.push(serde_json::json!({"bytes": size, "peekdata_ns": peek, "process_vm_readv_ns": vm, "proc_mem_ns": procmem,
            "peek_over_vm": peek / vm, "peek_over_mem": peek / procmem}));
    }
    // SAFETY: killing and reaping our own child.
    unsafe {
        libc::kill(child, libc::SIGKILL);
        libc::waitpid(child, &mut status, 0);
    }
    serde_json::json!({ "memread": rows })
}
