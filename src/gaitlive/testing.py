"""Builders of tiny REAL pose models, for tests and examples.

* :func:`make_tiny_pytorch_export` writes a DeepLabCut-Live PyTorch export: a real
  DeepLabCut 3 model configuration (``PoseConfig.build``, as ``create_training_dataset``
  makes it) and the randomly initialised weights of that model, saved as
  ``deeplabcut.export_model`` saves them (``{"config": ..., "pose": state_dict}``).
* :func:`make_tiny_dlc_project` writes a tiny DeepLabCut project (``config.yaml`` with
  placeholder paths, as shipped projects have them, PNG frames of coloured dots and
  ``CollectedData_<scorer>.h5`` labels at the dots' centres) that trains in seconds.
* :func:`make_tiny_tf_export` writes a DeepLabCut 2.x TensorFlow export: ``pose_cfg.yaml``
  and a frozen graph ``.pb`` with DeepLabCut's input (``Placeholder``) and outputs
  (score-map ``Sigmoid`` last, location refinement before it) that dlclive's
  ``model_type="base"`` runner loads. Its weights are chosen, not random: the score map of
  bodypart *k* is the mean brightness of colour channel ``k % 3`` over each ``stride x
  stride`` cell, so a bright dot is found at its cell's centre (analytic ground truth).

Both need the optional training dependencies (``deeplabcut``; TensorFlow for the second).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

__all__ = ["make_tiny_pytorch_export", "make_tiny_tf_export", "make_tiny_dlc_project",
           "POULTRY_BODYPARTS"]

POULTRY_BODYPARTS: tuple[str, ...] = ("head", "neck", "left_knee", "right_knee", "left_hock",
                                      "right_hock", "left_foot", "right_foot")


def make_tiny_pytorch_export(directory: str | Path, bodyparts: Sequence[str] = POULTRY_BODYPARTS,
                             *, net: str = "cspnext_s", widen_factor: float = 0.125,
                             deepen_factor: float = 0.33, heatmap_stride: int = 16,
                             seed: int = 0, half: bool = False,
                             skeleton: Sequence[tuple[str, str]] = (),
                             name: str = "tiny", individuals: int = 1) -> Path:
    """Write a tiny DeepLabCut-Live PyTorch export with random weights.

    Parameters
    ----------
    directory : str or Path
        Folder to create; it receives ``<name>.pt`` and a ``model.yaml`` card.
    bodyparts : sequence of str
        Keypoints the model outputs.
    net : str
        A DeepLabCut 3 backbone net type (``cspnext_s``, ``resnet_50``, ...).
    widen_factor, deepen_factor : float
        CSPNeXt width/depth multipliers (ignored for other nets); small = tiny model.
    heatmap_stride : int
        Output stride of the heatmaps (8 or 16 for CSPNeXt).
    seed : int
        Torch seed of the random initialisation (same seed -> same weights).
    half : bool
        Store weights as float16.
    skeleton : sequence of (str, str)
        Written into the card.
    name : str
        File stem of the ``.pt``.
    individuals : int
        More than 1: a multi-animal bottom-up model (heatmaps + part-affinity fields).

    Returns
    -------
    Path
        The model folder (give it to :func:`gaitlive.pose.load_runner`).
    """
    import torch

    from gaitlive.offline.project import build_pose_model_config, save_export

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    cfg = build_pose_model_config(list(bodyparts), net=net, project_path=out,
                                  widen_factor=widen_factor, deepen_factor=deepen_factor,
                                  heatmap_stride=heatmap_stride, individuals=individuals)
    from deeplabcut.pose_estimation_pytorch.models import PoseModel

    torch.manual_seed(seed)
    model = PoseModel.build(cfg["model"])
    model.eval()
    pt = out / f"{name}.pt"
    save_export(pt, cfg, model.state_dict(), half=half)
    card = {"name": name, "engine": "pytorch", "file": pt.name, "net": net,
            "bodyparts": list(bodyparts), "skeleton": [list(e) for e in skeleton],
            "training_data": {"note": f"untrained: random weights (torch seed {seed})"}}
    (out / "model.yaml").write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")
    log.debug("wrote tiny PyTorch export %s", pt)
    return out


def make_tiny_tf_export(directory: str | Path, bodyparts: Sequence[str] = POULTRY_BODYPARTS,
                        *, stride: int = 8, gain: float = 0.1, bias: float = -12.0) -> Path:
    """Write a tiny frozen TensorFlow graph in DeepLabCut 2.x export layout.

    The score map of bodypart ``k`` at cell (i, j) is ``sigmoid(gain * m - bias')`` where
    ``m`` is the mean of RGB channel ``k % 3`` over the ``stride x stride`` cell; location
    refinement is zero. So on a black RGB image with one bright pixel of channel ``c``, every
    bodypart with ``k % 3 == c`` is found at ``(cell * stride + stride / 2)``.

    Parameters
    ----------
    directory : str or Path
        Folder to create with ``pose_cfg.yaml`` and ``snapshot-0.pb``.
    bodyparts : sequence of str
        Keypoint names (``all_joints_names``).
    stride : int
        Output stride of the score map.
    gain, bias : float
        Score map logit = gain * 255 * cell_mean_fraction + bias.

    Returns
    -------
    Path
        The model folder.
    """
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    tf1 = tf.compat.v1
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    n = len(bodyparts)
    graph = tf.Graph()
    with graph.as_default():
        # first op: the input, as in DeepLabCut's exported graphs
        x = tf1.placeholder(tf.float32, shape=[None, None, None, 3], name="Placeholder")
        pooled = tf.nn.avg_pool2d(x, ksize=stride, strides=stride, padding="VALID")
        w = np.zeros((1, 1, 3, n), np.float32)
        for k in range(n):
            w[0, 0, k % 3, k] = gain
        part = tf.nn.conv2d(pooled, tf.constant(w), strides=1, padding="VALID")
        part = tf.nn.bias_add(part, tf.constant(np.full(n, bias, np.float32)),
                              name="pose/part_pred/block4/BiasAdd")
        loc_w = np.zeros((1, 1, 3, 2 * n), np.float32)
        locref = tf.nn.conv2d(pooled, tf.constant(loc_w), strides=1, padding="VALID")
        # second-to-last op: location refinement; last op: the score map
        locref = tf.nn.bias_add(locref, tf.constant(np.zeros(2 * n, np.float32)),
                                name="pose/locref_pred/block4/BiasAdd")
        tf.sigmoid(part, name="pose/part_pred/block4/Sigmoid")
    (out / "snapshot-0.pb").write_bytes(graph.as_graph_def().SerializeToString())
    pose_cfg = {
        "all_joints": [[i] for i in range(n)],
        "all_joints_names": list(bodyparts),
        "num_joints": n,
        "net_type": "tiny_tf",
        "stride": stride,
        "location_refinement": True,
        "locref_stdev": 7.2801,
        "num_outputs": 1,
        "init_weights": "",
        "dataset_type": "imgaug",
    }
    (out / "pose_cfg.yaml").write_text(yaml.safe_dump(pose_cfg, sort_keys=False),
                                       encoding="utf-8")
    return out


def make_tiny_dlc_project(root: str | Path, *, n: int = 12, size: tuple[int, int] = (96, 64),
                          bodyparts: Sequence[str] = ("nose", "tail"), scorer: str = "tester",
                          seed: int = 0, train_fraction: float = 0.75) -> Path:
    """Write a tiny real DeepLabCut project.

    Frame ``i`` is a grey ``size`` image with one filled dot per bodypart (red, green, blue,
    ... in BGR order), labelled at the dot's centre; dots are placed at random (seeded).

    Parameters
    ----------
    root : str or Path
        Project folder to create (must not exist).
    n : int
        Number of labelled frames.
    size : tuple of int
        ``(width, height)`` of the frames.
    bodyparts : sequence of str
        At most 6 names.
    scorer, seed, train_fraction :
        Labeller name, random seed, DeepLabCut ``TrainingFraction``.

    Returns
    -------
    Path
        ``root``.
    """
    import cv2
    import numpy as np

    from gaitlive.dlcio import write_collected_data

    colours = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255), (255, 0, 255),
               (255, 255, 0)]
    if len(bodyparts) > len(colours):
        raise ValueError(f"bodyparts: at most {len(colours)}, got {len(bodyparts)}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    w, h = size
    folder = root / "labeled-data" / "clip"
    folder.mkdir(parents=True)
    (root / "videos").mkdir()
    names, xy = [], np.zeros((n, len(bodyparts), 2))
    for i in range(n):
        img = np.full((h, w, 3), 90, np.uint8)
        for k in range(len(bodyparts)):
            x, y = int(rng.integers(10, w - 10)), int(rng.integers(10, h - 10))
            cv2.circle(img, (x, y), 4, colours[k], -1)
            xy[i, k] = (x, y)
        name = f"img{i:03d}.png"
        cv2.imwrite(str(folder / name), img)
        names.append(name)
    write_collected_data(folder, scorer, list(bodyparts), names, xy)
    cfg = {"Task": "dots", "scorer": scorer, "date": "Jan1", "multianimalproject": False,
           "identity": None, "project_path": "WILL BE AUTOMATICALLY UPDATED",
           "engine": "pytorch",
           "video_sets": {"WILL BE AUTOMATICALLY UPDATED": {"crop": f"0, {w}, 0, {h}"}},
           "bodyparts": list(bodyparts), "start": 0, "stop": 1, "numframes2pick": 20,
           "skeleton": [list(bodyparts[:2])] if len(bodyparts) > 1 else [],
           "skeleton_color": "black", "pcutoff": 0.1, "dotsize": 4, "alphavalue": 0.7,
           "colormap": "rainbow", "TrainingFraction": [train_fraction], "iteration": 0,
           "default_net_type": "cspnext_s", "default_augmenter": "albumentations",
           "snapshotindex": -1, "detector_snapshotindex": -1, "batch_size": 4,
           "detector_batch_size": 1, "cropping": False, "x1": 0, "x2": w, "y1": 0, "y2": h,
           "corner2move2": [50, 50], "move2corner": True}
    (root / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return root
