//! Reading and writing a stopped tracee's memory: process_vm_readv (one syscall for any size),
//! falling back to /proc/PID/mem kept open per process (it also reads PROT_NONE pages and writes
//! read-only ones, which process_vm_* refuse). Never word by word with PTRACE_PEEKDATA: at 4 KiB
//! that is hundreds of times slower.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

const PAGE: u64 = 4096;
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

/// Memory of one process.
pub struct Memory {
    pid: i32,
    /// Opened on first fallback (process_vm_readv refused for this process, or a write).
    mem_file: Option<File>,
    /// Whether `mem_file` was opened for writing too.
    mem_writable: bool,
    vm_readv_works: bool,
}

impl Memory {
    pub fn new(pid: i32) -> Self {
        Memory {
            pid,
            mem_file: None,
            mem_writable: false,
            vm_readv_works: true,
        }
    }

    /// Writes `buf` at `addr` through /proc/PID/mem (which, unlike process_vm_writev, also
    /// writes pages the tracee mapped read-only). The tracee must be stopped.
    pub fn write(&mut self, addr: u64, buf: &[u8]) -> io::Result<()> {
        if !self.mem_writable {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(format!("/proc/{}/mem", self.pid))?;
            self.mem_file = Some(f);
            self.mem_writable = true;
        }
        match &self.mem_file {
            Some(f) => f.write_all_at(buf, addr),
            None => Err(io::Error::from_raw_os_error(libc::EBADF)),
        }
    }

    /// Reads exactly `buf.len()` bytes at `addr`. Fails with EFAULT on unmapped memory.
    pub fn read(&mut self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        if self.vm_readv_works {
            match vm_readv(self.pid, addr, buf) {
                Ok(n) if n == buf.len() => return Ok(()),
                Ok(_) => return Err(io::Error::from_raw_os_error(libc::EFAULT)),
                Err(e)
                    if e.raw_os_error() == Some(libc::EFAULT)
                        || e.raw_os_error() == Some(libc::ESRCH) =>
                {
                    return Err(e);
                }
                Err(_) => self.vm_readv_works = false, // EPERM/ENOSYS: fall back for good
            }
        }
        let file = match &self.mem_file {
            Some(f) => f,
            None => self
                .mem_file
                .insert(File::open(format!("/proc/{}/mem", self.pid))?),
        };
        file.read_exact_at(buf, addr)
    }

    /// Reads as much of `buf` as is mapped, without crossing into an unmapped page.
    fn read_partial(&mut self, addr: u64, buf: &mut [u8]) -> io::Result<usize> {
        if self.vm_readv_works {
            match vm_readv(self.pid, addr, buf) {
                Ok(n) => return Ok(n),
                Err(e)
                    if e.raw_os_error() == Some(libc::EFAULT)
                        || e.raw_os_error() == Some(libc::ESRCH) =>
                {
                    return Err(e);
                }
                Err(_) => self.vm_readv_works = false,
            }
        }
        self.read(addr, buf).map(|_| buf.len())
    }

    pub fn read_u64(&mut self, addr: u64) -> io::Result<u64> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_ne_bytes(b))
    }

    pub fn read_u32(&mut self, addr: u64) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_ne_bytes(b))
    }

    /// A NUL-terminated string of at most MAX_STR bytes.
    pub fn read_cstr(&mut self, addr: u64) -> io::Result<Vec<u8>> {
        self.read_cstr_max(addr, MAX_STR).map(|(s, _)| s)
    }

    /// A NUL-terminated string of at most `max` bytes, and whether it ended (a NUL was found)
    /// within them. The first read is small (most strings are short paths); later ones take
    /// a page at a time. No read crosses a page boundary, so a string ending just before an
    /// unmapped page still reads.
    pub fn read_cstr_max(&mut self, addr: u64, max: usize) -> io::Result<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        let mut a = addr;
        let mut chunk = [0u8; PAGE as usize];
        let mut step = 256usize;
        while out.len() < max {
            let to_page_end = (PAGE - a % PAGE) as usize;
            let want = to_page_end.min(step).min(max - out.len());
            let n = self.read_partial(a, &mut chunk[..want])?;
            if n == 0 {
                return Err(io::Error::from_raw_os_error(libc::EFAULT));
            }
            if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..end]);
                return Ok((out, true));
            }
            out.extend_from_slice(&chunk[..n]);
            a += n as u64;
            step = PAGE as usize;
        }
        Ok((out, false))
    }

    /// The length of a NUL-terminated string, counting at most `max` bytes (`None`: longer,
    /// or unreadable part-way). For measuring what is not recorded.
    pub fn cstr_len(&mut self, addr: u64, max: usize) -> Option<usize> {
        let mut a = addr;
        let mut chunk = [0u8; PAGE as usize];
        let mut len = 0usize;
        while len < max {
            let to_page_end = (PAGE - a % PAGE) as usize;
            let n = self.read_partial(a, &mut chunk[..to_page_end]).ok()?;
            if n == 0 {
                return None;
            }
            if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
                return Some(len + end);
            }
            len += n;
            a += n as u64;
        }
        None
    }

    /// The pointers of a NULL-terminated pointer array (`argv`), 8 or 4 bytes wide, at most
    /// `max` of them (then the array may go on).
    pub fn read_ptr_array(&mut self, addr: u64, wide: bool, max: usize) -> io::Result<Vec<u64>> {
        let size = if wide { 8 } else { 4 };
        let mut ptrs = Vec::new();
        let mut buf = vec![0u8; PAGE as usize];
        let mut a = addr;
        loop {
            let to_page_end = (PAGE - a % PAGE) as usize;
            let want = to_page_end.min(buf.len());
            let n = self.read_partial(a, &mut buf[..want])?;
            if n < size {
                return Err(io::Error::from_raw_os_error(libc::EFAULT));
            }
            for c in buf[..n - n % size].chunks_exact(size) {
                let p = if wide {
                    u64::from_ne_bytes(c.try_into().unwrap_or([0; 8]))
                } else {
                    u32::from_ne_bytes(c.try_into().unwrap_or([0; 4])) as u64
                };
                if p == 0 || ptrs.len() >= max {
                    return Ok(ptrs);
                }
                ptrs.push(p);
            }
            a += (n - n % size) as u64;
        }
    }
}

fn vm_readv(pid: i32, addr: u64, buf: &mut [u8]) -> io::Result<usize> {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, which is valid for writes of its length; the remote
    // address is only interpreted by the kernel in the other process.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
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
        assert!(m.read_cstr(8).is_err(), "unmapped page");
        // The /proc/PID/mem fallback gives the same bytes.
        let mut f = Memory {
            pid,
            mem_file: None,
            mem_writable: false,
            vm_readv_works: false,
        };
        assert_eq!(f.read_cstr(s.as_ptr() as u64).unwrap(), b"/etc/passwd");
    }
}
