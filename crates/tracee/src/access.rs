//! What an instruction does to memory: its memory operands, each with the address it touches
//! in this thread's registers, its size, and whether it is read, written or both.
//!
//! The shared-memory monitor classifies a protection fault by the instruction at the faulting
//! IP: a load is a read, a store a write, and a read-modify-write (`add [m], r`, `lock
//! cmpxchg`, `xchg`) both, so a single fault answers both questions. The decoding is iced-x86's
//! (its instruction info lists every memory operand with its access); this module only maps the
//! thread's registers onto it and states the answer in vigil's terms.

use crate::Regs;
use iced_x86::{Decoder, DecoderOptions, InstructionInfoFactory, OpAccess, Register};

/// The longest x86 instruction: read this many bytes at the IP (fewer at the end of a mapping).
pub const MAX_INSTRUCTION_LEN: usize = 15;

/// How an operand touches memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemAccess {
    Read,
    Write,
    /// Read then written by the one instruction.
    ReadWrite,
}

impl MemAccess {
    pub fn reads(self) -> bool {
        matches!(self, MemAccess::Read | MemAccess::ReadWrite)
    }

    pub fn writes(self) -> bool {
        matches!(self, MemAccess::Write | MemAccess::ReadWrite)
    }
}

/// One memory operand of an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemOperand {
    /// The first byte it touches, or None when its address depends on a register this module
    /// does not have (a vector index of a gather or scatter).
    pub addr: Option<u64>,
    /// Bytes touched: one element of a string instruction (`rep movsb` repeats it).
    pub size: u64,
    pub access: MemAccess,
    /// The access may not happen (`cmovcc`, the write of `cmpxchg`, masked vector stores).
    pub conditional: bool,
}

/// A decoded instruction: its length and what it does to memory (nothing for most).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub len: usize,
    pub operands: Vec<MemOperand>,
}

