//! Reading and writing a stopped tracee's memory.
//!
//! The fast path is process_vm_readv/process_vm_writev (one syscall for any size). They refuse
//! what the tracee itself could not do: reading a PROT_NONE page, writing a read-only one
//! (EFAULT). The rest of such an access then goes through /proc/PID/mem, which the kernel
//! serves for a tracer with FOLL_FORCE (it reads PROT_NONE pages and writes read-only ones,
//! copy-on-write for private file mappings, as a debugger's breakpoint does). The file is kept
//! open per [`Memory`]; it belongs to one address space, so take a new `Memory` after exec.
//!
//! Every access needs a [`Stopped`] handle of a thread of the process: the typestate's proof
//! that the tracee is not running while vigil looks at its memory.

use crate::tracer::Stopped;
use nix::errno::Errno;
use std::fs::File;
use std::os::unix::fs::FileExt;

const PAGE: u64 = 4096;
/// The first read of a C string: most are short paths.
const FIRST_CSTR_READ: usize = 256;

/// A memory access that did not complete: `done` of `len` bytes at `addr` were transferred
/// (from the start), then `errno` (EFAULT: not mapped; ESRCH: the process is gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("tracee memory at {addr:#x}: {done} of {len} bytes, then {errno}")]
pub struct MemError {
    pub addr: u64,
    pub len: usize,
    pub done: usize,
    pub errno: Errno,
}

/// One process's memory (any thread's tid works: threads share it).
#[derive(Debug)]
pub struct Memory {
    pid: i32,
    file: Option<File>,
    writable: bool,
    /// process_vm_* failed with something other than EFAULT (EPERM, ENOSYS): use the file.
    vm_read_ok: bool,
    vm_write_ok: bool,
}

