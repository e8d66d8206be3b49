#!/usr/bin/env python3
"""The Python `multiprocessing.Pool` peer of spychro's benchmark suite.

`benches/suite.rs` runs this script once per measured run (so each run's peak RSS is its own),
with `python3`; see BENCHMARKS.md. It prints one line of JSON on stdout:

    python3 bench/python_pool.py WORKLOAD --method fork|spawn --processes N [options]

WORKLOAD is one of tiny, unbatched, cpu, payload, files, start, stream, reuse, call (the
suite's workloads), idle (RSS of pool workers) or calibrate (iterations of the cpu loop that take
about 1 ms here).

Timing is `time.perf_counter()` around the whole pool life: create the pool, map, close and
join it (join reaps the workers, so their CPU time is in RUSAGE_CHILDREN). CPU time is user +
sys of this process and of its reaped children, as deltas around the same span. The checksum
lets the suite check the outputs against what it computes itself.

reuse runs --jobs maps of --items items each (job j maps range(j * items, (j + 1) * items))
on one pool, within the same span. call is timed differently: on a pool started and warmed up
beforehand, --items calls `pool.apply_async(plus_one, (x,)).get()` one after another, each
timed on its own; it reports their median and percentiles (CPU time from the first timed call
until the pool is joined).

files maps `file_digest` over every file under --dir (a tree the suite made; --items is how
many files it holds), the paths walked and sorted before the clock starts, as the Rust peers do.
"""

import argparse
import functools
import hashlib
import json
import math
import multiprocessing as mp
import os
import resource
import sys
import time

MASK = (1 << 64) - 1
BUMP = bytes((k + 1) & 0xFF for k in range(256))


def plus_one(x):
    return x + 1


def spin(seed, iters):
    """The cpu workload's integer work: `iters` xorshift64 steps, the same as the Rust side."""
    s = (seed ^ 0x9E3779B97F4A7C15) & MASK
    if s == 0:
        s = 1
    for _ in range(iters):
        s ^= (s << 13) & MASK
        s ^= s >> 7
        s ^= (s << 17) & MASK
    return s


def bump(b):
    """The payload workload: every byte plus one (wrapping), a new buffer of the same size."""
    return b.translate(BUMP)


def file_digest(path):
    """The files workload: the SHA-256 of the whole file, its first 8 bytes as a big-endian
    integer, the same as the Rust side."""
    with open(path, "rb") as f:
        return int.from_bytes(hashlib.sha256(f.read()).digest()[:8], "big")


def file_list(top):
    """Every file under `top`, as paths, sorted (the same order as the Rust side's byte order
    for the suite's ASCII names)."""
    paths = []
    for root, _dirs, names in os.walk(top):
        paths.extend(os.path.join(root, name) for name in names)
    paths.sort()
    return paths


def nap(ms):
    time.sleep(ms / 1000.0)
    return os.getpid()


def cpu_now():
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + kids.ru_utime, me.ru_stime + kids.ru_stime


def weighted(outputs):
    """sum((i + 1) * out[i]) mod 2**64: order-sensitive, the same as the Rust side."""
    acc = 0
    for i, v in enumerate(outputs, 1):
        acc = (acc + i * v) & MASK
    return acc


def payload_checksum(outputs):
    """sum((i + 1) * (len + sum of every 4099th byte)) mod 2**64, as on the Rust side."""
    acc = 0
    for i, out in enumerate(outputs, 1):
        acc = (acc + i * (len(out) + sum(out[::4099]))) & MASK
    return acc


