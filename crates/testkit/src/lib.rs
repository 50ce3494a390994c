//! Test and benchmark helpers shared across the workspace.
//!
//! The helper programs the tests trace are real C programs under `programs/`, built here with
//! the system C compiler (installed by scripts/setup) into `target/programs/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

static BUILD: Mutex<()> = Mutex::new(());

/// The path of `programs/NAME.c` compiled (rebuilt when the source is newer).
///
/// Panics with a clear message when the compiler is missing: the tests cannot run without it.
pub fn program(name: &str) -> PathBuf {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let src = workspace_root().join("programs").join(format!("{name}.c"));
    let out_dir = target_dir().join("programs");
    let out = out_dir.join(name);
    let stale = match (
        std::fs::metadata(&src).and_then(|m| m.modified()),
        std::fs::metadata(&out).and_then(|m| m.modified()),
    ) {
        (Ok(s), Ok(o)) => s > o,
        _ => true,
    };
    if stale {
        std::fs::create_dir_all(&out_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", out_dir.display()));
        let tmp = out_dir.join(format!("{name}.tmp{}", std::process::id()));
        let status = Command::new("cc")
            .args(["-O2", "-Wall", "-pthread", "-no-pie", "-o"])
            .arg(&tmp)
            .arg(&src)
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run the C compiler `cc` ({e}): run scripts/setup to install it")
            });
        assert!(status.success(), "compiling {} failed", src.display());
        std::fs::rename(&tmp, &out)
            .unwrap_or_else(|e| panic!("cannot move {} into place: {e}", tmp.display()));
    }
    out
}

/// Fails the test loudly when this process may not ptrace its children: such a test must not
/// pass by doing nothing.
pub fn require_ptrace() {
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").unwrap_or_default();
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"));
    if scope.trim() == "3" {
        panic!(
            "PRIVILEGE MISSING: kernel.yama.ptrace_scope=3 forbids ptrace; this test needs it and cannot run"
        );
    }
    if !root && scope.trim() == "2" {
        panic!(
            "PRIVILEGE MISSING: kernel.yama.ptrace_scope=2 needs CAP_SYS_PTRACE; run the tests as root"
        );
    }
}

/// A fresh directory under the target dir (kept out of /tmp so paths are predictable).
pub fn scratch_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = target_dir()
        .join("scratch")
        .join(format!("{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

pub mod synthetic;

/// A seccomp filter (classic BPF) that stops getppid of x86-64 for the tracer
/// (SECCOMP_RET_TRACE with `data`) and allows everything else: tests get a tracee to a
/// seccomp stop at a moment they choose (the program calls getppid).
pub fn getppid_trap_filter(data: u16) -> Vec<libc::sock_filter> {
    let stmt = |code: u16, k: u32| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: 0x15,
        jt,
        jf,
        k,
    };
    vec![
        stmt(0x20, 4), // ld arch
        jeq(0xC000_003E, 0, 3),
        stmt(0x20, 0), // ld nr
        jeq(libc::SYS_getppid as u32, 0, 1),
        stmt(0x06, 0x7ff0_0000 | u32::from(data)), // SECCOMP_RET_TRACE | data
        stmt(0x06, 0x7fff_0000),                   // SECCOMP_RET_ALLOW
    ]
}

/// Writes a C project of `units` files (40 small functions each, `gcc -O1`) plus main.c and a
/// Makefile into `dir`: a real compile workload (gcc's cc1 grows its heap at moments that
/// depend on addresses), used by the recording benchmark and the multi-variant tests. The
/// built `prog` prints one number.
pub fn c_project(dir: &Path, units: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut objs = vec!["main.o".to_string()];
    let mut main = String::from("#include <stdio.h>\n");
    for i in 0..units {
        let mut src = String::from("#include <stdio.h>\n#include <string.h>\n");
        for f in 0..40 {
            let callee = if f == 0 { 0 } else { f - 1 };
            src.push_str(&format!(
                "static int f{f}(const char *s, int n) {{ int h = {i}; for (int k = 0; k < n; k++) h = h * 31 + s[k % (int)strlen(s)] + {f}; if (n > 1 && h % 7 == 3) return f{callee}(s, n / 2); return h; }}\n"
            ));
        }
        src.push_str(&format!(
            "int unit{i}(int n) {{ char buf[64]; snprintf(buf, sizeof buf, \"u{i}-%d\", n); return f39(buf, n); }}\n"
        ));
        std::fs::write(dir.join(format!("u{i}.c")), src)?;
        objs.push(format!("u{i}.o"));
        main.push_str(&format!("int unit{i}(int);\n"));
    }
    main.push_str("int main(void) { long t = 0;\n");
    for i in 0..units {
        main.push_str(&format!("t += unit{i}(100);\n"));
    }
    main.push_str("printf(\"%ld\\n\", t); return 0; }\n");
    std::fs::write(dir.join("main.c"), main)?;
    std::fs::write(
        dir.join("Makefile"),
        format!(
            "OBJS = {}\nprog: $(OBJS)\n\tgcc -o prog $(OBJS)\n%.o: %.c\n\tgcc -O1 -c -o $@ $<\n",
            objs.join(" ")
        ),
    )
}
