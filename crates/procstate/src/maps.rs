//! Reading an address space from the text of /proc/PID/maps (the starting layout at exec, or a
//! check of the model against the kernel). Pure: the caller reads the file.
//!
//! Each line is `start-end perms offset major:minor inode [name]`. A name in brackets is a
//! special mapping (`[heap]`, `[stack]`, `[vdso]`, `[anon:NAME]`); SysV segments show as
//! `/SYSVkkkkkkkk (deleted)` with the shmid as their inode, shared anonymous memory as
//! `/dev/zero (deleted)` with the inode of its shmem object.

use crate::mem::{AddressSpace, Backing, ObjectId, Prot, Role, Vma};
use vigil_event::Str;

/// The device of the kernel's internal shmem mount as /proc/PID/maps shows it (`00:01` on
/// current kernels); used only to print shared anonymous and SysV mappings.
pub const SHMEM_DEV: u64 = 1;

/// `major:minor` as the one `dev_t` encoding stat(2) uses (glibc's `makedev`).
pub fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}

/// The major and minor numbers of a `dev_t`.
pub fn dev_split(dev: u64) -> (u64, u64) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0xff);
    (major, minor)
}

/// A line of /proc/PID/maps that does not read as one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("/proc/PID/maps line {line}: {reason}: {text:?}")]
pub struct MapsError {
    /// 1-based.
    pub line: usize,
    pub reason: &'static str,
    pub text: String,
}

/// Every VMA of a /proc/PID/maps text, in an address space (no break known yet: the first
/// brk call, or the `[heap]` VMA, gives it).
pub fn parse_maps(text: &str) -> Result<AddressSpace, MapsError> {
    let mut vmas = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        vmas.push(parse_line(line).map_err(|reason| MapsError {
            line: i + 1,
            reason,
            text: line.chars().take(200).collect(),
        })?);
    }
    Ok(AddressSpace::from_vmas(vmas))
}

fn hex(s: &str, what: &'static str) -> Result<u64, &'static str> {
    u64::from_str_radix(s, 16).map_err(|_| what)
}

/// One line of /proc/PID/maps.
pub fn parse_line(line: &str) -> Result<Vma, &'static str> {
    let mut rest = line.trim_start();
    let mut field = |what: &'static str| -> Result<&str, &'static str> {
        let s = rest.trim_start();
        let end = s.find(' ').unwrap_or(s.len());
        let (f, r) = s.split_at(end);
        rest = r;
        if f.is_empty() { Err(what) } else { Ok(f) }
    };
    let range = field("no address range")?;
    let perms = field("no permissions")?;
    let offset = field("no offset")?;
    let dev = field("no device")?;
    let inode = field("no inode")?;
    let name = rest.trim_start();
    let (start, end) = range.split_once('-').ok_or("bad address range")?;
    let (start, end) = (hex(start, "bad start")?, hex(end, "bad end")?);
    check_range(start, end)?;
    let p = perms.as_bytes();
    if p.len() != 4 {
        return Err("bad permissions");
    }
    let mut prot = Prot::NONE;
    for (i, (c, bit)) in [(b'r', Prot::READ), (b'w', Prot::WRITE), (b'x', Prot::EXEC)]
        .iter()
        .enumerate()
    {
        match p[i] {
            b'-' => {}
            x if x == *c => prot = prot.union(*bit),
            _ => return Err("bad permissions"),
        }
    }
    let shared = match p[3] {
        b's' => true,
        b'p' => false,
        _ => return Err("bad permissions"),
    };
    let offset = hex(offset, "bad offset")?;
    let (major, minor) = dev.split_once(':').ok_or("bad device")?;
    let dev = makedev(hex(major, "bad device")?, hex(minor, "bad device")?);
    let ino: u64 = inode.parse().map_err(|_| "bad inode")?;
    vma_of(start..end, prot, shared, offset, dev, ino, name.as_bytes())
}

/// A VMA's range must be a whole number of pages, at least one.
fn check_range(start: u64, end: u64) -> Result<(), &'static str> {
    if start >= end
        || !start.is_multiple_of(crate::mem::PAGE_SIZE)
        || !end.is_multiple_of(crate::mem::PAGE_SIZE)
    {
        return Err("empty or unaligned range");
    }
    Ok(())
}