impl Memory {
    pub fn new(pid: i32) -> Self {
        Memory {
            pid,
            file: None,
            writable: false,
            vm_read_ok: true,
            vm_write_ok: true,
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    fn file(&mut self, write: bool) -> Result<&File, Errno> {
        if self.file.is_none() || (write && !self.writable) {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(write)
                .open(format!("/proc/{}/mem", self.pid))
                .map_err(|e| match e.raw_os_error() {
                    Some(libc::ENOENT) => Errno::ESRCH,
                    Some(n) => Errno::from_raw(n),
                    None => Errno::EIO,
                })?;
            self.file = Some(f);
            self.writable = write;
        }
        self.file.as_ref().ok_or(Errno::EBADF)
    }

    /// Reads `buf.len()` bytes at `addr`, PROT_NONE pages included. On error, `done` says how
    /// many bytes at the start of `buf` were read.
    pub fn read(&mut self, _at: &Stopped, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let len = buf.len();
        let done = self.read_upto(addr, buf)?;
        whole(addr, len, done)
    }

    /// Reads as much of `buf` as is mapped from `addr` on; the count read.
    pub fn read_partial(
        &mut self,
        _at: &Stopped,
        addr: u64,
        buf: &mut [u8],
    ) -> Result<usize, MemError> {
        self.read_upto(addr, buf)
    }

    fn read_upto(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize, MemError> {
        self.transfer(addr, Buf::Read(buf))
    }

    /// Writes `data` at `addr`, read-only pages included (FOLL_FORCE). On error, `done` says
    /// how many bytes at the start were written.
    pub fn write(&mut self, _at: &Stopped, addr: u64, data: &[u8]) -> Result<(), MemError> {
        let done = self.transfer(addr, Buf::Write(data))?;
        whole(addr, data.len(), done)
    }

    /// Moves as much of `buf` as the tracee has from `addr` on (process_vm_* first, the file
    /// for the rest); the count moved. An error only when nothing more can be known (the
    /// process is gone, the file cannot be opened).
    fn transfer(&mut self, addr: u64, mut buf: Buf<'_>) -> Result<usize, MemError> {
        let (len, write) = match &buf {
            Buf::Read(b) => (b.len(), false),
            Buf::Write(d) => (d.len(), true),
        };
        let err = |done, errno| MemError {
            addr,
            len,
            done,
            errno,
        };
        let mut done = 0;
        if len == 0 {
            return Ok(0);
        }
        let vm_ok = if write {
            &mut self.vm_write_ok
        } else {
            &mut self.vm_read_ok
        };
        if *vm_ok {
            let local = match &mut buf {
                Buf::Read(b) => b.as_mut_ptr(),
                Buf::Write(d) => d.as_ptr().cast_mut(),
            };
            match vm_rw(self.pid, addr, local, len, write) {
                Ok(n) => done = n,
                Err(Errno::EFAULT) => {}
                Err(Errno::ESRCH) => return Err(err(0, Errno::ESRCH)),
                Err(_) => *vm_ok = false,
            }
        }
        while done < len {
            let at = addr.wrapping_add(done as u64);
            let f = self.file(write).map_err(|e| err(done, e))?;
            let r = match &mut buf {
                Buf::Read(b) => f.read_at(&mut b[done..], at),
                Buf::Write(d) => f.write_at(&d[done..], at),
            };
            match r {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                // EIO (unmapped), EINVAL (an offset past i64): nothing there.
                Err(_) => break,
            }
        }
        Ok(done)
    }

    pub fn read_u64(&mut self, at: &Stopped, addr: u64) -> Result<u64, MemError> {
        let mut b = [0u8; 8];
        self.read(at, addr, &mut b)?;
        Ok(u64::from_ne_bytes(b))
    }

    pub fn read_u32(&mut self, at: &Stopped, addr: u64) -> Result<u32, MemError> {
        let mut b = [0u8; 4];
        self.read(at, addr, &mut b)?;
        Ok(u32::from_ne_bytes(b))
    }

    pub fn write_u64(&mut self, at: &Stopped, addr: u64, v: u64) -> Result<(), MemError> {
        self.write(at, addr, &v.to_ne_bytes())
    }

    /// A NUL-terminated string of at most `max` bytes: the bytes (without the NUL) and whether
    /// it ended within them. The first read is small (most strings are short paths), later
    /// ones a page at a time; no read crosses a page boundary, so a string that ends just
    /// before an unmapped page reads.
    pub fn read_cstr(
        &mut self,
        _at: &Stopped,
        addr: u64,
        max: usize,
    ) -> Result<(Vec<u8>, bool), MemError> {
        let mut out = Vec::new();
        let (_, ended) = self.scan_cstr(addr, max, FIRST_CSTR_READ, |piece| {
            out.extend_from_slice(piece)
        })?;
        Ok((out, ended))
    }

    /// The length of a NUL-terminated string, counting at most `max` bytes; `None` when it is
    /// longer or unreadable part-way (for measuring what a caller does not keep).
    pub fn cstr_len(&mut self, _at: &Stopped, addr: u64, max: usize) -> Option<usize> {
        match self.scan_cstr(addr, max, PAGE as usize, |_| {}) {
            Ok((len, true)) => Some(len),
            _ => None,
        }
    }

    /// Walks the string at `addr` for at most `max` bytes, `first` bytes at most in the first
    /// read and then a page at a time, never across a page boundary; hands each piece of it
    /// (without the NUL) to `keep`. Its length and whether it ended within `max`; EFAULT
    /// (with the bytes walked as `done`) when it runs into memory that cannot be read.
    fn scan_cstr(
        &mut self,
        addr: u64,
        max: usize,
        first: usize,
        mut keep: impl FnMut(&[u8]),
    ) -> Result<(usize, bool), MemError> {
        let mut chunk = [0u8; PAGE as usize];
        let mut len = 0usize;
        let mut step = first;
        while len < max {
            let a = addr.wrapping_add(len as u64);
            let to_page_end = (PAGE - a % PAGE) as usize;
            let want = to_page_end.min(step).min(max - len);
            step = PAGE as usize;
            let n = self
                .read_upto(a, &mut chunk[..want])
                .map_err(|e| MemError {
                    addr,
                    len: max,
                    done: len + e.done,
                    errno: e.errno,
                })?;
            if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
                keep(&chunk[..end]);
                return Ok((len + end, true));
            }
            keep(&chunk[..n]);
            len += n;
            if n < want {
                return Err(MemError {
                    addr,
                    len: max,
                    done: len,
                    errno: Errno::EFAULT,
                });
            }
        }
        Ok((len, false))
    }

    /// The pointers of a NULL-terminated pointer array (an argv), 8 bytes wide or (`wide`
    /// false, a 32-bit tracee's) 4, at most `max` of them (then the array may go on). Reads a
    /// page at a time.
    pub fn read_ptr_array(
        &mut self,
        _at: &Stopped,
        addr: u64,
        wide: bool,
        max: usize,
    ) -> Result<Vec<u64>, MemError> {
        let size = if wide { 8 } else { 4 };
        let mut ptrs = Vec::new();
        let mut buf = vec![0u8; PAGE as usize];
        let mut a = addr;
        loop {
            // To the page's end, but at least one whole pointer: an array that is not aligned
            // to its pointers' size may have one across the boundary.
            let want = ((PAGE - a % PAGE) as usize).max(size);
            let n = self.read_upto(a, &mut buf[..want])?;
            if n < size {
                return Err(MemError {
                    addr,
                    len: (ptrs.len() + 1) * size,
                    done: ptrs.len() * size + n,
                    errno: Errno::EFAULT,
                });
            }
            for c in buf[..n - n % size].chunks_exact(size) {
                // Little-endian (x86-64): a 4-byte pointer is the low half.
                let mut b = [0u8; 8];
                b[..size].copy_from_slice(c);
                let p = u64::from_le_bytes(b);
                if p == 0 || ptrs.len() >= max {
                    return Ok(ptrs);
                }
                ptrs.push(p);
            }
            a = a.wrapping_add((n - n % size) as u64);
        }
    }
}

/// The local side of a transfer: filled by a read, sent by a write.
enum Buf<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

/// An access that had to be whole: EFAULT with the count done when it was not.
fn whole(addr: u64, len: usize, done: usize) -> Result<(), MemError> {
    if done == len {
        Ok(())
    } else {
        Err(MemError {
            addr,
            len,
            done,
            errno: Errno::EFAULT,
        })
    }
}

/// process_vm_readv (`write` false) or process_vm_writev of `len` bytes at `local`.
fn vm_rw(pid: i32, addr: u64, local: *mut u8, len: usize, write: bool) -> Result<usize, Errno> {
    let l = libc::iovec {
        iov_base: local.cast(),
        iov_len: len,
    };
    let r = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: `l` describes a live local buffer of `len` bytes (written only by readv, and
    // then it is a `&mut [u8]` of the caller); the remote address is interpreted by the
    // kernel in the other process only.
    let n = unsafe {
        if write {
            libc::process_vm_writev(pid, &l, 1, &r, 1, 0)
        } else {
            libc::process_vm_readv(pid, &l, 1, &r, 1, 0)
        }
    };
    if n < 0 {
        Err(Errno::last())
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stop::Stop;

    /// Two fresh read-write pages of this process, left mapped for the test's life.
    fn two_pages() -> *mut u8 {
        // SAFETY: a fresh private anonymous mapping of our own; nothing else uses it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * PAGE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        p.cast()
    }

    /// A page with `prot` followed by an unmapped one.
    fn page_then_hole(prot: i32) -> u64 {
        let p = two_pages();
        // SAFETY: the second page and then the first of the fresh mapping above.
        unsafe {
            assert_eq!(libc::munmap(p.add(PAGE as usize).cast(), PAGE as usize), 0);
            assert_eq!(libc::mprotect(p.cast(), PAGE as usize, prot), 0);
        }
        p as u64
    }

    fn own() -> (Memory, Stopped) {
        let pid = std::process::id() as i32;
        // Only memory is accessed, and this process's own, which needs no stop.
        (Memory::new(pid), Stopped::new(pid, Stop::Interrupt))
    }

    #[test]
    fn a_pointer_array_not_aligned_to_its_pointers_reads_across_a_page() {
        // The first pointer straddles the page boundary (3 bytes before it).
        let words: [u64; 3] = [0x1111_2222_3333_4444, 0x5555, 0];
        // SAFETY: 24 bytes inside the fresh read-write mapping.
        let array = unsafe {
            let at = two_pages().add(PAGE as usize - 3);
            std::ptr::copy_nonoverlapping(words.as_ptr().cast::<u8>(), at, 24);
            at as u64
        };
        let (mut m, at) = own();
        assert_eq!(
            m.read_ptr_array(&at, array, true, 10).unwrap(),
            vec![0x1111_2222_3333_4444, 0x5555]
        );
        assert_eq!(
            m.read_ptr_array(&at, array, false, 10).unwrap(),
            vec![0x3333_4444, 0x1111_2222, 0x5555]
        );
    }

    #[test]
    fn a_write_into_a_hole_says_how_much_was_written() {
        let page = page_then_hole(libc::PROT_READ);
        let (mut m, at) = own();
        let data = vec![0x5au8; PAGE as usize + 10];
        let e = m.write(&at, page, &data).unwrap_err();
        assert_eq!((e.done, e.errno), (PAGE as usize, Errno::EFAULT));
        let mut back = vec![0u8; PAGE as usize];
        m.read(&at, page, &mut back).unwrap();
        assert!(
            back.iter().all(|&b| b == 0x5a),
            "the read-only page was written"
        );
        let e = m
            .read(&at, page, &mut vec![0u8; PAGE as usize + 1])
            .unwrap_err();
        assert_eq!((e.done, e.errno), (PAGE as usize, Errno::EFAULT));
    }

    #[test]
    fn string_lengths_stop_at_max() {
        let (mut m, at) = own();
        let s = b"/etc/passwd\0";
        let addr = s.as_ptr() as u64;
        assert_eq!(m.cstr_len(&at, addr, 100), Some(11));
        assert_eq!(m.cstr_len(&at, addr, 11), None, "the NUL is past max");
        assert_eq!(m.cstr_len(&at, addr, 12), Some(11));
        assert_eq!(
            m.read_cstr(&at, addr, 4).unwrap(),
            (b"/etc".to_vec(), false)
        );
        // A string running into a hole: how much was read.
        let page = page_then_hole(libc::PROT_READ | libc::PROT_WRITE);
        // SAFETY: the page mapped above, writable.
        unsafe { std::ptr::write_bytes(page as *mut u8, b'x', PAGE as usize) };
        assert_eq!(m.cstr_len(&at, page + 10, 1 << 20), None);
        let e = m.read_cstr(&at, page + 10, 1 << 20).unwrap_err();
        assert_eq!(e.done, PAGE as usize - 10);
    }
}