def payload_inputs(items, size):
    """Item i holds bytes (i + j) mod 256, j = 0..size."""
    base = bytes(range(256)) * (size // 256 + 2)
    return [base[i % 256 : i % 256 + size] for i in range(items)]


def latency_summary(seconds):
    """Per-call latencies in µs: the median (of the middle two for an even count), mean, and
    nearest-rank percentiles, the same as the Rust side."""
    s = sorted(seconds)
    n = len(s)
    if n == 0:
        return {}

    def rank(q):
        return s[min(max(math.ceil(q * n), 1), n) - 1] * 1e6

    median = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    return {
        "median_us": median * 1e6,
        "p90_us": rank(0.9),
        "p99_us": rank(0.99),
        "min_us": s[0] * 1e6,
        "max_us": s[-1] * 1e6,
        "mean_us": sum(s) / n * 1e6,
    }


# Calls made on the warm pool before any is timed (the same as the Rust side).
CALL_WARMUP = 20


def call(ctx, procs, calls):
    """The call workload: one call's round trip, `calls` times, on a warm reused pool."""
    pool = ctx.Pool(procs)
    # Every worker up and through a task, then a few calls.
    pool.map(plus_one, range(4 * procs), chunksize=1)
    for x in range(CALL_WARMUP):
        if pool.apply_async(plus_one, (x,)).get() != x + 1:
            sys.exit(f"warm-up call of {x} gave a wrong output")
    latencies = []
    outputs = []
    u0, s0 = cpu_now()
    t0 = time.perf_counter()
    for x in range(calls):
        t = time.perf_counter()
        out = pool.apply_async(plus_one, (x,)).get()
        latencies.append(time.perf_counter() - t)
        outputs.append(out)
    wall = time.perf_counter() - t0
    pool.close()
    pool.join()
    u1, s1 = cpu_now()
    out = latency_summary(latencies)
    out.update(
        items=calls,
        wall_s=wall,
        user_s=u1 - u0,
        sys_s=s1 - s0,
        checksum=weighted(outputs),
        peak_rss_kib=status_kib(os.getpid(), "VmHWM"),
    )
    return out


def chunk(arg, items, processes):
    """The chunksize given to map: None (Python's default) or a number. Also returns the
    chunksize Python actually uses, for the report."""
    if arg == "default":
        c, extra = divmod(items, processes * 4)
        return None, c + 1 if extra else max(c, 1)
    return int(arg), int(arg)


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workload")
    ap.add_argument("--method", default="fork", choices=["fork", "spawn", "forkserver"])
    ap.add_argument("--processes", type=int, default=os.cpu_count())
    ap.add_argument("--items", type=int, default=1000, help="reuse: items per job")
    ap.add_argument("--jobs", type=int, default=1, help="reuse: maps on the one pool")
    ap.add_argument("--size", type=int, default=1 << 20, help="payload bytes per item")
    ap.add_argument("--iters", type=int, default=1000, help="cpu: xorshift steps per item")
    ap.add_argument("--chunksize", default="default", help="'default' or a number")
    ap.add_argument("--dir", help="files: the tree whose files are hashed")
    ap.add_argument("--target-ms", type=float, default=1.0, help="calibrate: ms per item")
    a = ap.parse_args()
    procs = a.processes
    out = {
        "python": sys.version.split()[0],
        "method": a.method,
        "workload": a.workload,
    }

    if a.workload == "calibrate":
        def timed(iters):
            t = time.perf_counter()
            spin(1, iters)
            return time.perf_counter() - t

        iters = 1000
        while timed(iters) < 0.02 and iters < 1 << 30:
            iters *= 4
        # The fastest of a few tries is the one least disturbed by other processes.
        took = min(timed(iters) for _ in range(5))
        iters = max(1, int(iters * (a.target_ms / 1000.0) / took))
        times = []
        for i in range(21):
            t = time.perf_counter()
            spin(i, iters)
            times.append(time.perf_counter() - t)
        times.sort()
        out.update(iters=iters, item_s=times[len(times) // 2])
        print(json.dumps(out))
        return

    ctx = mp.get_context(a.method)

    if a.workload == "call":
        out.update(call(ctx, procs, a.items))
        print(json.dumps(out))
        return

    if a.workload == "idle":
        # Start the pool, make sure every worker is up (one tiny task each), then give one
        # worker a sleeping task and read every worker's memory while it sleeps.
        pool = ctx.Pool(procs)
        pool.map(plus_one, range(procs * 4), chunksize=1)
        pending = pool.apply_async(nap, (600,))
        time.sleep(0.3)
        workers = []
        for p in mp.active_children():
            workers.append(
                {
                    "pid": p.pid,
                    "rss_kib": status_kib(p.pid, "VmRSS"),
                    "pss_kib": pss_kib(p.pid),
                }
            )
        pending.get()
        pool.close()
        pool.join()
        out.update(workers=workers, parent_rss_kib=status_kib(os.getpid(), "VmRSS"))
        print(json.dumps(out))
        return

    # Inputs are made before the clock starts.
    chunksize, effective = None, None
    if a.workload in ("tiny", "unbatched"):
        items = range(a.items)
        func = plus_one
        chunksize, effective = chunk(a.chunksize, a.items, procs)
    elif a.workload == "cpu":
        items = range(a.items)
        func = functools.partial(spin, iters=a.iters)
        chunksize, effective = chunk(a.chunksize, a.items, procs)
    elif a.workload == "payload":
        items = payload_inputs(a.items, a.size)
        func = bump
        chunksize, effective = chunk(a.chunksize, a.items, procs)
    elif a.workload == "files":
        if not a.dir:
            sys.exit("files needs --dir")
        items = file_list(a.dir)
        if len(items) != a.items:
            sys.exit(f"{a.dir} holds {len(items)} files where {a.items} were expected")
        func = file_digest
        chunksize, effective = chunk(a.chunksize, a.items, procs)
    elif a.workload == "start":
        a.items = procs
        items = range(procs)
        func = plus_one
        chunksize, effective = 1, 1
    elif a.workload == "reuse":
        items = None  # each job's range is made in the loop (a range costs nothing)
        func = plus_one
        chunksize, effective = chunk(a.chunksize, a.items, procs)
    elif a.workload == "stream":
        items = range(a.items)
        func = plus_one
        # imap's default chunksize is 1: 10M round trips. A fixed chunk keeps it feasible.
        chunksize = effective = 10_000 if a.chunksize == "default" else int(a.chunksize)
    else:
        sys.exit(f"unknown workload {a.workload}")

    u0, s0 = cpu_now()
    t0 = time.perf_counter()
    pool = ctx.Pool(procs)
    if a.workload == "stream":
        count = 0
        bad = 0
        for i, v in enumerate(pool.imap(func, items, chunksize=chunksize)):
            if v != i + 1:
                bad += 1
            count += 1
        outputs = None
    elif a.workload == "reuse":
        n = a.items
        outputs = []
        for j in range(a.jobs):
            outputs.extend(pool.map(func, range(j * n, (j + 1) * n), chunksize=chunksize))
    else:
        outputs = pool.map(func, items, chunksize=chunksize)
    pool.close()
    pool.join()
    wall = time.perf_counter() - t0
    u1, s1 = cpu_now()

    if a.workload == "stream":
        checksum = count if bad == 0 else -bad
    elif a.workload == "payload":
        checksum = payload_checksum(outputs)
    else:
        checksum = weighted(outputs)
    out.update(
        items=a.items * a.jobs if a.workload == "reuse" else a.items,
        chunksize=effective,
        wall_s=wall,
        user_s=u1 - u0,
        sys_s=s1 - s0,
        checksum=checksum,
        # This interpreter's peak RSS, inputs and outputs included. VmHWM, not ru_maxrss:
        # after exec, ru_maxrss also counts the peak of the process that started us.
        peak_rss_kib=status_kib(os.getpid(), "VmHWM"),
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
