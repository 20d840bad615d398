"""Benchmark the ZeroMQ publisher (not a test): pose throughput and score latency.

Measures, on loopback, in one run:

1. **baseline**: raw pyzmq ``send_multipart`` of a pre-encoded 3-frame pose message from one
   thread -- the ceiling for any Python publisher on this machine;
2. **publisher, one subscriber that keeps up**: ``Publisher.publish_pose`` called as fast as
   possible from the caller's thread, until the publisher thread has sent every message; a
   subscriber process receives and decodes them;
3. **the same plus one stalled subscriber** (connected, never reads): must not cost more than
   10 % of the rate (ZeroMQ drops at the stalled subscriber's pipe, not at the publisher);
4. **score latency**: ``publish_pass`` -> decoded at a subscriber process (journal commit with
   ``synchronous=FULL`` included), p50/p99 over ``--passes`` passes sent at 20/s.

Usage: ``.venv/bin/python tools/bench_zmq.py [--n 200000] [--passes 200] [--repeat 3]``.
Figures go to docs/zmq.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zmq

from gaitlive.config import PublishSettings
from gaitlive.publish import Publisher
from gaitlive.publish import messages as M
from gaitlive.publish.demo import synthetic_pass

BODYPARTS = ("head", "neck", "left_knee", "right_knee", "left_hock", "right_hock",
             "left_foot", "right_foot")


def _subscriber(endpoint: str, topics: list[str], decode: bool, ready, out) -> None:
    """Child process: receive until 1.5 s of silence; report count and latencies."""
    ctx = zmq.Context()
    s = ctx.socket(zmq.SUB)
    s.rcvhwm = 0  # unlimited: this subscriber keeps up by buffering, never drops
    for t in topics:
        s.subscribe(t.encode())
    s.connect(endpoint)
    ready.set()
    n, first, last, lat = 0, None, None, []
    while s.poll(1500 if n else 20000):
        frames = s.recv_multipart()
        now = time.monotonic()
        if decode:
            msg = M.decode(frames)
            if msg.kind == "pass":
                lat.append(now - msg.header["t_mono"])
            if msg.kind not in ("pose", "pass"):
                continue
        n += 1
        first = first if first is not None else now
        last = now
    out.put({"n": n, "first": first, "last": last, "lat": lat})
    s.close(linger=0)
    ctx.term()


def _start_sub(endpoint: str, topics: list[str], decode: bool = True):
    mpc = mp.get_context("spawn")
    ready, out = mpc.Event(), mpc.Queue()
    p = mpc.Process(target=_subscriber, args=(endpoint, topics, decode, ready, out),
                    daemon=True)
    p.start()
    ready.wait(30)
    return p, out


def bench_baseline(n: int) -> float:
    """Raw pyzmq: pre-encoded pose messages, one thread, one receiving process."""
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.sndhwm = 0
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    sub, out = _start_sub(f"tcp://127.0.0.1:{port}", ["pose/"], decode=False)
    time.sleep(0.5)  # slow joiner
    body = M.pack(M.pose_body(1, 0.0, 0.0, np.zeros((1, 8, 3), np.float32), BODYPARTS))
    header = M.encode_header("bench", "e", 1, 0.0, 0.0)
    frames = [b"pose/cam0/", header, body]
    t0 = time.perf_counter()
    for _ in range(n):
        pub.send_multipart(frames)
    dt = time.perf_counter() - t0
    res = out.get(timeout=120)
    sub.join(10)
    pub.close(linger=0)
    ctx.term()
    assert res["n"] == n, f"baseline subscriber got {res['n']} of {n}"
    return n / dt


def bench_publisher(n: int, stalled: bool, tmp: Path, sndhwm: int) -> dict:
    """Publisher.publish_pose as fast as possible; rate until the publisher thread sent all."""
    s = PublishSettings(endpoint="tcp://127.0.0.1:*", side_channel="tcp://127.0.0.1:*",
                        journal=str(tmp / f"bench-{stalled}.sqlite"), sndhwm=sndhwm,
                        queue_size=n, heartbeat_s=1.0)
    poses = np.random.default_rng(0).uniform(0, 640, (1, 8, 3)).astype(np.float32)
    ctx = zmq.Context()
    with Publisher(s, "cam0") as pub:
        stall = None
        if stalled:
            stall = ctx.socket(zmq.SUB)
            stall.rcvhwm = 10
            stall.subscribe(b"")
            stall.connect(pub.endpoint)
        sub, out = _start_sub(pub.endpoint, ["pose/"])
        time.sleep(0.5)
        t0 = time.perf_counter()
        for i in range(n):
            pub.publish_pose(i, float(i), 0.0, poses, BODYPARTS)
        while pub.stats()["published"]["pose"] + pub.stats()["queue_drops"] < n:
            time.sleep(0.0005)
        dt = time.perf_counter() - t0
        st = pub.stats()
        res = out.get(timeout=120)
        sub.join(10)
    if stall is not None:
        stall.close(linger=0)
    ctx.term()
    return {"rate": st["published"]["pose"] / dt, "sent": st["published"]["pose"],
            "queue_drops": st["queue_drops"], "received": res["n"]}


def bench_latency(n: int, tmp: Path) -> dict:
    s = PublishSettings(endpoint="tcp://127.0.0.1:*", side_channel="tcp://127.0.0.1:*",
                        journal=str(tmp / "latency.sqlite"), heartbeat_s=1.0)
    with Publisher(s, "cam0") as pub:
        sub, out = _start_sub(pub.endpoint, ["pass/"])
        time.sleep(0.5)
        for i in range(n):
            pub.publish_pass(synthetic_pass(i, "cam0"))
            time.sleep(0.05)
        res = out.get(timeout=120)
        sub.join(10)
    lat = np.array(res["lat"]) * 1000
    assert len(lat) == n, f"latency subscriber got {len(lat)} of {n} passes"
    return {"p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "max_ms": float(lat.max()), "n": int(len(lat))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000, help="pose messages per measurement")
    ap.add_argument("--passes", type=int, default=200, help="passes for the latency run")
    ap.add_argument("--repeat", type=int, default=3, help="repeats (the median is reported)")
    ap.add_argument("--sndhwm", type=int, default=100_000,
                    help="publisher high-water mark for the throughput runs, so that the "
                         "subscriber that keeps up never loses a message to a CPU hiccup")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = ap.parse_args(argv)
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, "
                                f"{mp.cpu_count()} CPUs, Python {platform.python_version()}, "
                                f"pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}"}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        base, keep, stall = [], [], []
        for _ in range(a.repeat):  # interleaved, so machine load hits all three alike
            base.append(bench_baseline(a.n))
            keep.append(bench_publisher(a.n, False, tmp, a.sndhwm))
            stall.append(bench_publisher(a.n, True, tmp, a.sndhwm))
        lat = bench_latency(a.passes, tmp)
    med = statistics.median
    results.update({
        "n": a.n, "repeat": a.repeat, "sndhwm": a.sndhwm,
        "baseline_raw_pyzmq_msgs_per_s": med(base),
        "publisher_one_subscriber_msgs_per_s": med(r["rate"] for r in keep),
        "publisher_plus_stalled_subscriber_msgs_per_s": med(r["rate"] for r in stall),
        "subscriber_received_fraction": min(r["received"] / a.n for r in keep),
        "queue_drops": sum(r["queue_drops"] for r in keep + stall),
        "score_latency": lat,
    })
    results["ratio_publisher_to_baseline"] = (results["publisher_one_subscriber_msgs_per_s"]
                                              / results["baseline_raw_pyzmq_msgs_per_s"])
    results["ratio_stalled_to_keeping_up"] = (
        results["publisher_plus_stalled_subscriber_msgs_per_s"]
        / results["publisher_one_subscriber_msgs_per_s"])
    if a.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"machine: {results['machine']}")
        print(f"pose messages, n={a.n}, median of {a.repeat}:")
        print(f"  baseline raw pyzmq send        {med(base):>10,.0f} msg/s")
        print(f"  Publisher, 1 subscriber        {results['publisher_one_subscriber_msgs_per_s']:>10,.0f} msg/s"
              f"  ({results['ratio_publisher_to_baseline']:.2f} x baseline; subscriber got "
              f"{results['subscriber_received_fraction']:.1%})")
        print(f"  Publisher, + stalled subscriber {results['publisher_plus_stalled_subscriber_msgs_per_s']:>9,.0f} msg/s"
              f"  ({results['ratio_stalled_to_keeping_up']:.2f} x keeping-up run)")
        print(f"  publisher queue drops          {results['queue_drops']}")
        print(f"score latency publish_pass -> decoded at subscriber (n={lat['n']}): "
              f"p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms, max {lat['max_ms']:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
