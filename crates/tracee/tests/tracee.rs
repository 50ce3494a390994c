//! The tracee layer on real tracees (programs/tracee_probe.c): remote syscalls at seccomp,
//! signal and interrupt stops with every register compared before and after (also when the
//! tracee is killed meanwhile), memory writes to read-only pages and reads of PROT_NONE ones,
//! single-step, interrupting a CPU loop, two tracers on two threads, spawn errors.
//! Needs ptrace: a test lacking the privilege fails (vigil_testkit::require_ptrace).

use std::io::Read;
use std::os::fd::OwnedFd;
use std::time::Duration;
use syscalls::Sysno;
use vigil_tracee::*;

const FILTER_DATA: u32 = 0x42;

/// A filter that stops getppid (x86-64) with data FILTER_DATA and allows everything else.
fn getppid_filter() -> Vec<libc::sock_filter> {
    vigil_testkit::getppid_trap_filter(FILTER_DATA as u16)
}

fn options() -> Options {
    Options::PTRACE_O_TRACESECCOMP
        | Options::PTRACE_O_TRACESYSGOOD
        | Options::PTRACE_O_TRACEEXEC
        | Options::PTRACE_O_EXITKILL
}

struct Probe {
    tracer: Tracer,
    child: Child,
    out: OwnedFd,
}

/// Starts the probe in `mode` with the getppid filter, stopped at its exec.
fn start(mode: &str) -> (Probe, Stopped) {
    vigil_testkit::require_ptrace();
    let prog = vigil_testkit::program("tracee_probe");
    let (r, w) = nix::unistd::pipe().unwrap();
    let mut cmd = Command::new(&prog);
    cmd.arg(mode)
        .stdout(Stdio::Fd(w))
        .options(options())
        .seccomp(getppid_filter());
    let mut tracer = Tracer::new();
    let (child, stopped) = tracer.spawn_until_exec(&mut cmd).unwrap();
    assert!(matches!(stopped.stop(), Stop::Event(Event::Exec { .. })));
    (
        Probe {
            tracer,
            child,
            out: r,
        },
        stopped,
    )
}

impl Probe {
    /// Resumes `how` (without a signal: a signal stop's signal is consumed) until a stop
    /// `pick` accepts.
    fn resume_to(&mut self, s: Stopped, how: Resume, pick: impl Fn(&Stop) -> bool) -> Stopped {
        let mut s = s;
        loop {
            s.resume(how, None).unwrap();
            match self.tracer.wait_tid(self.child.pid()).unwrap() {
                Wait::Stopped(n) if pick(n.stop()) => return n,
                Wait::Stopped(n) => s = n,
                Wait::Exited { exit, .. } => panic!("tracee ended early: {exit}"),
            }
        }
    }

    /// [`Probe::resume_to`] with PTRACE_CONT.
    fn run_to(&mut self, s: Stopped, pick: impl Fn(&Stop) -> bool) -> Stopped {
        self.resume_to(s, Resume::Cont, pick)
    }

    fn run_to_seccomp(&mut self, s: Stopped) -> Stopped {
        self.run_to(s, |st| matches!(st, Stop::Seccomp { .. }))
    }

    /// Resumes with PTRACE_SYSCALL; the next stop, whatever it is.
    fn next_syscall_stop(&mut self, s: Stopped) -> Stopped {
        s.syscall().unwrap();
        stopped(self.tracer.wait_tid(self.child.pid()).unwrap())
    }

    /// Runs to the end delivering its signals, counting the seccomp stops on the way; the
    /// exit and the output.
    fn finish(self, s: Stopped) -> (Exit, usize, String) {
        s.deliver(Resume::Cont).unwrap();
        self.finish_running()
    }

    /// [`Probe::finish`] for a probe already resumed.
    fn finish_running(mut self) -> (Exit, usize, String) {
        let mut seccomp = 0;
        let exit = run_to_exit(&mut self.tracer, self.child.pid(), |st| {
            if matches!(st, Stop::Seccomp { .. }) {
                seccomp += 1;
            }
        });
        (exit, seccomp, read_all(self.out))
    }
}

/// Waits for `pid` until it exits, resuming each stop with its signal delivered (after
/// showing it to `seen`); its exit.
fn run_to_exit(tracer: &mut Tracer, pid: i32, mut seen: impl FnMut(&Stop)) -> Exit {
    loop {
        match tracer.wait_tid(pid).unwrap() {
            Wait::Stopped(s) => {
                seen(s.stop());
                s.deliver(Resume::Cont).unwrap();
            }
            Wait::Exited { exit, .. } => return exit,
        }
    }
}

