//! Builds the kernel side (src/bpf/vigil.bpf.c) with clang into a BPF object and generates its
//! Rust skeleton (`OUT_DIR/vigil.skel.rs`). CO-RE against the committed src/bpf/vmlinux.h
//! (`bpftool btf dump file /sys/kernel/btf/vmlinux format c`), so the build needs neither this
//! kernel's headers nor BTF: only clang, which scripts/setup installs.

use libbpf_cargo::SkeletonBuilder;
use std::env;
use std::path::PathBuf;

const SRC: &str = "src/bpf/vigil.bpf.c";

fn main() {
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("vigil.skel.rs");
    if let Err(e) = SkeletonBuilder::new()
        .source(SRC)
        .clang_args(["-Isrc/bpf", "-Wall", "-Wno-unused-function"])
        .build_and_generate(&out)
    {
        // One clear message: which tool failed and how to get it.
        panic!(
            "building the eBPF program {SRC} failed: {e:#}\n(it needs clang: run scripts/setup, which installs Debian's clang and libelf-dev)"
        );
    }
    println!("cargo:rerun-if-changed={SRC}");
    println!("cargo:rerun-if-changed=src/bpf/vigil.h");
    println!("cargo:rerun-if-changed=src/bpf/vmlinux.h");
}