/// A VMA from the fields of its /proc/PID/maps line, the name telling what is mapped (a
/// special mapping, a SysV segment, shared anonymous memory, a file): what a line of the
/// text and a line of an address-space snapshot event both become.
fn vma_of(
    range: std::ops::Range<u64>,
    prot: Prot,
    shared: bool,
    offset: u64,
    dev: u64,
    ino: u64,
    name: &[u8],
) -> Result<Vma, &'static str> {
    let (start, end) = (range.start, range.end);
    check_range(start, end)?;
    let bracketed = name.starts_with(b"[") && name.ends_with(b"]");
    let role = match name {
        b"[heap]" => Role::Heap,
        b"[stack]" => Role::Stack,
        _ if bracketed => Role::Named(Str::from(name)),
        _ => Role::Plain,
    };
    let deleted = name.ends_with(b" (deleted)");
    let backing = if ino == 0 && (name.is_empty() || bracketed) {
        Backing::Anonymous
    } else {
        let id = if name.starts_with(b"/SYSV") && deleted {
            ObjectId::SysV(ino as i64)
        } else if shared && (name == b"/dev/zero (deleted)" || name.starts_with(b"[anon_shmem:")) {
            ObjectId::SharedAnon(ino)
        } else {
            ObjectId::File { dev, ino }
        };
        Backing::Object {
            id,
            path: Str::from(name),
            offset,
        }
    };
    Ok(Vma {
        start,
        end,
        prot,
        shared,
        backing,
        role,
        dontfork: false,
        wipeonfork: false,
        // What the ELF loader mapped writable is charged; nothing else can have been yet.
        accounted: !shared && prot.writable(),
    })
}

/// The address space an address-space snapshot event describes (each of its VMAs read as
/// its /proc/PID/maps line would be, without going through the text: a name that is not
/// UTF-8 stays as it is).
pub fn from_snapshot(snap: &vigil_event::memory::AddressSpace) -> Result<AddressSpace, MapsError> {
    let mut vmas = Vec::with_capacity(snap.vmas.len());
    for (i, v) in snap.vmas.iter().enumerate() {
        let prot = Prot::from_raw(u64::from(v.prot));
        let vma = vma_of(
            v.start..v.end,
            prot,
            v.shared,
            v.offset,
            v.dev,
            v.ino,
            v.path.as_bytes(),
        )
        .map_err(|reason| MapsError {
            line: i + 1,
            reason,
            text: maps_line(v).chars().take(200).collect(),
        })?;
        vmas.push(vma);
    }
    Ok(AddressSpace::from_vmas(vmas))
}