/// Runs `cmd` traced to its end (signals delivered); its exit and what it wrote to `out`, the
/// read end of the pipe its output goes to.
fn run_traced(mut cmd: Command, out: OwnedFd) -> (Exit, String) {
    let mut tracer = Tracer::new();
    let (child, s) = tracer.spawn_until_exec(&mut cmd).unwrap();
    // The command holds the pipe's write end: closed, the read sees the end.
    drop(cmd);
    s.cont().unwrap();
    let exit = run_to_exit(&mut tracer, child.pid(), |_| {});
    (exit, read_all(out))
}

/// The stopped thread of a wait that must be a stop.
fn stopped(w: Wait) -> Stopped {
    match w {
        Wait::Stopped(s) => s,
        other => panic!("not a stop: {other:?}"),
    }
}

/// Everything a pipe's read end gives until its writers are gone.
fn read_all(r: OwnedFd) -> String {
    let mut out = String::new();
    std::fs::File::from(r).read_to_string(&mut out).unwrap();
    out
}

/// The probe in `mode` ("segv", "segvread") at the signal stop of its fault on the page it
/// protected; the page's address.
fn start_at_fault(mode: &str) -> (Probe, Stopped, u64) {
    let (mut p, s) = start(mode);
    let s = p.run_to_seccomp(s);
    let page = seccomp_args(&s)[0];
    let s = p.run_to(s, |st| matches!(st, Stop::Signal { .. }));
    (p, s, page)
}

