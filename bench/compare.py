#!/usr/bin/env python3
# Two vigil binaries against each other, interleaved run by run (this machine is noisy: runs
# one after the other drift): `vigil record` of workloads A, B, C and P1 with the strace set,
# and `vigil match` of a rule file over each binary's own recording of B (an older binary may
# not read a newer log format). Run `bench/run record` first: it writes the workloads' inputs.
# usage: bench/compare.py OLD_VIGIL NEW_VIGIL [RUNS] [RULES]
import statistics, subprocess, sys, time
from pathlib import Path

root = Path(__file__).resolve().parent.parent
if len(sys.argv) < 3:
    sys.exit("usage: bench/compare.py OLD_VIGIL NEW_VIGIL [RUNS] [RULES]")
old, new = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 7
rules = sys.argv[4] if len(sys.argv) > 4 else str(root / "rules/detections.rules")
scratch = root / "target/bench-scratch"
copy = root / "target/programs/copy64k"  # built by vigil_testkit::program
copy = copy if copy.exists() else None
if copy is None or not (scratch / "cproject").exists():
    sys.exit("bench/compare.py: run bench/run record first (it builds the workloads' inputs)")
SET = "openat,read,write,execve,clone,clone3,fork,vfork,mmap"
work = {
    "A": [str(copy), str(scratch / "src64k.bin"), str(scratch / "copies"), "100"],
    "B": ["find", "/usr", "-type", "f"],
    "C": ["sh", "-c", "for i in $(seq 500); do /bin/true; done"],
    "P1": ["make", "-s", "-B", "-j2", "-C", str(scratch / "cproject")],
}


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def record(binary, log, cmd):
    return [binary, "record", "-q", "-o", log, "--syscalls", SET, "--"] + cmd


for name, cmd in work.items():
    times = {"old": [], "new": []}
    timed(record(new, "/tmp/compare-warm.vlog", cmd))
    for i in range(runs):
        order = [("old", old), ("new", new)]
        for label, binary in order if i % 2 == 0 else reversed(order):
            times[label].append(timed(record(binary, f"/tmp/compare-{label}.vlog", cmd)))
    o, n = statistics.median(times["old"]), statistics.median(times["new"])
    print(f"record {name}: old {o:.4f} s, new {n:.4f} s, new/old {n / o:.3f} ({runs} runs)", flush=True)

logs = {}
for label, binary in (("old", old), ("new", new)):
    logs[label] = f"/tmp/compare-match-{label}.vlog"
    done = subprocess.run(record(binary, logs[label], work["B"]), stdout=subprocess.DEVNULL)
    if done.returncode != 0:
        sys.exit(f"bench/compare.py: {binary} could not record workload B for the match")
times = {"old": [], "new": []}
for i in range(runs):
    order = [("old", old), ("new", new)]
    for label, binary in order if i % 2 == 0 else reversed(order):
        times[label].append(
            timed([binary, "match", "--rules", rules, "--matches", "/dev/null", logs[label]])
        )
o, n = statistics.median(times["old"]), statistics.median(times["new"])
print(f"match ({rules}) over B: old {o:.4f} s, new {n:.4f} s, new/old {n / o:.3f}", flush=True)
