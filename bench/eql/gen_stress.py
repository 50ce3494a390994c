#!/usr/bin/env python3
"""The open-partial-match stress case, in the eql peer's event format (gen_events.py).

Usage: gen_stress.py N_EVENTS OUT.jsonl [N_PIDS] [SEED]

N_PIDS processes (default 5000) keep connecting to port 4444 (step 1 of q_seq3) and writing
files outside /tmp (which never advance a run), 1000 events/s of trace time: within the 5 s
span thousands of partial matches are open at every moment and none ever completes, except
one full chain per 10,000 events (connect, write /tmp/s_K, exec /tmp/s_K in 1 s), whose count
is written to OUT.truth.json.
"""
import json
import random
import sys

N = int(sys.argv[1])
OUT = sys.argv[2]
PIDS = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 7)
GAP = 1_000_000                 # 1 ms between events
chains = 0
pend = []                       # (time, event) of chain steps still to emit
ts = 0
serial = 0
with open(OUT, "w") as out:
    def emit(ev):
        global serial
        ev["serial"] = serial
        serial += 1
        out.write(json.dumps(ev, separators=(",", ":")))
        out.write("\n")

    while serial < N:
        ts += GAP
        while pend and pend[0][0] <= ts and serial < N:
            _, ev = pend.pop(0)
            ev["timestamp"] = ts
            emit(ev)
        if serial >= N:
            break
        if serial % 10_000 == 5_000 and serial + 10 < N:
            pid = 900_000 + chains          # a pid of its own: nothing else interleaves
            base = {"pid": pid, "tid": pid, "ppid": 1, "comm": "stress"}
            tmp = "/tmp/s_%d" % chains
            emit(dict(base, event_type="network", timestamp=ts, action="connect",
                      dest_ip="198.51.100.1", dest_port=4444))
            pend.append((ts + 300 * GAP, dict(base, event_type="file", action="write", path=tmp, flags=577)))
            pend.append((ts + 900 * GAP, dict(base, event_type="process", action="exec", path=tmp,
                                              process_name=tmp[5:])))
            chains += 1
            continue
        pid = 1000 + rng.randrange(PIDS)
        ev = {"pid": pid, "tid": pid, "ppid": 1, "comm": "busy", "timestamp": ts}
        if rng.random() < 0.5:
            ev.update(event_type="network", action="connect", dest_ip="10.1.2.3", dest_port=4444)
        else:
            ev.update(event_type="file", action="write", path="/var/tmp/log%d" % (pid % 7), flags=1)
        emit(ev)

with open(OUT + ".truth.json", "w") as f:
    json.dump({"seq3": chains, "events": serial}, f)
print(json.dumps({"seq3": chains, "events": serial}))