/// Runs `calls` in a scope of remote syscalls at `s`, finishes it, and checks that every
/// register came back as it was.
fn inject(s: &mut Stopped, tracer: &mut Tracer, calls: impl FnOnce(&mut RemoteSyscalls<'_>)) {
    let before = s.regs().unwrap();
    {
        let mut r = s.remote(tracer).unwrap();
        calls(&mut r);
        r.finish().unwrap();
    }
    assert_same(&before, &s.regs().unwrap());
}

fn seccomp_args(s: &Stopped) -> [u64; 6] {
    match s.stop() {
        Stop::Seccomp { call, data } => {
            assert_eq!(*data, FILTER_DATA, "SECCOMP_RET_DATA");
            assert_eq!(call.sysno(), Some(Sysno::getppid));
            call.args
        }
        other => panic!("not a seccomp stop: {other:?}"),
    }
}

fn maps_perms(pid: i32, addr: u64) -> String {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    for l in maps.lines() {
        let mut f = l.split_whitespace();
        let range = f.next().unwrap();
        let (a, b) = range.split_once('-').unwrap();
        let (a, b) = (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        );
        if (a..b).contains(&addr) {
            return f.next().unwrap().to_string();
        }
    }
    "unmapped".into()
}

fn assert_same(before: &Regs, after: &Regs) {
    assert!(
        before == after,
        "registers differ: {:?}\nbefore {before:?}\nafter {after:?}",
        before.diff(after)
    );
}

#[test]
fn injects_at_a_seccomp_stop_and_restores_every_register() {
    let (mut p, s) = start("sync");
    let pid = p.child.pid();
    let mut s = p.run_to_seccomp(s);
    assert_eq!(&seccomp_args(&s)[..3], &[1, 2, 3]);
    let before = s.regs().unwrap();
    let fp_before = s.fpregs().unwrap();
    inject(&mut s, &mut p.tracer, |r| {
        assert_eq!(r.syscall(Sysno::getpid, &[]).unwrap(), pid as i64);
        let page = r
            .mmap(
                0,
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
            .unwrap();
        assert_eq!(maps_perms(pid, page), "rw-p");
        r.mprotect(page, 4096, libc::PROT_READ).unwrap();
        assert_eq!(maps_perms(pid, page), "r--p");
        // An error result comes back typed.
        match r.mprotect(page + 1, 4096, libc::PROT_READ) {
            Err(Error::Remote { errno, .. }) => assert_eq!(errno, nix::errno::Errno::EINVAL),
            other => panic!("unaligned mprotect: {other:?}"),
        }
        r.munmap(page, 4096).unwrap();
        assert_eq!(maps_perms(pid, page), "unmapped");
    });
    assert!(fp_before == s.fpregs().unwrap());
    assert!(matches!(s.stop(), Stop::Seccomp { .. }));
    // A second scope left by an early return: Drop restores.
    {
        let mut r = s.remote(&mut p.tracer).unwrap();
        assert_eq!(r.syscall(Sysno::getpid, &[]).unwrap(), pid as i64);
    }
    assert_same(&before, &s.regs().unwrap());
    // The pending getppid still runs, once: the program prints the real parent.
    let (exit, more_seccomp, out) = p.finish(s);
    assert_eq!(exit, Exit::Exited(0));
    assert_eq!(more_seccomp, 0, "the rewind is not seen by the caller");
    assert_eq!(out, format!("ppid={}\n", std::process::id()));
}

#[test]
fn injects_at_a_syscall_entry_stop() {
    let (mut p, s) = start("sync");
    let pid = p.child.pid();
    // Resume with PTRACE_SYSCALL until the entry stop of getppid (before its seccomp stop).
    let mut s = p.resume_to(
        s,
        Resume::Syscall,
        |st| matches!(st, Stop::SyscallEntry(e) if e.sysno() == Some(Sysno::getppid)),
    );
    inject(&mut s, &mut p.tracer, |r| {
        assert_eq!(r.syscall(Sysno::getpid, &[]).unwrap(), pid as i64);
        assert_eq!(r.syscall(Sysno::gettid, &[]).unwrap(), pid as i64);
    });
    assert!(matches!(s.stop(), Stop::SyscallEntry(_)));
    // Resumed with PTRACE_SYSCALL: its seccomp stop, then its exit with the real result.
    let s = p.next_syscall_stop(s);
    assert_eq!(seccomp_args(&s)[..3], [1, 2, 3]);
    let s = p.next_syscall_stop(s);
    match s.stop() {
        Stop::SyscallExit { ret, is_error } => {
            assert_eq!((*ret, *is_error), (std::process::id() as i64, false))
        }
        other => panic!("{other:?}"),
    }
    let (exit, _, out) = p.finish(s);
    assert_eq!(exit, Exit::Exited(0));
    assert_eq!(out, format!("ppid={}\n", std::process::id()));
}

#[test]
fn injects_at_a_syscall_exit_stop_and_keeps_the_result() {
    let (mut p, s) = start("sync");
    let pid = p.child.pid();
    let s = p.run_to_seccomp(s);
    let mut s = p.next_syscall_stop(s);
    assert!(
        matches!(s.stop(), Stop::SyscallExit { .. }),
        "{:?}",
        s.stop()
    );
    assert_eq!(s.regs().unwrap().syscall_ret(), std::process::id() as i64);
    inject(&mut s, &mut p.tracer, |r| {
        assert_eq!(r.syscall(Sysno::getpid, &[]).unwrap(), pid as i64);
        assert_eq!(r.syscall(Sysno::gettid, &[]).unwrap(), pid as i64);
    });
    let (exit, _, out) = p.finish(s);
    assert_eq!(exit, Exit::Exited(0));
    assert_eq!(out, format!("ppid={}\n", std::process::id()));
}

#[test]
fn injects_mprotect_at_a_sigsegv_stop_and_the_access_then_succeeds() {
    let (mut p, mut s, page) = start_at_fault("segv");
    let pid = p.child.pid();
    assert_eq!(maps_perms(pid, page), "---p");
    let Stop::Signal { sig, info } = *s.stop() else {
        unreachable!()
    };
    assert_eq!(sig, libc::SIGSEGV);
    assert_eq!(info.fault_addr(), Some(page));
    assert_eq!(info.code(), 2, "SEGV_ACCERR");
    inject(&mut s, &mut p.tracer, |r| {
        assert_eq!(r.syscall(Sysno::getpid, &[]).unwrap(), pid as i64);
        r.mprotect(page, 4096, libc::PROT_READ | libc::PROT_WRITE)
            .unwrap();
    });
    // Still at the same signal's delivery stop, with the same siginfo.
    match s.stop() {
        Stop::Signal { sig, info: after } => {
            assert_eq!(*sig, libc::SIGSEGV);
            assert_eq!(after.fault_addr(), Some(page));
            assert_eq!(after.code(), 2);
        }
        other => panic!("the stop changed: {other:?}"),
    }
    assert_eq!(s.siginfo().unwrap().fault_addr(), Some(page));
    assert_eq!(maps_perms(pid, page), "rw-p");
    // Consumed: resume without the signal; the store is retried and succeeds.
    s.cont().unwrap();
    let (exit, _, out) = p.finish_running();
    assert_eq!(exit, Exit::Exited(0));
    assert_eq!(out, "value=42\n");
}

#[test]
fn a_delivered_signal_after_injection_keeps_its_siginfo() {
    let (mut p, mut s, page) = start_at_fault("segv");
    {
        let mut r = s.remote(&mut p.tracer).unwrap();
        r.syscall(Sysno::getpid, &[]).unwrap();
    }
    assert_eq!(s.siginfo().unwrap().fault_addr(), Some(page));
    // Delivered: the program dies of it, as it would have without the injection.
    let (exit, _, _) = p.finish(s);
    assert!(
        matches!(
            exit,
            Exit::Killed {
                signal: libc::SIGSEGV,
                ..
            }
        ),
        "{exit:?}"
    );
}

#[test]
fn a_queued_signal_keeps_its_siginfo_and_restart_state_across_an_injection() {
    let (mut p, s) = start("usr1");
    let pid = p.child.pid();
    let s = p.run_to_seccomp(s);
    s.cont().unwrap();
    // Let it block in pause(), then queue SIGUSR1 with a value.
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: plain syscall on the test's own child with a plain value.
    let r = unsafe { libc::sigqueue(pid, libc::SIGUSR1, libc::sigval { sival_ptr: 77 as _ }) };
    assert_eq!(r, 0);
    let mut s = stopped(p.tracer.wait_tid(pid).unwrap());
    assert!(
        matches!(s.stop(), Stop::Signal { sig, .. } if *sig == libc::SIGUSR1),
        "{:?}",
        s.stop()
    );
    assert_eq!(
        s.regs().unwrap().syscall_nr(),
        libc::SYS_pause,
        "interrupted inside pause()"
    );
    inject(&mut s, &mut p.tracer, |r| {
        assert_eq!(r.syscall(Sysno::getpid, &[]).unwrap(), pid as i64);
    });
    match s.stop() {
        Stop::Signal { sig, info } => {
            assert_eq!(*sig, libc::SIGUSR1);
            assert_eq!(info.code(), libc::SI_QUEUE);
            assert_eq!(info.sender().map(|x| x.0), Some(std::process::id() as i32));
        }
        other => panic!("the stop changed: {other:?}"),
    }
    // Delivered: the handler sees the original siginfo and pause() fails with EINTR.
    let (exit, _, out) = p.finish(s);
    assert_eq!(exit, Exit::Exited(0));
    assert_eq!(
        out,
        format!(
            "sig={} code={} value=77 pid={}\npause=-1 EINTR\n",
            libc::SIGUSR1,
            libc::SI_QUEUE,
            std::process::id()
        )
    );
}

fn kill_later(pid: i32) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: plain syscall on the test's own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    })
}

fn assert_killed_during(p: &mut Probe, s: &mut Stopped) {
    let pid = p.child.pid();
    let killer = kill_later(pid);
    {
        let mut r = s.remote(&mut p.tracer).unwrap();
        match r.syscall(Sysno::pause, &[]) {
            Err(e) => assert!(e.is_gone(), "{e}"),
            Ok(v) => panic!("pause returned {v}"),
        }
        // Further calls fail at once, and finishing reports the death.
        assert!(r.syscall(Sysno::getpid, &[]).unwrap_err().is_gone());
        assert!(r.finish().unwrap_err().is_gone());
    }
    killer.join().unwrap();
    // The exit still reaches the tracer's wait.
    match p.tracer.wait_tid(pid).unwrap() {
        Wait::Exited { exit, .. } => assert_eq!(
            exit,
            Exit::Killed {
                signal: libc::SIGKILL,
                core_dumped: false
            }
        ),
        Wait::Stopped(s) => panic!("stopped after SIGKILL: {:?}", s.stop()),
    }
}

#[test]
fn a_tracee_killed_during_injection_at_a_seccomp_stop_is_an_error_not_a_hang() {
    let (mut p, s) = start("sync");
    let mut s = p.run_to_seccomp(s);
    assert_killed_during(&mut p, &mut s);
}

#[test]
fn a_tracee_killed_during_injection_at_a_signal_stop_is_an_error_not_a_hang() {
    let (mut p, mut s, _) = start_at_fault("segv");
    assert_killed_during(&mut p, &mut s);
}

#[test]
fn writes_a_read_only_page_and_the_program_sees_it() {
    let (mut p, s) = start("rodata");
    let pid = p.child.pid();
    let s = p.run_to_seccomp(s);
    let msg = seccomp_args(&s)[0];
    let perms = maps_perms(pid, msg);
    assert!(!perms.contains('w'), "{perms}: not a read-only page");
    let mut mem = Memory::new(pid);
    let mut was = [0u8; 9];
    mem.read(&s, msg, &mut was).unwrap();
    assert_eq!(&was, b"original\0");
    mem.write(&s, msg, b"patched!\0").unwrap();
    let mut now = [0u8; 9];
    mem.read(&s, msg, &mut now).unwrap();
    assert_eq!(&now, b"patched!\0");
    let (exit, _, out) = p.finish(s);
    assert_eq!(exit, Exit::Exited(0));
    assert_eq!(out, "patched!\n");
}

#[test]
fn reads_a_prot_none_page_and_reports_partial_reads() {
    let (mut p, s) = start("protnone");
    let pid = p.child.pid();
    let s = p.run_to_seccomp(s);
    let base = seccomp_args(&s)[0];
    assert_eq!(maps_perms(pid, base), "---p");
    assert_eq!(maps_perms(pid, base + 2 * 4096), "unmapped");
    let mut mem = Memory::new(pid);
    let mut page = vec![0u8; 4096];
    mem.read(&s, base, &mut page).unwrap();
    assert!(page.iter().all(|&b| b == 0xa5));
    // Across the PROT_NONE page, the readable one and into the hole: how much was read.
    let mut three = vec![0u8; 3 * 4096];
    let err = mem.read(&s, base, &mut three).unwrap_err();
    assert_eq!(err.done, 2 * 4096);
    assert_eq!(err.errno, nix::errno::Errno::EFAULT);
    assert_eq!(
        mem.read_partial(&s, base + 100, &mut three).unwrap(),
        2 * 4096 - 100
    );
    assert_eq!(&three[4096 - 100..4096 - 100 + 6], b"secret");
    // Bounded C strings.
    assert_eq!(
        mem.read_cstr(&s, base + 4096, 100).unwrap(),
        (b"secret".to_vec(), true)
    );
    assert_eq!(
        mem.read_cstr(&s, base + 4096, 3).unwrap(),
        (b"sec".to_vec(), false)
    );
    // A string running into the hole is an error that says how much was read.
    let e = mem.read_cstr(&s, base + 4096 + 7, 8192).unwrap_err();
    assert_eq!(e.done, 4096 - 7);
    let (exit, _, _) = p.finish(s);
    assert_eq!(exit, Exit::Exited(0));
}

fn decode(bytes: &[u8], ip: u64) -> iced_x86::Instruction {
    let mut d = iced_x86::Decoder::with_ip(64, bytes, ip, iced_x86::DecoderOptions::NONE);
    d.decode()
}

#[test]
fn single_steps_exactly_one_instruction() {
    let (mut p, s) = start("step");
    let pid = p.child.pid();
    let s = p.run_to(
        s,
        |st| matches!(st, Stop::Signal { sig, .. } if *sig == libc::SIGTRAP),
    );
    let rip0 = s.regs().unwrap().ip();
    let mut code = [0u8; 16];
    s.read_memory(rip0, &mut code).unwrap();
    let nop = decode(&code, rip0);
    assert_eq!(nop.mnemonic(), iced_x86::Mnemonic::Nop);
    assert_eq!(nop.len(), 1);
    // The int3's SIGTRAP is the program's (SI_KERNEL), not a single-step.
    let Stop::Signal { info, .. } = s.stop() else {
        unreachable!()
    };
    assert!(!info.is_single_step());

    let s = stopped(s.step(&mut p.tracer).unwrap());
    assert!(matches!(s.stop(), Stop::Stepped), "{:?}", s.stop());
    let r1 = s.regs().unwrap();
    assert_eq!(r1.ip(), nop.next_ip());
    assert_ne!(r1.0.rax & 0xffff_ffff, 0x12345, "the mov has not run yet");
    s.read_memory(r1.ip(), &mut code).unwrap();
    let mov = decode(&code, r1.ip());
    assert_eq!(mov.mnemonic(), iced_x86::Mnemonic::Mov);
    assert_eq!(mov.len(), 5);

    let s = stopped(s.step(&mut p.tracer).unwrap());
    assert!(matches!(s.stop(), Stop::Stepped));
    let r2 = s.regs().unwrap();
    assert_eq!(r2.ip(), rip0 + 6);
    assert_eq!(r2.0.rax & 0xffff_ffff, 0x12345);
    // The steps' traps were consumed: the program runs on normally.
    s.cont().unwrap();
    match p.tracer.wait_tid(pid).unwrap() {
        Wait::Exited { exit, .. } => assert_eq!(exit, Exit::Exited(0)),
        Wait::Stopped(s) => panic!("{:?}", s.stop()),
    }
    assert_eq!(read_all(p.out), "eax=0x12345\n");
}

#[test]
fn interrupts_a_cpu_loop_and_injects_there() {
    let (mut p, s) = start("spin");
    let pid = p.child.pid();
    let s = p.run_to_seccomp(s);
    let counter = seccomp_args(&s)[0];
    let running = s.cont().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut s = stopped(p.tracer.interrupt(running).unwrap());
    assert!(matches!(s.stop(), Stop::Interrupt), "{:?}", s.stop());
    assert_eq!(
        s.regs().unwrap().syscall_nr(),
        -1,
        "stopped in user code, not in a syscall"
    );
    let mut mem = Memory::new(pid);
    let c1 = mem.read_u64(&s, counter).unwrap();
    assert!(c1 > 0, "the loop ran");
    inject(&mut s, &mut p.tracer, |r| {
        assert_eq!(r.syscall(Sysno::getpid, &[]).unwrap(), pid as i64);
    });
    assert!(matches!(s.stop(), Stop::Interrupt));
    // It spins on after the injection.
    let running = s.cont().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let s = stopped(p.tracer.interrupt(running).unwrap());
    let c2 = mem.read_u64(&s, counter).unwrap();
    assert!(c2 > c1, "the loop went on: {c1} then {c2}");
    // SAFETY: plain syscall on the test's own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    drop(s);
    loop {
        match p.tracer.wait_tid(pid).unwrap() {
            Wait::Exited { exit, .. } => {
                assert!(matches!(
                    exit,
                    Exit::Killed {
                        signal: libc::SIGKILL,
                        ..
                    }
                ));
                break;
            }
            Wait::Stopped(s) => {
                let _ = s.cont();
            }
        }
    }
}

/// Supervises one forktree probe to the end: (every tid the tree had, every tid seen).
fn supervise_tree() -> (
    std::collections::BTreeSet<i32>,
    std::collections::BTreeSet<i32>,
) {
    let prog = vigil_testkit::program("tracee_probe");
    let mut cmd = Command::new(&prog);
    cmd.arg("forktree").options(
        options()
            | Options::PTRACE_O_TRACEFORK
            | Options::PTRACE_O_TRACEVFORK
            | Options::PTRACE_O_TRACECLONE,
    );
    let mut tracer = Tracer::new();
    let (child, s) = tracer.spawn_until_exec(&mut cmd).unwrap();
    let mut tree = std::collections::BTreeSet::from([child.pid()]);
    let mut seen = std::collections::BTreeSet::from([child.pid()]);
    s.cont().unwrap();
    loop {
        match tracer.wait() {
            Ok(Wait::Stopped(s)) => {
                seen.insert(s.tid());
                if let Stop::Event(Event::Fork { child } | Event::Clone { child }) = s.stop() {
                    tree.insert(*child);
                }
                s.deliver(Resume::Cont).unwrap();
            }
            Ok(Wait::Exited { tid, .. }) => {
                seen.insert(tid);
            }
            Err(Error::NoTracees) => break,
            Err(Error::Gone { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    (tree, seen)
}

#[test]
fn two_tracers_on_two_threads_keep_their_own_statuses() {
    vigil_testkit::require_ptrace();
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..2 {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send(supervise_tree());
        });
    }
    let mut results = Vec::new();
    for _ in 0..2 {
        results.push(
            rx.recv_timeout(Duration::from_secs(60))
                .expect("a tracer hung: its statuses were taken by the other"),
        );
    }
    for (tree, seen) in &results {
        assert_eq!(
            tree.len(),
            10,
            "root, 3 children, 6 grandchildren: {tree:?}"
        );
        assert!(
            seen.is_subset(tree),
            "saw a foreign tid: {seen:?} vs {tree:?}"
        );
        assert_eq!(seen, tree, "every task's statuses reached its own tracer");
    }
    assert!(results[0].0.is_disjoint(&results[1].0));
}

#[test]
fn spawn_reports_errors_typed() {
    vigil_testkit::require_ptrace();
    let mut tracer = Tracer::new();
    let dir = vigil_testkit::scratch_dir("tracee-spawn");
    match tracer.spawn(&mut Command::new("no-such-program-vigil")) {
        Err(SpawnError::NotFound { .. }) => {}
        other => panic!("{other:?}"),
    }
    let plain = dir.join("plain");
    std::fs::write(&plain, "x").unwrap();
    match tracer.spawn(&mut Command::new(&plain)) {
        Err(SpawnError::NotExecutable { .. }) => {}
        other => panic!("{other:?}"),
    }
    // Executable but not a program: execve fails in the child, reported through the pipe.
    let junk = dir.join("junk");
    std::fs::write(&junk, [0u8, 1, 2, 3]).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&junk).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&junk, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    match tracer.spawn_until_exec(&mut Command::new(&junk)) {
        Err(SpawnError::Exec { errno, .. }) => assert_eq!(errno, nix::errno::Errno::ENOEXEC),
        other => panic!("{other:?}"),
    }
    // A failing pre-exec step, by its index and kind.
    let mut cmd = Command::new("/bin/true");
    cmd.personality(0).prctl(-1, [0; 4]);
    match tracer.spawn_until_exec(&mut cmd) {
        Err(SpawnError::PreExec { step, what, errno }) => {
            assert_eq!((step, what, errno), (1, "prctl", nix::errno::Errno::EINVAL))
        }
        other => panic!("{other:?}"),
    }
    let mut cmd = Command::new("/bin/true");
    cmd.current_dir(dir.join("missing"));
    match tracer.spawn_until_exec(&mut cmd) {
        Err(SpawnError::Chdir { errno, .. }) => assert_eq!(errno, nix::errno::Errno::ENOENT),
        other => panic!("{other:?}"),
    }
}

#[test]
fn spawn_sets_env_cwd_stdio_personality_and_runs_hooks() {
    vigil_testkit::require_ptrace();
    let dir = vigil_testkit::scratch_dir("tracee-env");
    let (r, w) = nix::unistd::pipe().unwrap();
    let marker = dir.join("hook-ran");
    let marker_c = std::ffi::CString::new(marker.to_str().unwrap()).unwrap();
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "echo \"$FOO:${HOME-unset}\"; pwd; cat /proc/self/personality",
    ])
    .env("FOO", "bar")
    .env_remove("HOME")
    .current_dir(&dir)
    .stdout(Stdio::Fd(w))
    .stdin(Stdio::Null)
    .personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong);
    // SAFETY: the hook only calls open(2) and close(2) on a prepared C string.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(marker_c.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o600);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
            Ok(())
        });
    }
    let (exit, out) = run_traced(cmd, r);
    assert_eq!(exit, Exit::Exited(0));
    let dir_shown = dir.canonicalize().unwrap();
    assert_eq!(
        out,
        format!("bar:unset\n{}\n00040000\n", dir_shown.display())
    );
    assert!(marker.exists(), "the hook ran");
}

