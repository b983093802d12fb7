# check_trace.py TRACE STEPS GLOBAL: the sample positions traced by KD_TRACE_SAMPLES over a
# whole (interrupted and resumed) run cover 0..STEPS*GLOBAL-1 exactly once, and step S
# consumed exactly [(S-1)*GLOBAL, S*GLOBAL), by exactly one attempt (the runs checked here
# stop by signal, saving at the step they stop at, so no step is ever run twice).
import collections
import sys

path, steps, G = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per_step = collections.defaultdict(list)  # step -> [(world, rank, positions)] in trace order
for n, line in enumerate(open(path), 1):
    head, _, tail = line.partition(":")
    _, s, _, r, _, w = head.split()
    per_step[int(s)].append((int(w), int(r), [int(x) for x in tail.split()]))
seen = collections.Counter()
worlds = collections.Counter()
for s in range(1, steps + 1):
    rows = per_step.get(s)
    if not rows:
        sys.exit(f"FAIL: step {s} never traced")
    w = rows[0][0]
    last = {rr: pos for rw, rr, pos in rows}
    if len(rows) != w or any(rw != w for rw, _, _ in rows) or sorted(last) != list(range(w)):
        sys.exit(f"FAIL: step {s}: traced {[(rw, rr) for rw, rr, _ in rows]} (world, rank); expected each rank of one world once")
    got = sorted(p for pos in last.values() for p in pos)
    want = list(range((s - 1) * G, s * G))
    if got != want:
        sys.exit(f"FAIL: step {s} (world {w}) consumed {got[:4]}..{got[-4:]} ({len(got)}), expected {want[0]}..{want[-1]}")
    for p in got:
        seen[p] += 1
    worlds[w] += 1
extra = sorted(set(per_step) - set(range(1, steps + 1)))
if extra:
    sys.exit(f"FAIL: steps {extra} traced beyond {steps}")
dup = [p for p, c in seen.items() if c != 1]
if dup or sorted(seen) != list(range(steps * G)):
    sys.exit(f"FAIL: positions not 0..{steps * G - 1} exactly once (repeated: {dup[:8]})")
print(f"trace: {steps * G} positions 0..{steps * G - 1} consumed exactly once; steps per world size {dict(worlds)}")
