"""gaitlive: real-time gait scoring of birds on DeepLabCut-Live.

Stages of the live path, one module each: :mod:`gaitlive.capture` (camera and file
sources), :mod:`gaitlive.pose` (DLC-Live runner), :mod:`gaitlive.gait` (skeleton, steps,
features, passes), :mod:`gaitlive.score` (score models), :mod:`gaitlive.publish` (ZeroMQ),
:mod:`gaitlive.overlay` (drawing), wired by :mod:`gaitlive.pipeline`.
"""

__version__ = "0.1.0"
