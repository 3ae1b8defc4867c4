"""Time the data pipeline: generated faces, prepare() and landmark detection.

Prints per-image times and an extrapolated time to prepare 15,000 images at
224 px. The extrapolation is an estimate: it assumes the timed sample's rate
holds for the whole set and that the page cache and disk keep up. Real
datasets add decoding their files, and landmark detection for images without
landmarks (timed last, once per image thanks to the landmark cache).

Run: python benchmarks/data.py [--sample 256] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time


from oaenet_helpers import faces
from oaenet_helpers.data import SyntheticExpressions, prepare

TARGET_IMAGES = 15_000


def time_generation(size: int, count: int) -> float:
    """Return seconds per generated image at ``size`` px."""
    data = SyntheticExpressions(length=count, size=size, seed=0)
    data[0]  # first call pays for imports and caches
    start = time.perf_counter()
    for index in range(count):
        data[index]
    return (time.perf_counter() - start) / count


def time_prepare(sample: int, workers: int, seed: int = 1, source_size: int = 256, crop_size: int = 224) -> float:
    """Return the seconds prepare() takes for ``sample`` generated faces (generation included)."""
    data = SyntheticExpressions(length=sample, size=source_size, seed=seed)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        prepared = prepare(data, size=crop_size, cache_dir=folder, workers=workers, progress=False)
        elapsed = time.perf_counter() - start
        if len(prepared) != sample:
            raise RuntimeError(f"prepare() finished {len(prepared)} of {sample} items; see {prepared.folder}/failures.json")
    return elapsed


def time_detection(repeats: int) -> float:
    """Return seconds per dlib detection + 68 landmarks on the 512x512 astronaut portrait."""
    image = faces.sample_image("astronaut")
    faces.detect_face(image)  # loads the models
    start = time.perf_counter()
    for _ in range(repeats):
        faces.detect_face(image)
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=256, help="images in the timed prepare() sample")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="process counts to time")
    parser.add_argument("--generate", type=int, default=200, help="images per generation timing")
    args = parser.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print("Generated faces (SyntheticExpressions), one process:")
    for size in (48, 112, 224):
        seconds = time_generation(size, args.generate)
        print(f"  {size:>3} px: {seconds * 1000:6.2f} ms per image")

    print(f"prepare(): align to 224 px + weighted mask + write, generated 256-px faces (generation included):")
    rates = {}
    for workers in args.workers:
        # A run of one chunk per worker measures the fixed cost (spawning the
        # processes, which import torch); the difference gives the rate.
        small = 32 * workers
        startup = time_prepare(small, workers, seed=2)
        total = time_prepare(args.sample + small, workers)
        seconds = max(total - startup, 1e-9) / args.sample
        rates[workers] = seconds
        estimate_min = (startup + seconds * TARGET_IMAGES) / 60
        print(
            f"  workers={workers}: {seconds * 1000:6.2f} ms per image ({1 / seconds:6.1f} images/s) after "
            f"{startup:.1f} s for the first {small}; estimate for {TARGET_IMAGES:,} images: {estimate_min:.1f} min"
        )
    if len(rates) > 1:
        first, *others = sorted(rates)
        for workers in others:
            print(f"  speed-up of the rate, workers={workers} vs {first}: {rates[first] / rates[workers]:.2f}x")

    detection = time_detection(10)
    print("Landmarks of real photos (dlib detector + 68-point predictor, 512x512, upsample=0), one process:")
    print(
        f"  {detection * 1000:6.1f} ms per image; estimate for {TARGET_IMAGES:,} images: "
        f"{detection * TARGET_IMAGES / 60:.1f} min per process (once: landmark_cache stores the results)"
    )


if __name__ == "__main__":
    main()