/// A snapshot's VMA as its /proc/PID/maps line (for saying which one is wrong).
fn maps_line(v: &vigil_event::memory::Vma) -> String {
    let (major, minor) = dev_split(v.dev);
    format!(
        "{:x}-{:x} {} {:08x} {major:02x}:{minor:02x} {} {}",
        v.start,
        v.end,
        v.perms(),
        v.offset,
        v.ino,
        String::from_utf8_lossy(v.path.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_event_carries_every_field_of_the_maps_lines() {
        let space = parse_maps(SAMPLE).unwrap();
        let snap = space.snapshot();
        assert_eq!(snap.vmas.len(), space.len());
        assert_eq!(snap.vmas[0].perms(), "r--p");
        assert_eq!(snap.vmas[0].path.as_bytes(), b"/usr/bin/prog");
        assert_eq!(snap.vmas[2].path.as_bytes(), b"[heap]");
        // Applied back (as an offline consumer of the log does), it is the same space.
        let mut p = crate::Processes::new();
        p.apply(&vigil_event::Event {
            seq: 0,
            time_ns: 0,
            pid: 5,
            tid: 5,
            kind: vigil_event::EventKind::AddressSpace(snap),
        })
        .unwrap();
        assert_eq!(
            p.mm(5).unwrap().iter().collect::<Vec<_>>(),
            space.iter().collect::<Vec<_>>()
        );
    }

    const SAMPLE: &str = "\
00400000-00401000 r--p 00000000 fd:01 1234                               /usr/bin/prog
00401000-00402000 r-xp 00001000 fd:01 1234                               /usr/bin/prog
01b2c000-01b4d000 rw-p 00000000 00:00 0                                  [heap]
7f0000000000-7f0000002000 rw-s 00000000 00:01 99                         /dev/zero (deleted)
7f0000002000-7f0000003000 r--s 00001000 00:01 32770                      /SYSV0000abcd (deleted)
7f0000003000-7f0000004000 rw-s 00002000 103:05 77                        /tmp/with space
7f0000004000-7f0000005000 ---p 00000000 00:00 0 
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
7ffd00100000-7ffd00102000 r-xp 00000000 00:00 0                          [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";

    #[test]
    fn parses_every_kind_of_line() {
        let a = parse_maps(SAMPLE).unwrap();
        a.check().unwrap();
        assert_eq!(a.len(), 10);
        let v: Vec<&Vma> = a.iter().collect();
        assert_eq!(
            v[1].object(),
            Some(&ObjectId::File {
                dev: makedev(0xfd, 1),
                ino: 1234
            })
        );
        assert_eq!(v[1].offset_at(0x401000), Some(0x1000));
        assert_eq!(v[1].prot, Prot::READ.union(Prot::EXEC));
        assert_eq!(v[2].role, Role::Heap);
        assert_eq!(v[2].backing, Backing::Anonymous);
        assert_eq!(v[3].object(), Some(&ObjectId::SharedAnon(99)));
        assert!(v[3].shared);
        assert_eq!(v[4].object(), Some(&ObjectId::SysV(32770)));
        assert_eq!(
            v[5].path().map(|p| p.to_string()).as_deref(),
            Some("/tmp/with space")
        );
        assert_eq!(
            v[5].object(),
            Some(&ObjectId::File {
                dev: makedev(0x103, 5),
                ino: 77
            })
        );
        assert_eq!(v[6].prot, Prot::NONE);
        assert_eq!(v[6].role, Role::Plain);
        assert_eq!(v[7].role, Role::Stack);
        assert_eq!(v[8].role, Role::Named(Str::from("[vdso]")));
        assert_eq!(v[9].end, 0xffffffffff601000);
    }

    #[test]
    fn round_trips_through_the_maps_form() {
        let a = parse_maps(SAMPLE).unwrap();
        let b = parse_maps(&a.to_maps_text()).unwrap();
        assert_eq!(a, b);
        assert!(a.to_maps_text().contains(
            "7f0000003000-7f0000004000 rw-s 00002000 103:05 77                        /tmp/with space\n"
        ));
    }

    #[test]
    fn brk_continues_from_a_snapshot_heap() {
        let mut a = parse_maps(SAMPLE).unwrap();
        a.brk_to(0x01b4d000 + 0x1800).unwrap();
        assert_eq!(a.vma_at(0x01b4e000).map(|v| v.end), Some(0x01b4f000));
        assert_eq!(a.brk().map(|b| b.start), Some(0x01b2c000));
    }

    #[test]
    fn refuses_bad_lines_with_their_number() {
        for (bad, why) in [
            ("00400000 r--p 00000000 fd:01 1 /x", "bad address range"),
            (
                "00401000-00400000 r--p 00000000 fd:01 1 /x",
                "empty or unaligned range",
            ),
            (
                "00400000-00401000 rwz- 00000000 fd:01 1 /x",
                "bad permissions",
            ),
            ("00400000-00401000 r--p 0000zz00 fd:01 1 /x", "bad offset"),
            ("00400000-00401000 r--p 00000000 fd01 1 /x", "bad device"),
            ("00400000-00401000 r--p 00000000 fd:01 x /x", "bad inode"),
            ("00400000-00401000 r--p", "no offset"),
        ] {
            let e = parse_maps(&format!("\n{bad}\n")).unwrap_err();
            assert_eq!((e.line, e.reason), (2, why), "{bad}");
        }
    }

    #[test]
    fn a_snapshot_reads_as_its_text_would_and_keeps_names_that_are_not_utf8() {
        let space = parse_maps(SAMPLE).unwrap();
        assert_eq!(from_snapshot(&space.snapshot()), Ok(space));
        let mut vmas = parse_maps(SAMPLE).unwrap().snapshot().vmas.to_vec();
        vmas[5].path = Str::from(&b"/tmp/\xff\xfe"[..]);
        let snap = vigil_event::memory::AddressSpace {
            vmas: vmas.clone().into(),
        };
        let a = from_snapshot(&snap).unwrap();
        assert_eq!(
            a.iter().nth(5).and_then(|v| v.path()).map(|p| p.as_bytes()),
            Some(&b"/tmp/\xff\xfe"[..])
        );
        vmas[2].end = vmas[2].start + 10;
        let e =
            from_snapshot(&vigil_event::memory::AddressSpace { vmas: vmas.into() }).unwrap_err();
        assert_eq!((e.line, e.reason), (3, "empty or unaligned range"));
        assert!(e.text.ends_with("[heap]"), "{}", e.text);
    }

    #[test]
    fn dev_numbers_round_trip() {
        for (ma, mi) in [(0, 1), (0xfd, 1), (259, 0x1234), (0x12345, 0xabcdef)] {
            assert_eq!(dev_split(makedev(ma, mi)), (ma, mi));
        }
        assert_eq!(makedev(8, 1), 0x801);
    }
}
