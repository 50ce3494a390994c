//! The recorder's access to a traced process's memory: tracee's [`vigil_tracee::Memory`]
//! (process_vm_readv first, /proc/PID/mem for the rest, so a PROT_NONE page reads and a
//! read-only one is written), one per process, with the stop proof the recorder's own wait
//! loop (or an observer's caller) can vouch for. No memory access code of its own; never word
//! by word with PTRACE_PEEKDATA, which at 4 KiB is hundreds of times slower.

use vigil_tracee::{MemError, Stop, Stopped};

/// Longest string vigil reads for a path or name (PATH_MAX: the kernel refuses longer ones).
pub const MAX_STR: usize = 4096;
/// The kernel's own limits for execve (include/uapi/linux/binfmts.h, fs/exec.c): one argument
/// or environment string of at most 32 pages, and argument strings plus their pointers of at
/// most 3/4 of 8 MiB whatever the stack rlimit. An argv within them is recorded whole.
pub const MAX_ARG_STRLEN: usize = 32 * 4096;
pub const MAX_ARGV_BYTES: usize = 6 * 1024 * 1024;
/// How far vigil goes on reading an argv the kernel will refuse (E2BIG), to say exactly how
/// much it did not record; beyond this the counts are lower bounds.
pub const MEASURE_ARGV_BYTES: usize = 64 * 1024 * 1024;
pub const MEASURE_ARGV_ITEMS: usize = 1 << 20;

/// Memory of one traced process.
pub struct Memory {
    mem: vigil_tracee::Memory,
}

impl Memory {
    pub fn new(pid: i32) -> Self {
        Memory {
            mem: vigil_tracee::Memory::new(pid),
        }
    }

    /// The proof tracee's memory access asks for.
    fn held(&self) -> Stopped {
        // SAFETY: a process's memory is read or written only while a stop of one of that
        // process's threads is being handled, on the thread that attached them: in the
        // recorder's run loop, or in an `Observer` call, whose `&Stopped` argument is the
        // caller's proof of that stop. Nothing resumes through this handle: `assume`'s
        // contract for memory access.
        unsafe { Stopped::assume(self.mem.pid(), Stop::Interrupt) }
    }

    /// Writes `buf` at `addr`, read-only pages included.
    pub fn write(&mut self, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        let at = self.held();
        self.mem.write(&at, addr, buf)
    }

    /// Reads exactly `buf.len()` bytes at `addr` (PROT_NONE pages included).
    pub fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let at = self.held();
        self.mem.read(&at, addr, buf)
    }

    pub fn read_u64(&mut self, addr: u64) -> Result<u64, MemError> {
        let at = self.held();
        self.mem.read_u64(&at, addr)
    }

    pub fn read_u32(&mut self, addr: u64) -> Result<u32, MemError> {
        let at = self.held();
        self.mem.read_u32(&at, addr)
    }

    /// A NUL-terminated string of at most MAX_STR bytes.
    pub fn read_cstr(&mut self, addr: u64) -> Result<Vec<u8>, MemError> {
        self.read_cstr_max(addr, MAX_STR).map(|(s, _)| s)
    }

    /// A NUL-terminated string of at most `max` bytes, and whether it ended within them.
    pub fn read_cstr_max(&mut self, addr: u64, max: usize) -> Result<(Vec<u8>, bool), MemError> {
        let at = self.held();
        self.mem.read_cstr(&at, addr, max)
    }

    /// The length of a NUL-terminated string, counting at most `max` bytes.
    pub fn cstr_len(&mut self, addr: u64, max: usize) -> Option<usize> {
        let at = self.held();
        self.mem.cstr_len(&at, addr, max)
    }

    /// The pointers of a NULL-terminated pointer array, 8 or 4 bytes wide, at most `max`.
    pub fn read_ptr_array(
        &mut self,
        addr: u64,
        wide: bool,
        max: usize,
    ) -> Result<Vec<u64>, MemError> {
        let at = self.held();
        self.mem.read_ptr_array(&at, addr, wide, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_memory_strings_and_arrays() {
        let pid = std::process::id() as i32;
        let mut m = Memory::new(pid);
        let s = b"/etc/passwd\0";
        assert_eq!(m.read_cstr(s.as_ptr() as u64).unwrap(), b"/etc/passwd");
        let a = std::ffi::CString::new("a").unwrap();
        let b = std::ffi::CString::new("bc").unwrap();
        let arr: [u64; 3] = [a.as_ptr() as u64, b.as_ptr() as u64, 0];
        let ptrs = m.read_ptr_array(arr.as_ptr() as u64, true, 100).unwrap();
        assert_eq!(ptrs.len(), 2);
        assert_eq!(m.read_cstr(ptrs[1]).unwrap(), b"bc");
        let narrow: [u32; 2] = [0x1234, 0];
        assert_eq!(
            m.read_ptr_array(narrow.as_ptr() as u64, false, 100)
                .unwrap(),
            vec![0x1234]
        );
        assert!(m.read_cstr(8).is_err(), "unmapped page");
        assert_eq!(m.cstr_len(s.as_ptr() as u64, 100), Some(11));
        assert_eq!(m.cstr_len(8, 100), None, "unmapped page");
    }

    #[test]
    fn reads_a_prot_none_page_through_the_fallback() {
        // SAFETY: a fresh anonymous private page of our own, written then protected; unmapped
        // at the end.
        let page = unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            std::ptr::copy_nonoverlapping(c"hidden".as_ptr().cast::<u8>(), p.cast::<u8>(), 7);
            assert_eq!(libc::mprotect(p, 4096, libc::PROT_NONE), 0);
            p
        };
        let mut m = Memory::new(std::process::id() as i32);
        assert_eq!(m.read_cstr(page as u64).unwrap(), b"hidden");
        let mut w = [0u8; 2];
        m.read(page as u64 + 1, &mut w).unwrap();
        assert_eq!(&w, b"id");
        // SAFETY: the page mapped above, no longer used.
        unsafe { libc::munmap(page, 4096) };
    }
}
