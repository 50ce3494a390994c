#!/usr/bin/env python3
"""Turns the eql peer's synthetic events (gen_events.py) into vigil's JSON-lines event schema
(docs/event-schema.md), for `vigil import`.

Usage: to_vigil.py EVENTS.jsonl OUT.jsonl

Mapping (one eql event becomes one vigil event, except process/exit):
  syscall enter/exit  -> syscall_entry / syscall_exit by number (`nr`); an exit carries the
                         seq of its thread's pending entry as `entry_seq`
  file/open           -> openat exit (path, flags, the new fd 3 pointing at the path)
  file/write          -> write exit on fd 3 whose target is the path
  file/unlink         -> unlinkat exit (path)
  network/connect     -> connect exit (addr inet dest_ip:dest_port)
  network/accept      -> accept exit (peer inet dest_ip:dest_port)
  process/exec        -> process_exec (exe = path, argv = [process_name])
  process/fork        -> process_start (ppid)
  process/exit        -> a thread_exit for every thread seen in the process (the main thread
                         last), then process_exit, as a real capture orders them
seq is renumbered from 1 (process/exit takes several); time_ns = timestamp; pid/tid as given.
"""
import json
import sys

src, dst = sys.argv[1], sys.argv[2]
dumps = json.dumps
loads = json.JSONDecoder().decode

seq = 0
pending = {}        # (pid, tid) -> seq of the syscall entry without an exit yet
threads = {}        # pid -> set of tids seen

with open(src) as inp, open(dst, "w") as out:
    w = out.write
    for line in inp:
        e = loads(line)
        t = e["event_type"]
        pid, tid, ts = e["pid"], e["tid"], e["timestamp"]
        ts_ = threads.get(pid)
        if ts_ is None:
            threads[pid] = {tid}
        elif tid not in ts_:
            ts_.add(tid)
        seq += 1
        head = '{"seq":%d,"time_ns":%d,"pid":%d,"tid":%d,' % (seq, ts, pid, tid)
        if t == "syscall":
            nr = e["syscall_nr"]
            if e["phase"] == "enter":
                pending[(pid, tid)] = seq
                w('%s"type":"syscall_entry","nr":%d}\n' % (head, nr))
            else:
                entry = pending.pop((pid, tid), 0)
                w('%s"type":"syscall_exit","nr":%d,"entry_seq":%d,"ret":%d}\n'
                  % (head, nr, entry, e.get("ret", 0)))
        elif t == "file":
            act, path = e["action"], dumps(e["path"])
            if act == "open":
                w('%s"type":"syscall_exit","syscall":"openat","ret":3,"args":{"dirfd":{"fd":-100},'
                  '"path":%s,"flags":%d,"fd":{"fd":3,"target":{"kind":"file","path":%s,"dev":0,"ino":0}}}}\n'
                  % (head, path, e.get("flags", 0), path))
            elif act == "write":
                w('%s"type":"syscall_exit","syscall":"write","ret":64,"args":{"fd":{"fd":3,'
                  '"target":{"kind":"file","path":%s,"dev":0,"ino":0}},"count":64}}\n' % (head, path))
            else:
                w('%s"type":"syscall_exit","syscall":"unlinkat","ret":0,"args":{"dirfd":{"fd":-100},'
                  '"path":%s}}\n' % (head, path))
        elif t == "network":
            addr = '{"inet":"%s:%d"}' % (e["dest_ip"], e["dest_port"])
            if e["action"] == "connect":
                w('%s"type":"syscall_exit","syscall":"connect","ret":0,"args":{"fd":{"fd":4},'
                  '"addr":%s}}\n' % (head, addr))
            else:
                w('%s"type":"syscall_exit","syscall":"accept","ret":5,"args":{"fd":{"fd":4},'
                  '"peer":%s,"newfd":{"fd":5}}}\n' % (head, addr))
        else:
            act = e["action"]
            if act == "exec":
                w('%s"type":"process_exec","exe":%s,"argv":[%s]}\n'
                  % (head, dumps(e["path"]), dumps(e["process_name"])))
            elif act == "fork":
                w('%s"type":"process_start","ppid":%d,"exe":"","argv":[]}\n' % (head, e.get("ppid", 0)))
            else:
                seq -= 1
                tids = sorted(threads.pop(pid, {pid}), key=lambda x: (x == pid, x))
                for th in tids:
                    seq += 1
                    w('{"seq":%d,"time_ns":%d,"pid":%d,"tid":%d,"type":"thread_exit","exit_code":0}\n'
                      % (seq, ts, pid, th))
                    pending.pop((pid, th), None)
                seq += 1
                w('{"seq":%d,"time_ns":%d,"pid":%d,"tid":%d,"type":"process_exit","exit_code":0}\n'
                  % (seq, ts, pid, pid))
