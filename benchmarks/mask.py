"""Time the weighted mask: a scikit-image oracle of the official code against ours.

On the same 64 faces of 224×224 (the two sample portraits, aligned, plus
flipped, shifted and brightness-changed copies), the script prints the
per-face time of:

* the oracle: ``mask_reference.official_mask``, the official algorithm
  written with ``skimage.feature.hog``, ``np.corrcoef`` and a Python loop
  over the landmarks, one face at a time;
* ``mask.weighted_mask`` one face at a time, paper and official modes;
* ``mask.weighted_mask_batch`` on the batch of 64, paper and official modes;
* ``mask_torch.weighted_mask_torch`` on the batch of 64, on the CPU and, where
  one is present, on the CUDA device;
* one update of the ``widgets.mask_explorer`` (mask plus PNG of the figure),

and the ratio of the oracle's time to each. Every time is the best of
``--repeats`` runs, because the minimum is the least disturbed by other load.
The official-mode masks are checked against the oracle's (max difference).

The mask uses numba kernels when numba is installed; with the environment
variable ``OAENET_MASK_BACKEND=numpy`` the same script times the NumPy path.

Usage::

    .venv/bin/python benchmarks/mask.py
    .venv/bin/python benchmarks/mask.py --faces 64 --repeats 5 --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np


def sample_faces(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(count, 224, 224, 3)`` uint8 faces and ``(count, 68, 2)`` landmarks."""
    from oaenet_helpers import faces

    aligned = [faces.detect_and_align(faces.sample_image(name)) for name in ("astronaut", "grace_hopper")]
    rng = np.random.default_rng(0)
    images, points = [], []
    for index in range(count):
        source = aligned[index % 2]
        image, landmarks = source.image.astype(np.int16), source.landmarks.copy()
        if index % 4 >= 2:
            image = image[:, ::-1]
            landmarks[:, 0] = 223 - landmarks[:, 0]
        shift = int(rng.integers(-6, 7))
        image = np.roll(image, shift, axis=0)
        landmarks[:, 1] += shift
        image = np.clip(image + int(rng.integers(-30, 31)), 0, 255)
        images.append(image.astype(np.uint8))
        points.append(landmarks)
    return np.stack(images), np.stack(points)


def best_time(function: Callable[[], object], repeats: int) -> float:
    """Return the minimum wall time of ``repeats`` calls, in seconds."""
    function()  # warm-up: lookup tables, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=64, help="faces in the batch (default 64)")
    parser.add_argument("--oracle-faces", type=int, default=16, help="faces the slow oracle is timed on (default 16)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the minimum is kept")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()

    import torch

    from oaenet_helpers import faces as faces_module
    from oaenet_helpers import mask
    from oaenet_helpers.mask_reference import official_mask as oracle_mask
    from oaenet_helpers.mask_torch import weighted_mask_torch
    from oaenet_helpers.widgets import mask_explorer

    if args.threads:
        torch.set_num_threads(args.threads)
    images, points = sample_faces(args.faces)
    n_oracle = min(args.oracle_faces, args.faces)

    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads, numpy {np.__version__}")
    print(f"{args.faces} faces of 224x224, N=4 K=8 M=15, best of {args.repeats} runs; "
          f"weighted_mask_batch uses up to {os.cpu_count()} threads, one per {mask._MIN_FACES_PER_THREAD}+ faces")
    backend = "numba kernels" if mask.compiled_kernels() is not None else "NumPy"
    print(f"mask backend: {backend} (set OAENET_MASK_BACKEND=numpy to time the NumPy path)\n")

    oracle = best_time(lambda: [oracle_mask(images[i], points[i]) for i in range(n_oracle)], args.repeats) / n_oracle
    rows: list[tuple[str, float]] = [("oracle (skimage hog, official algorithm), single", oracle)]

    for mode in ("paper", "official"):
        single = best_time(
            lambda: [mask.weighted_mask(images[i], points[i], mode=mode) for i in range(args.faces)], args.repeats
        )
        rows.append((f"weighted_mask {mode}, single", single / args.faces))
        batch = best_time(lambda: mask.weighted_mask_batch(images, points, mode=mode), args.repeats)
        rows.append((f"weighted_mask_batch {mode}, batch of {args.faces}", batch / args.faces))

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        tensor_images = torch.from_numpy(images).to(device)
        tensor_points = torch.from_numpy(points).to(device)
        for mode in ("paper", "official"):

            def run_torch() -> None:
                weighted_mask_torch(tensor_images, tensor_points, mode=mode)
                if device == "cuda":
                    torch.cuda.synchronize()

            elapsed = best_time(run_torch, args.repeats)
            rows.append((f"weighted_mask_torch {mode}, batch of {args.faces} on {device}", elapsed / args.faces))

    explorer = mask_explorer(faces_module.AlignedFace(images[0], points[0], np.eye(2, 3)))
    values = iter([2, 3, 5, 6, 8, 4] * (args.repeats + 2))

    def move_slider() -> None:
        explorer.n_slider.value = next(values)

    widget_time = best_time(move_slider, args.repeats)

    width = max(len(name) for name, _ in rows)
    print(f"{'method':<{width}}  ms/face  oracle/method")
    for name, seconds in rows:
        print(f"{name:<{width}}  {1000 * seconds:7.3f}  {oracle / seconds:9.1f}x")
    print(f"\nmask_explorer update (mask + PNG redraw): {1000 * widget_time:.1f} ms")

    official = mask.weighted_mask_batch(images[:n_oracle], points[:n_oracle], mode="official")
    reference = np.stack([oracle_mask(images[i], points[i]) for i in range(n_oracle)])
    print(f"max |official - oracle| over {n_oracle} faces: {np.abs(official - reference).max():.2e}")


if __name__ == "__main__":
    main()
