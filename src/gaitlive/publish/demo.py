"""A stand-alone publisher of synthetic pass scores, to try subscribers without a camera.

``python -m gaitlive.publish.demo --count 100 --rate 5`` publishes 100 passes (pass_id 0..99,
score ``pass_id % 6``) on the default endpoints with a real :class:`Publisher` (journal,
side channel, heartbeats), then keeps serving the side channel for ``--linger`` seconds.
It prints ``ready <pub endpoint> <side endpoint>`` once bound and ``sent <pass_id>`` after
each pass was handed over, so scripts and tests can follow it. It keeps its own journal
(``gaitlive-demo-journal.sqlite``) and camera id (``demo``), apart from a real run's.
"""

from __future__ import annotations

import argparse
import sys
import time

from gaitlive.config import CurveSettings, PublishSettings
from gaitlive.gait.events import PassResult
from gaitlive.publish.publisher import Publisher


def synthetic_pass(pass_id: int, camera_id: str) -> PassResult:
    """A deterministic pass: score ``pass_id % 6``, features derived from ``pass_id``."""
    return PassResult(individual=pass_id % 3, pass_id=pass_id, start_frame=10 * pass_id,
                      end_frame=10 * pass_id + 9, n_steps=4 + pass_id % 5,
                      features={"cadence_hz": 1.0 + pass_id / 100.0,
                                "step_asymmetry": (pass_id % 7) / 10.0},
                      score=float(pass_id % 6), score_class=pass_id % 6, confidence=0.9,
                      scored=True, camera_id=camera_id)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m gaitlive.publish.demo``."""
    p = argparse.ArgumentParser(prog="python -m gaitlive.publish.demo", description=__doc__)
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5556")
    p.add_argument("--side-channel", default="tcp://127.0.0.1:5557")
    # its own journal and camera id: a real run later in the same folder must not carry on
    # the demo's stream (same publisher epoch), nor a listener file its passes as cam0's
    p.add_argument("--journal", default="gaitlive-demo-journal.sqlite")
    p.add_argument("--camera-id", default="demo")
    p.add_argument("--publisher-id", default=None)
    p.add_argument("--count", type=int, default=100, help="passes to publish")
    p.add_argument("--first", type=int, default=0, help="pass_id of the first pass")
    p.add_argument("--rate", type=float, default=5.0, help="passes per second")
    p.add_argument("--heartbeat", type=float, default=1.0)
    p.add_argument("--linger", type=float, default=0.0,
                   help="keep running (heartbeats, side channel) this long after the last pass")
    p.add_argument("--curve-keys", default=None, help="keys dir with server.key_secret")
    p.add_argument("--curve-allow", default=None, help="allow-list folder of client keys")
    a = p.parse_args(argv)
    curve = CurveSettings()
    if a.curve_keys:
        curve = CurveSettings(enabled=True, keys_dir=a.curve_keys,
                              allow_dir=a.curve_allow or f"{a.curve_keys}/allowed")
    settings = PublishSettings(endpoint=a.endpoint, side_channel=a.side_channel,
                               journal=a.journal, heartbeat_s=a.heartbeat, curve=curve)
    with Publisher(settings, a.camera_id, model="demo", publisher_id=a.publisher_id) as pub:
        print(f"ready {pub.endpoint} {pub.side_endpoint}", flush=True)
        for i in range(a.first, a.first + a.count):
            pub.publish_pass(synthetic_pass(i, a.camera_id))
            print(f"sent {i}", flush=True)
            time.sleep(1.0 / a.rate)
        time.sleep(a.linger)
    return 0


if __name__ == "__main__":
    sys.exit(main())
