//! The VMA model against a page-granular reference: random sequences of mmap (MAP_FIXED,
//! MAP_FIXED_NOREPLACE, file, shared anonymous), munmap, mprotect, mremap (every mode),
//! madvise fork advice, shmat and shmdt, with unaligned lengths, applied to both; after each
//! step the two must agree page by page (protection, shared or private, object and offset,
//! fork advice), on success or errno, on what a fork inherits, and the model's invariants
//! must hold (sorted, aligned, non-empty, disjoint VMAs; merging changes no page).
//!
//! The reference keeps one entry per page and implements each call's rules directly on
//! pages, so splitting and offset arithmetic, where the model's bugs would be, do not exist
//! in it. `PROPTEST_CASES` raises the number of sequences (default 256, a second or two).

use proptest::prelude::*;
use std::collections::BTreeMap;
use vigil_event::Str;
use vigil_procstate::mem::*;

const P: u64 = PAGE_SIZE;
const BASE: u64 = 0x1000_0000;
const WINDOW: u64 = 24; // pages

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Page {
    prot: u8,
    shared: bool,
    /// Object and page offset into it.
    obj: Option<(ObjectId, u64)>,
    dontfork: bool,
}

#[derive(Clone, Debug, Default)]
struct Reference {
    pages: BTreeMap<u64, Page>,
}

#[derive(Clone, Debug)]
enum Kind {
    Anon,
    SharedAnon,
    File { ino: u64, shared: bool, off: u64 },
}

#[derive(Clone, Debug)]
enum Op {
    Mmap {
        page: u64,
        len: u64,
        prot: u64,
        kind: Kind,
        noreplace: bool,
    },
    Munmap {
        page: u64,
        len: u64,
    },
    Mprotect {
        page: u64,
        len: u64,
        prot: u64,
    },
    Mremap {
        old: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new: u64,
        /// Where the kernel put it: in place, or at `new`.
        in_place: bool,
    },
    Madvise {
        page: u64,
        len: u64,
        dontfork: bool,
    },
    Shmat {
        page: u64,
        pages: u64,
        id: i64,
        rdonly: bool,
    },
    Shmdt {
        page: u64,
    },
}