#[test]
fn attaches_to_a_running_process() {
    vigil_testkit::require_ptrace();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = sleeper.id() as i32;
    let mut tracer = Tracer::new();
    let mut s = stopped(tracer.attach(pid, Options::PTRACE_O_TRACESYSGOOD).unwrap());
    assert!(matches!(s.stop(), Stop::Interrupt), "{:?}", s.stop());
    // Interrupted inside nanosleep/clock_nanosleep: inject, and the sleep restarts correctly.
    inject(&mut s, &mut tracer, |r| {
        assert_eq!(r.syscall(Sysno::getpid, &[]).unwrap(), pid as i64);
    });
    s.detach(None).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "still sleeping after the injection"
    );
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

#[test]
fn the_child_environment_keeps_this_processs_order_with_changes_in_place() {
    vigil_testkit::require_ptrace();
    let vars: Vec<(String, String)> = std::env::vars().collect();
    assert!(vars.len() >= 2, "the test needs an environment");
    // Change the last variable and remove the first: the rest keep their order, the change
    // stays in place, a new variable comes last.
    let (first, last) = (vars[0].0.clone(), vars[vars.len() - 1].0.clone());
    let (r, w) = nix::unistd::pipe().unwrap();
    let mut cmd = Command::new("/usr/bin/env");
    cmd.env(&last, "changed")
        .env_remove(&first)
        .env("VIGIL_TEST_NEW", "1")
        .stdout(Stdio::Fd(w));
    let (exit, out) = run_traced(cmd, r);
    assert_eq!(exit, Exit::Exited(0));
    let mut want: Vec<String> = vars[1..]
        .iter()
        .map(|(k, v)| {
            if *k == last {
                format!("{k}=changed")
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    want.push("VIGIL_TEST_NEW=1".into());
    // Values with newlines would split lines: compare the keys' order by line starts.
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(
        got.len(),
        want.iter().map(|w| w.lines().count()).sum::<usize>()
    );
    assert_eq!(got.join("\n"), want.join("\n"));
}

/// A protection fault classified by its instruction, on a real tracee: the store of "segv" is a
/// write of 4 bytes at the faulting address, the load of "segvread" a read; lifting the
/// protection the access needs (PROT_READ alone for the load) lets each go on.
#[test]
fn a_protection_fault_is_classified_by_its_instruction() {
    for (mode, want, lift, out) in [
        (
            "segv",
            MemAccess::Write,
            libc::PROT_READ | libc::PROT_WRITE,
            "value=42\n",
        ),
        ("segvread", MemAccess::Read, libc::PROT_READ, "value=0\n"),
    ] {
        let (mut p, mut s, page) = start_at_fault(mode);
        let pid = p.child.pid();
        let Stop::Signal { sig, info } = *s.stop() else {
            unreachable!()
        };
        assert_eq!(sig, libc::SIGSEGV, "{mode}");
        let addr = info.fault_addr().unwrap();
        assert_eq!(addr, page, "{mode}");
        let regs = s.regs().unwrap();
        let mut code = [0u8; MAX_INSTRUCTION_LEN];
        let n = Memory::new(pid)
            .read_partial(&s, regs.ip(), &mut code)
            .unwrap();
        let decoded = memory_operands(&code[..n], &regs).unwrap();
        assert_eq!(decoded.access_at(addr), Some(want), "{mode}: {decoded:?}");
        let op = decoded
            .operands
            .iter()
            .find(|o| o.addr == Some(addr))
            .unwrap();
        assert_eq!(op.size, 4, "{mode}: an int");
        {
            let mut r = s.remote(&mut p.tracer).unwrap();
            r.mprotect(page, 4096, lift).unwrap();
            r.finish().unwrap();
        }
        // Consumed: the access is retried and succeeds.
        s.cont().unwrap();
        let (exit, _, got) = p.finish_running();
        assert_eq!(exit, Exit::Exited(0), "{mode}");
        assert_eq!(got, out, "{mode}");
    }
}

/// The child keeps the caller's blocked-signal mask, SIGCONT included: the SIGCONT that
/// wakes it for the tracer is still taken out, and the command starts with the same mask
/// and nothing pending.
#[test]
fn a_caller_that_blocks_sigcont_can_spawn_and_the_child_keeps_its_mask() {
    vigil_testkit::require_ptrace();
    // On a thread of its own: the mask is per thread and the child inherits the spawner's.
    std::thread::spawn(|| {
        let mut set = nix::sys::signal::SigSet::empty();
        set.add(nix::sys::signal::Signal::SIGCONT);
        set.add(nix::sys::signal::Signal::SIGUSR2);
        set.thread_block().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut cmd = Command::new("grep");
        cmd.args(["-E", "^Sig(Blk|Pnd)", "/proc/self/status"])
            .stdout(Stdio::Fd(w));
        let (exit, out) = run_traced(cmd, r);
        assert_eq!(exit, Exit::Exited(0));
        let blocked = (1u64 << (libc::SIGCONT - 1)) | (1u64 << (libc::SIGUSR2 - 1));
        assert_eq!(
            out,
            format!("SigPnd:\t{:016x}\nSigBlk:\t{blocked:016x}\n", 0)
        );
    })
    .join()
    .unwrap();
}

/// Waiting for a set of tids: the status of another tracee that arrives meanwhile is kept for
/// a later wait, not lost; with every tracee reaped, there is nothing left to wait for.
#[test]
fn waiting_for_some_tracees_keeps_the_others_statuses() {
    vigil_testkit::require_ptrace();
    let prog = vigil_testkit::program("tracee_probe");
    let mut tracer = Tracer::new();
    let mut spawn = || {
        let mut cmd = Command::new(&prog);
        cmd.arg("sync").options(options()).stdout(Stdio::Null);
        tracer.spawn_until_exec(&mut cmd).unwrap()
    };
    let (a, at_a) = spawn();
    let (b, at_b) = spawn();
    // No filter, so nothing stops A: it ends, and its exit is ready before B runs.
    at_a.cont().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    at_b.cont().unwrap();
    loop {
        match tracer.wait_any_of(&[b.pid()]).unwrap() {
            Wait::Exited { tid, exit } => {
                assert_eq!((tid, exit), (b.pid(), Exit::Exited(0)));
                break;
            }
            Wait::Stopped(s) => {
                assert_eq!(s.tid(), b.pid(), "{:?}", s.stop());
                s.deliver(Resume::Cont).unwrap();
            }
        }
    }
    match tracer.wait_tid(a.pid()).unwrap() {
        Wait::Exited { exit, .. } => assert_eq!(exit, Exit::Exited(0)),
        Wait::Stopped(s) => panic!("{:?}", s.stop()),
    }
    assert!(matches!(tracer.try_wait(), Err(Error::NoTracees)));
}

#[test]
fn stepped_calls_run_in_one_stop_and_a_consumed_fault_is_not_queued_again() {
    // At vigil's own fault: the mprotect is single-stepped, the SIGSEGV dropped (no trip to a
    // second delivery stop), and the store then succeeds.
    let (mut p, mut s, page) = start_at_fault("segv");
    let pid = p.child.pid();
    let before = s.regs().unwrap();
    {
        let mut r = s.remote(&mut p.tracer).unwrap().stepped();
        assert_eq!(r.syscall(Sysno::getpid, &[]).unwrap(), pid as i64);
        r.mprotect(page, 4096, libc::PROT_READ | libc::PROT_WRITE)
            .unwrap();
        assert_eq!(r.syscall(Sysno::gettid, &[]).unwrap(), pid as i64);
        r.finish_discarding_signal().unwrap();
    }
    assert_same(&before, &s.regs().unwrap());
    assert!(matches!(s.stop(), Stop::Interrupt), "{:?}", s.stop());
    assert_eq!(maps_perms(pid, page), "rw-p");
    s.cont().unwrap();
    let (exit, _, out) = p.finish_running();
    assert_eq!(exit, Exit::Exited(0));
    assert_eq!(out, "value=42\n");
}

#[test]
fn a_stepped_call_the_filter_traps_is_refused_not_run_twice() {
    // getppid is trapped by the probe's filter: a stepped getppid meets the seccomp stop,
    // which the scope reports as unexpected; the thread is put back all the same.
    let (mut p, mut s, _page) = start_at_fault("segv");
    let before = s.regs().unwrap();
    {
        let mut r = s.remote(&mut p.tracer).unwrap().stepped();
        assert!(r.syscall(Sysno::getppid, &[]).is_err());
        let _ = r.finish();
    }
    assert_same(&before, &s.regs().unwrap());
}
