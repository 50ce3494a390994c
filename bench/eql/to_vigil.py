#!/usr/bin/env python3
"""Converts the eql-peer generator's events (shared/bench/eql-peer/gen_events.py) into vigil's
JSON lines (docs/event-schema.md), so `vigil import` can turn them into a log.

    to_vigil.py EVENTS.jsonl OUT.jsonl

Every syscall gets an entry and an exit, as vigil records them: file/open -> openat;
file/write -> write on an fd whose target is the file; file/unlink -> unlinkat;
network/connect -> connect; network/accept -> accept4;
process/exec -> process_exec; process/fork -> process_start; process/exit -> thread_exit then
process_exit; syscall enter/exit -> syscall_entry/syscall_exit (the exit points at its entry).
"""
import json
import sys

src, dst = sys.argv[1], sys.argv[2]
seq = 0
open_entry = {}  # tid -> seq of its last syscall entry
dumps = json.dumps


def out(w, ev):
    global seq
    seq += 1
    ev["seq"] = seq
    w.write(dumps(ev, separators=(",", ":")))
    w.write("\n")


def call(w, base, name, ret, args, outputs=()):
    """A syscall, as vigil records one: its entry (inputs only), then its exit (inputs and the
    outputs named in `outputs`) pointing back at it."""
    out(w, dict(base, type="syscall_entry", syscall=name, args={k: v for k, v in args.items() if k not in outputs}))
    out(w, dict(base, type="syscall_exit", syscall=name, ret=ret, entry_seq=seq, args=args))


with open(src) as r, open(dst, "w") as w:
    for line in r:
        e = json.loads(line)
        base = {"time_ns": e["timestamp"], "pid": e["pid"], "tid": e["tid"]}
        t = e["event_type"]
        if t == "syscall":
            if e["phase"] == "enter":
                out(w, dict(base, type="syscall_entry", nr=e["syscall_nr"]))
                open_entry[e["tid"]] = seq
            else:
                out(w, dict(base, type="syscall_exit", nr=e["syscall_nr"], ret=e["ret"],
                            entry_seq=open_entry.pop(e["tid"], 0)))
        elif t == "file":
            path, act = e["path"], e["action"]
            target = {"kind": "file", "path": path}
            if act == "open":
                call(w, base, "openat", 3, {"dirfd": {"fd": -100}, "path": path, "flags": e["flags"],
                                            "fd": {"fd": 3, "target": target}}, outputs=("fd",))
            elif act == "write":
                call(w, base, "write", 64, {"fd": {"fd": 3, "target": target}, "buf": 0, "count": 64})
            else:
                call(w, base, "unlinkat", 0, {"dirfd": {"fd": -100}, "path": path, "flags": 0})
        elif t == "network":
            addr = {"inet": "%s:%d" % (e["dest_ip"], e["dest_port"])}
            sock = {"kind": "socket", "family": 2, "type": 1, "remote": addr}
            if e["action"] == "connect":
                call(w, base, "connect", 0, {"fd": {"fd": 4, "target": sock}, "addr": addr, "addrlen": 16})
            else:
                call(w, base, "accept4", 5, {"fd": {"fd": 3}, "peer": addr, "newfd": {"fd": 5, "target": sock}},
                     outputs=("peer", "newfd"))
        elif t == "process":
            act = e["action"]
            if act == "exec":
                out(w, dict(base, type="process_exec", exe=e["path"], argv=[e["process_name"]]))
            elif act == "fork":
                out(w, dict(base, type="process_start", ppid=e["ppid"], exe="/usr/bin/" + e["comm"],
                            argv=[e["comm"]]))
            else:
                out(w, dict(base, type="thread_exit", exit_code=0))
                out(w, dict(base, type="process_exit", exit_code=0))