impl Decoded {
    /// The access of the operands that touch `addr` together (a read of one operand and a
    /// write of another at the same address, as `movs` may do, is both), or None if none does.
    pub fn access_at(&self, addr: u64) -> Option<MemAccess> {
        let (mut r, mut w) = (false, false);
        for o in &self.operands {
            let Some(start) = o.addr else { continue };
            if addr >= start && addr - start < o.size.max(1) {
                r |= o.access.reads();
                w |= o.access.writes();
            }
        }
        match (r, w) {
            (true, true) => Some(MemAccess::ReadWrite),
            (true, false) => Some(MemAccess::Read),
            (false, true) => Some(MemAccess::Write),
            (false, false) => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("no valid instruction at {ip:#x} (bytes {bytes:02x?})")]
    Invalid { ip: u64, bytes: Vec<u8> },
}

/// Decodes the instruction at the start of `code`, fetched at `regs.ip()`, and computes the
/// address of each memory operand from `regs` (64-bit code, or 32-bit for a compat thread).
pub fn memory_operands(code: &[u8], regs: &Regs) -> Result<Decoded, DecodeError> {
    let ip = regs.ip();
    let bitness = if regs.is_compat() { 32 } else { 64 };
    let code = &code[..code.len().min(MAX_INSTRUCTION_LEN)];
    let mut decoder = Decoder::with_ip(bitness, code, ip, DecoderOptions::NONE);
    let instr = decoder.decode();
    if instr.is_invalid() {
        return Err(DecodeError::Invalid {
            ip,
            bytes: code.to_vec(),
        });
    }
    let mut factory = InstructionInfoFactory::new();
    let info = factory.info(&instr);
    let operands = info
        .used_memory()
        .iter()
        .filter_map(|m| {
            let (access, conditional) = match m.access() {
                OpAccess::Read => (MemAccess::Read, false),
                OpAccess::CondRead => (MemAccess::Read, true),
                OpAccess::Write => (MemAccess::Write, false),
                OpAccess::CondWrite => (MemAccess::Write, true),
                OpAccess::ReadWrite => (MemAccess::ReadWrite, false),
                OpAccess::ReadCondWrite => (MemAccess::ReadWrite, true),
                // lea, prefetch, clflush: an address, no access.
                OpAccess::None | OpAccess::NoMemAccess => return None,
            };
            let addr = m.virtual_address(0, |reg, _, _| register_value(regs, reg));
            Some(MemOperand {
                addr,
                size: m.memory_size().size() as u64,
                access,
                conditional,
            })
        })
        .collect();
    Ok(Decoded {
        len: instr.len(),
        operands,
    })
}

/// A general-purpose or segment register's value as an address computation uses it (segment
/// registers: their base; FS and GS as ptrace reports them, fs_base and gs_base, also for 32-bit
/// code; the others are flat).
fn register_value(regs: &Regs, reg: Register) -> Option<u64> {
    let r = &regs.0;
    let full = reg.full_register();
    let value = match full {
        Register::RAX => r.rax,
        Register::RBX => r.rbx,
        Register::RCX => r.rcx,
        Register::RDX => r.rdx,
        Register::RSI => r.rsi,
        Register::RDI => r.rdi,
        Register::RBP => r.rbp,
        Register::RSP => r.rsp,
        Register::R8 => r.r8,
        Register::R9 => r.r9,
        Register::R10 => r.r10,
        Register::R11 => r.r11,
        Register::R12 => r.r12,
        Register::R13 => r.r13,
        Register::R14 => r.r14,
        Register::R15 => r.r15,
        Register::RIP => r.rip,
        Register::FS => return Some(r.fs_base),
        Register::GS => return Some(r.gs_base),
        Register::ES | Register::CS | Register::SS | Register::DS => return Some(0),
        // Vector indexes (gathers, scatters) are not in the general registers.
        _ => return None,
    };
    // The register as named: eax is rax's low half, and so on.
    Some(match reg.size() {
        8 => value,
        4 => value & 0xffff_ffff,
        2 => value & 0xffff,
        1 if reg.is_gpr8()
            && matches!(
                reg,
                Register::AH | Register::BH | Register::CH | Register::DH
            ) =>
        {
            (value >> 8) & 0xff
        }
        1 => value & 0xff,
        _ => value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs(f: impl FnOnce(&mut libc::user_regs_struct)) -> Regs {
        // SAFETY: all-zero bytes are a valid user_regs_struct (integers only).
        let mut r: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        r.cs = 0x33;
        r.rip = 0x40_1000;
        f(&mut r);
        Regs(r)
    }

    fn one(code: &[u8], r: &Regs) -> Decoded {
        memory_operands(code, r).unwrap()
    }

    #[test]
    fn a_store_is_a_write_at_its_address() {
        let r = regs(|r| r.rax = 0x7000_0000);
        // mov dword ptr [rax], ebx
        let d = one(&[0x89, 0x18], &r);
        assert_eq!(d.len, 2);
        assert_eq!(
            d.operands,
            vec![MemOperand {
                addr: Some(0x7000_0000),
                size: 4,
                access: MemAccess::Write,
                conditional: false
            }]
        );
        assert_eq!(d.access_at(0x7000_0003), Some(MemAccess::Write));
        assert_eq!(d.access_at(0x7000_0004), None);
    }

    #[test]
    fn a_load_is_a_read_with_its_displacement() {
        let r = regs(|r| r.rbx = 0x1000);
        // mov eax, dword ptr [rbx+8]
        let d = one(&[0x8b, 0x43, 0x08], &r);
        assert_eq!(d.operands[0].addr, Some(0x1008));
        assert_eq!(d.operands[0].access, MemAccess::Read);
    }

    #[test]
    fn a_read_modify_write_is_both_and_a_locked_cmpxchg_conditionally() {
        let r = regs(|r| {
            r.rcx = 0x2000;
            r.rdi = 0x3000;
        });
        // add dword ptr [rcx], edx
        let d = one(&[0x01, 0x11], &r);
        assert_eq!(d.access_at(0x2000), Some(MemAccess::ReadWrite));
        assert!(!d.operands[0].conditional);
        // lock cmpxchg dword ptr [rdi], ecx
        let d = one(&[0xf0, 0x0f, 0xb1, 0x0f], &r);
        assert_eq!(d.len, 4);
        assert_eq!(d.access_at(0x3000), Some(MemAccess::ReadWrite));
        assert!(d.operands[0].conditional);
    }

    #[test]
    fn a_string_move_reads_one_place_and_writes_another() {
        let r = regs(|r| {
            r.rsi = 0x5000;
            r.rdi = 0x6000;
        });
        // movsb
        let d = one(&[0xa4], &r);
        assert_eq!(d.access_at(0x5000), Some(MemAccess::Read));
        assert_eq!(d.access_at(0x6000), Some(MemAccess::Write));
        assert!(d.operands.iter().all(|o| o.size == 1));
    }

    #[test]
    fn rip_relative_and_fs_based_addresses() {
        let r = regs(|r| r.fs_base = 0x7fff_0000_0000);
        // mov eax, dword ptr [rip+0x10]: relative to the next instruction
        let d = one(&[0x8b, 0x05, 0x10, 0x00, 0x00, 0x00], &r);
        assert_eq!(d.operands[0].addr, Some(0x40_1000 + 6 + 0x10));
        // mov rax, qword ptr fs:[0x28] (the stack protector's canary)
        let d = one(&[0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0, 0, 0], &r);
        assert_eq!(d.operands[0].addr, Some(0x7fff_0000_0028));
        assert_eq!(d.operands[0].size, 8);
    }

    #[test]
    fn an_address_computation_touches_nothing() {
        let r = regs(|r| r.rbx = 0x1000);
        // lea rax, [rbx+8]
        let d = one(&[0x48, 0x8d, 0x43, 0x08], &r);
        assert!(d.operands.is_empty());
        assert_eq!(d.access_at(0x1008), None);
    }

    #[test]
    fn thirty_two_bit_code_uses_the_low_halves() {
        let r = regs(|r| {
            r.cs = 0x23;
            r.rip = 0x0804_8000;
            r.rax = 0xdead_0000_0000_1000;
        });
        // mov dword ptr [eax], ebx (32-bit code)
        let d = one(&[0x89, 0x18], &r);
        assert_eq!(d.operands[0].addr, Some(0x1000));
    }

    #[test]
    fn bytes_that_are_no_instruction_are_an_error() {
        let r = regs(|_| {});
        // 0x06 (push es) does not exist in 64-bit code.
        assert!(matches!(
            memory_operands(&[0x06], &r),
            Err(DecodeError::Invalid { ip: 0x40_1000, .. })
        ));
        assert!(memory_operands(&[], &r).is_err());
    }
}