fn len_strategy() -> impl Strategy<Value = u64> {
    // Whole pages, or pages and a bit (rounded up), or zero.
    prop_oneof![
        4 => (1u64..8).prop_map(|n| n * P),
        2 => (0u64..8, 1u64..P).prop_map(|(n, r)| n * P + r),
        1 => Just(0u64),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let page = 0u64..WINDOW;
    let prot = prop_oneof![Just(0u64), Just(1), Just(3), Just(5), Just(7)];
    let kind = prop_oneof![
        2 => Just(Kind::Anon),
        1 => Just(Kind::SharedAnon),
        3 => (1u64..4, any::<bool>(), 0u64..6).prop_map(|(ino, shared, off)| Kind::File { ino, shared, off }),
    ];
    let mremap_flags = prop_oneof![
        Just(0u64),
        Just(MREMAP_MAYMOVE),
        Just(MREMAP_MAYMOVE | MREMAP_FIXED),
        Just(MREMAP_MAYMOVE | MREMAP_DONTUNMAP),
        Just(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP),
        Just(MREMAP_FIXED),
    ];
    prop_oneof![
        6 => (page.clone(), len_strategy(), prot.clone(), kind, prop::bool::weighted(0.2))
            .prop_map(|(page, len, prot, kind, noreplace)| Op::Mmap { page, len, prot, kind, noreplace }),
        3 => (page.clone(), len_strategy()).prop_map(|(page, len)| Op::Munmap { page, len }),
        4 => (page.clone(), len_strategy(), prot).prop_map(|(page, len, prot)| Op::Mprotect { page, len, prot }),
        5 => (page.clone(), prop_oneof![Just(0u64), len_strategy()], len_strategy(), prop::bool::weighted(0.3), mremap_flags, page.clone(), any::<bool>())
            .prop_map(|(old, old_len, new_len, same, flags, new, in_place)| {
                // Same sizes often enough for MREMAP_DONTUNMAP to apply.
                let new_len = if same && old_len > 0 { old_len } else { new_len };
                Op::Mremap { old, old_len, new_len, flags, new, in_place }
            }),
        2 => (page.clone(), len_strategy(), any::<bool>()).prop_map(|(page, len, dontfork)| Op::Madvise { page, len, dontfork }),
        1 => (page.clone(), 1u64..4, 1i64..3, any::<bool>()).prop_map(|(page, pages, id, rdonly)| Op::Shmat { page, pages, id, rdonly }),
        1 => page.prop_map(|page| Op::Shmdt { page }),
    ]
}

fn pages_of(len: u64) -> u64 {
    len.div_ceil(P)
}

impl Reference {
    fn mapped(&self, p: u64) -> bool {
        self.pages.contains_key(&p)
    }

    fn clear(&mut self, from: u64, n: u64) {
        for p in from..from + n {
            self.pages.remove(&p);
        }
    }

    /// The page after `p` in the same mapping: same attributes, next object page.
    fn next_of(pg: Page, k: u64) -> Page {
        Page {
            obj: pg.obj.map(|(o, off)| (o, off + k)),
            ..pg
        }
    }

    fn mmap(
        &mut self,
        page: u64,
        len: u64,
        prot: u64,
        obj: Option<(ObjectId, u64)>,
        shared: bool,
        noreplace: bool,
    ) -> Result<(), i32> {
        if len == 0 {
            return Err(22);
        }
        let n = pages_of(len);
        if noreplace && (page..page + n).any(|p| self.mapped(p)) {
            return Err(17);
        }
        for i in 0..n {
            self.pages.insert(
                page + i,
                Page {
                    prot: (prot & 7) as u8,
                    shared,
                    obj: obj.map(|(o, off)| (o, off + i)),
                    dontfork: false,
                },
            );
        }
        Ok(())
    }

    fn munmap(&mut self, page: u64, len: u64) -> Result<(), i32> {
        if len == 0 {
            return Err(22);
        }
        self.clear(page, pages_of(len));
        Ok(())
    }

    fn mprotect(&mut self, page: u64, len: u64, prot: u64) -> Result<(), i32> {
        if len == 0 {
            return Ok(());
        }
        for p in page..page + pages_of(len) {
            match self.pages.get_mut(&p) {
                Some(pg) => pg.prot = (prot & 7) as u8,
                None => return Err(12),
            }
        }
        Ok(())
    }

    fn madvise(&mut self, page: u64, len: u64, dontfork: bool) -> Result<(), i32> {
        let mut hole = false;
        for p in page..page + pages_of(len) {
            match self.pages.get_mut(&p) {
                Some(pg) => pg.dontfork = dontfork,
                None => hole = true,
            }
        }
        if hole { Err(12) } else { Ok(()) }
    }

    /// Moves `keep` pages from `old` to `new`, extended to `n_new` pages.
    fn move_pages(
        &mut self,
        old: u64,
        keep: u64,
        new: u64,
        n_new: u64,
        dontunmap: bool,
    ) -> Result<(), i32> {
        let moved: Vec<Page> = (old..old + keep)
            .filter_map(|p| self.pages.get(&p).copied())
            .collect();
        if moved.len() as u64 != keep {
            return Err(14);
        }
        if !dontunmap {
            self.clear(old, keep);
        }
        let last = moved[moved.len() - 1];
        for i in 0..n_new {
            let pg = if i < keep {
                moved[i as usize]
            } else {
                Self::next_of(last, i - keep + 1)
            };
            self.pages.insert(new + i, pg);
        }
        Ok(())
    }

    fn mremap(
        &mut self,
        old: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new: u64,
        result: u64,
    ) -> Result<(), i32> {
        let maymove = flags & MREMAP_MAYMOVE != 0;
        let fixed = flags & MREMAP_FIXED != 0;
        let dontunmap = flags & MREMAP_DONTUNMAP != 0;
        if (fixed || dontunmap) && !maymove || dontunmap && old_len != new_len {
            return Err(22);
        }
        let (n_old, n_new) = (pages_of(old_len), pages_of(new_len));
        if n_new == 0 {
            return Err(22);
        }
        let Some(first) = self.pages.get(&old).copied() else {
            return Err(14);
        };
        if fixed && result != new {
            return Err(22);
        }
        if n_old == 0 {
            if !first.shared || !maymove {
                return Err(22);
            }
            for i in 0..n_new {
                self.pages.insert(result + i, Self::next_of(first, i));
            }
            return Ok(());
        }
        if fixed || dontunmap {
            if result < old + n_old && old < result + n_new {
                return Err(22);
            }
            self.clear(result, n_new);
            if n_old > n_new {
                self.clear(old + n_new, n_old - n_new);
            }
            return self.move_pages(old, n_old.min(n_new), result, n_new, dontunmap);
        }
        if n_new <= n_old {
            if result != old {
                return Err(22);
            }
            self.clear(old + n_new, n_old - n_new);
            return Ok(());
        }
        if (old..old + n_old).any(|p| !self.mapped(p)) {
            return Err(14);
        }
        if result == old {
            let last = self.pages[&(old + n_old - 1)];
            for i in n_old..n_new {
                self.pages
                    .insert(old + i, Self::next_of(last, i - n_old + 1));
            }
            return Ok(());
        }
        if !maymove {
            return Err(22);
        }
        self.clear(result, n_new);
        self.move_pages(old, n_old, result, n_new, false)
    }

    fn shmat(&mut self, page: u64, pages: u64, id: i64, rdonly: bool) {
        for i in 0..pages {
            self.pages.insert(
                page + i,
                Page {
                    prot: if rdonly { 1 } else { 3 },
                    shared: true,
                    obj: Some((ObjectId::SysV(id), i)),
                    dontfork: false,
                },
            );
        }
    }

    fn shmdt(&mut self, page: u64) -> Result<(), i32> {
        let attached =
            |p: u64, pg: &Page| matches!(pg.obj, Some((ObjectId::SysV(_), off)) if off == p - page);
        let Some(id) = self
            .pages
            .range(page..)
            .find(|(p, pg)| attached(**p, pg))
            .and_then(|(_, pg)| pg.obj.map(|(o, _)| o))
        else {
            return Err(22);
        };
        let gone: Vec<u64> = self
            .pages
            .range(page..)
            .filter(|(p, pg)| attached(**p, pg) && pg.obj.map(|(o, _)| o) == Some(id))
            .map(|(p, _)| *p)
            .collect();
        for p in gone {
            self.pages.remove(&p);
        }
        Ok(())
    }

    fn fork(&self) -> BTreeMap<u64, Page> {
        self.pages
            .iter()
            .filter(|(_, pg)| !pg.dontfork)
            .map(|(p, pg)| (*p, *pg))
            .collect()
    }
}

/// The model's VMAs expanded to pages (relative to BASE).
fn expand(a: &AddressSpace) -> BTreeMap<u64, Page> {
    let mut out = BTreeMap::new();
    for v in a.iter() {
        for addr in (v.start..v.end).step_by(P as usize) {
            let obj = match &v.backing {
                Backing::Anonymous => None,
                Backing::Object { id, .. } => v.offset_at(addr).map(|o| (*id, o / P)),
            };
            out.insert(
                (addr - BASE) / P,
                Page {
                    prot: v.prot.bits(),
                    shared: v.shared,
                    obj,
                    dontfork: v.dontfork,
                },
            );
        }
    }
    out
}

struct Both {
    model: AddressSpace,
    reference: Reference,
    next_anon: u64,
}

impl Both {
    fn step(&mut self, op: &Op) -> (Result<(), i32>, Result<(), i32>) {
        let at = |p: u64| BASE + p * P;
        let m = &mut self.model;
        let r = &mut self.reference;
        let errno = |e: MemError| e.errno();
        match op.clone() {
            Op::Mmap {
                page,
                len,
                prot,
                kind,
                noreplace,
            } => {
                let fixed = if noreplace {
                    MAP_FIXED_NOREPLACE
                } else {
                    MAP_FIXED
                };
                let (flags, object, offset, robj, shared) = match kind {
                    Kind::Anon => (MAP_PRIVATE | MAP_ANONYMOUS, None, 0, None, false),
                    Kind::SharedAnon => {
                        self.next_anon += 1;
                        let id = ObjectId::SharedAnon(self.next_anon);
                        (
                            MAP_SHARED | MAP_ANONYMOUS,
                            Some(MappedObject::shared_anon(self.next_anon)),
                            0,
                            Some((id, 0)),
                            true,
                        )
                    }
                    Kind::File { ino, shared, off } => {
                        let id = ObjectId::File { dev: 1, ino };
                        let obj = MappedObject {
                            id,
                            path: Str::from(format!("/f{ino}")),
                        };
                        let t = if shared { MAP_SHARED } else { MAP_PRIVATE };
                        (t, Some(obj), off * P, Some((id, off)), shared)
                    }
                };
                let mm = Mmap {
                    addr: at(page),
                    len,
                    prot,
                    flags: flags | fixed,
                    object,
                    offset,
                };
                (
                    m.mmap(&mm).map(|_| ()).map_err(errno),
                    r.mmap(page, len, prot, robj, shared, noreplace),
                )
            }
            Op::Munmap { page, len } => {
                (m.munmap(at(page), len).map_err(errno), r.munmap(page, len))
            }
            Op::Mprotect { page, len, prot } => (
                m.mprotect(at(page), len, prot).map_err(errno),
                r.mprotect(page, len, prot),
            ),
            Op::Madvise {
                page,
                len,
                dontfork,
            } => {
                let advice = if dontfork { MADV_DONTFORK } else { MADV_DOFORK };
                let got = m.madvise(at(page), len, advice).map_err(errno);
                let want = if len == 0 {
                    Ok(())
                } else {
                    r.madvise(page, len, dontfork)
                };
                (got, want)
            }
            Op::Mremap {
                old,
                old_len,
                new_len,
                flags,
                new,
                in_place,
            } => {
                let result = if in_place && flags & MREMAP_FIXED == 0 {
                    old
                } else {
                    new
                };
                (
                    m.mremap(at(old), old_len, new_len, flags, at(new), at(result))
                        .map_err(errno),
                    r.mremap(old, old_len, new_len, flags, new, result),
                )
            }
            Op::Shmat {
                page,
                pages,
                id,
                rdonly,
            } => {
                let obj = MappedObject {
                    id: ObjectId::SysV(id),
                    path: Str::from("/SYSV00000000 (deleted)"),
                };
                let flags = if rdonly { SHM_RDONLY } else { 0 };
                let got = m
                    .shmat(at(page), pages * P, obj, flags)
                    .map(|_| ())
                    .map_err(errno);
                r.shmat(page, pages, id, rdonly);
                (got, Ok(()))
            }
            Op::Shmdt { page } => (
                m.shmdt(at(page), None).map(|_| ()).map_err(errno),
                r.shmdt(page),
            ),
        }
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn model_agrees_with_a_page_granular_reference(ops in prop::collection::vec(op_strategy(), 1..48)) {
        let mut both = Both { model: AddressSpace::new(), reference: Reference::default(), next_anon: 0 };
        for (i, op) in ops.iter().enumerate() {
            let (got, want) = both.step(op);
            prop_assert_eq!(got, want, "step {}: {:?}", i, op);
            prop_assert_eq!(both.model.check(), Ok(()), "step {}: {:?}", i, op);
            let pages = expand(&both.model);
            prop_assert_eq!(&pages, &both.reference.pages, "step {}: {:?}\n{}", i, op, both.model.to_maps_text());
            prop_assert_eq!(&expand(&AddressSpace::from_vmas(both.model.merged())), &pages, "merging changed pages");
            prop_assert_eq!(expand(&both.model.fork()), both.reference.fork(), "fork after step {}", i);
            // Queries agree with the pages.
            for p in 0..WINDOW + 8 {
                prop_assert_eq!(both.model.vma_at(BASE + p * P + 5).is_some(), pages.contains_key(&p));
            }
            let (lo, hi) = (BASE + 3 * P + 7, BASE + 9 * P);
            let got: Vec<u64> = both.model.overlapping(lo, hi).map(|v| v.start).collect();
            let expect: Vec<u64> = both.model.iter().filter(|v| v.start < hi && v.end > lo).map(|v| v.start).collect();
            prop_assert_eq!(got, expect);
        }
    }
}

/// The reference itself can fail: a wrong reference would make the property vacuous.
#[test]
fn the_reference_catches_a_wrong_split() {
    let mut both = Both {
        model: AddressSpace::new(),
        reference: Reference::default(),
        next_anon: 0,
    };
    let first = both.step(&Op::Mmap {
        page: 0,
        len: 4 * P,
        prot: 3,
        kind: Kind::File {
            ino: 1,
            shared: true,
            off: 2,
        },
        noreplace: false,
    });
    assert_eq!(first, (Ok(()), Ok(())));
    assert_eq!(both.step(&Op::Munmap { page: 1, len: 1 }), (Ok(()), Ok(())));
    assert_eq!(expand(&both.model), both.reference.pages);
    // A model whose right part lost its file offset differs.
    let mut wrong: Vec<Vma> = both.model.iter().cloned().collect();
    if let Backing::Object { offset, .. } = &mut wrong[1].backing {
        *offset = 2 * P;
    }
    assert_ne!(
        expand(&AddressSpace::from_vmas(wrong)),
        both.reference.pages
    );
}
