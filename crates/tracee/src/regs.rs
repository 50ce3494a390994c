//! A tracee's general-purpose registers (x86-64 `user_regs_struct`) with the syscall-ABI
//! accessors every caller needs (number, arguments, return value), comparable field by field
//! so a caller can check that a register set came back exactly as it was.
//!
//! An i386 (compat) tracee is read through the same 64-bit layout (the kernel zero-extends its
//! 32-bit registers); [`Regs::is_compat`] tells the two apart and the `*_i386` accessors use the
//! i386 syscall ABI.

/// The general-purpose registers of a stopped thread.
#[derive(Clone, Copy)]
pub struct Regs(pub libc::user_regs_struct);

/// The code segment selector of a 32-bit (compat) user thread on x86-64 Linux.
const USER32_CS: u64 = 0x23;

macro_rules! fields {
    ($($f:ident),* $(,)?) => {
        /// Every register as (name, value), in `user_regs_struct` order.
        pub fn fields(&self) -> Vec<(&'static str, u64)> {
            vec![$((stringify!($f), self.0.$f)),*]
        }
    };
}

impl Regs {
    fields!(
        r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs,
        eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs,
    );

    /// The instruction pointer.
    pub fn ip(&self) -> u64 {
        self.0.rip
    }

    pub fn set_ip(&mut self, ip: u64) {
        self.0.rip = ip;
    }

    /// The stack pointer.
    pub fn sp(&self) -> u64 {
        self.0.rsp
    }

    /// Whether the thread runs 32-bit code (an i386 program, or a 64-bit one that switched).
    pub fn is_compat(&self) -> bool {
        self.0.cs == USER32_CS
    }

    /// The syscall number as the kernel saw it at entry (`orig_rax`; -1 outside a syscall).
    pub fn syscall_nr(&self) -> i64 {
        self.0.orig_rax as i64
    }

    /// The six syscall arguments in the x86-64 ABI (rdi, rsi, rdx, r10, r8, r9).
    pub fn syscall_args(&self) -> [u64; 6] {
        let r = &self.0;
        [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9]
    }

    /// The six syscall arguments in the i386 ABI (ebx, ecx, edx, esi, edi, ebp).
    pub fn syscall_args_i386(&self) -> [u64; 6] {
        let r = &self.0;
        [r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp].map(|v| v & 0xffff_ffff)
    }

    /// Sets up a syscall in the x86-64 ABI: `rax` and `orig_rax` to `nr`, the arguments in
    /// rdi, rsi, rdx, r10, r8, r9 (missing ones are 0).
    pub fn set_syscall(&mut self, nr: u64, args: &[u64]) {
        let mut a = [0u64; 6];
        for (slot, v) in a.iter_mut().zip(args) {
            *slot = *v;
        }
        let r = &mut self.0;
        r.rax = nr;
        r.orig_rax = nr;
        [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9] = a;
    }

    /// The syscall's return value (rax) as the kernel returns it: -4095..-1 is `-errno`.
    pub fn syscall_ret(&self) -> i64 {
        self.0.rax as i64
    }

    pub fn set_syscall_ret(&mut self, v: i64) {
        self.0.rax = v as u64;
    }

    /// The names of the registers that differ between `self` and `other` (empty: identical).
    pub fn diff(&self, other: &Regs) -> Vec<&'static str> {
        self.fields()
            .into_iter()
            .zip(other.fields())
            .filter(|(a, b)| a.1 != b.1)
            .map(|(a, _)| a.0)
            .collect()
    }
}

impl PartialEq for Regs {
    fn eq(&self, other: &Self) -> bool {
        self.diff(other).is_empty()
    }
}

impl Eq for Regs {}

impl std::fmt::Debug for Regs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (name, v) in self.fields() {
            m.entry(&name, &format_args!("{v:#x}"));
        }
        m.finish()
    }
}

/// The x87/SSE registers (`user_fpregs_struct`, the FXSAVE area).
#[derive(Clone, Copy)]
pub struct FpRegs(pub libc::user_fpregs_struct);

impl std::fmt::Debug for FpRegs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FpRegs")
            .field("cwd", &self.0.cwd)
            .field("mxcsr", &self.0.mxcsr)
            .finish_non_exhaustive()
    }
}

impl PartialEq for FpRegs {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.0, &other.0);
        a.cwd == b.cwd
            && a.swd == b.swd
            && a.ftw == b.ftw
            && a.fop == b.fop
            && a.rip == b.rip
            && a.rdp == b.rdp
            && a.mxcsr == b.mxcsr
            && a.mxcr_mask == b.mxcr_mask
            && a.st_space == b.st_space
            && a.xmm_space == b.xmm_space
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_accessors_follow_the_abi() {
        // SAFETY: user_regs_struct is plain integers; all-zero is a valid value.
        let mut r = Regs(unsafe { std::mem::zeroed() });
        r.set_syscall(10, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(r.0.rax, 10);
        assert_eq!(r.syscall_nr(), 10);
        assert_eq!((r.0.rdi, r.0.rsi, r.0.rdx), (1, 2, 3));
        assert_eq!((r.0.r10, r.0.r8, r.0.r9), (4, 5, 6));
        assert_eq!(r.syscall_args(), [1, 2, 3, 4, 5, 6]);
        let before = r;
        r.set_syscall_ret(-14);
        assert_eq!(r.syscall_ret(), -14);
        assert_eq!(r.diff(&before), vec!["rax"]);
        assert_ne!(r, before);
        r.0.cs = USER32_CS;
        r.0.rbx = 0x1_0000_0007;
        assert!(r.is_compat());
        assert_eq!(r.syscall_args_i386()[0], 7);
    }
}
