"""Time OAENet on the CPU: one SGD training step and inference, in images per second.

Compares three ways to run the same model at batch 16: eager PyTorch,
``channels_last`` memory format, and ``torch.compile`` (default inductor
backend). Each runs at 224×224 (the official training size) and at the chapters' default
size. The training step is the full one from the book: forward in training
mode, ``OAENetLoss`` (cross-entropy + island + Lovász-softmax), backward and an
SGD update with momentum.

Usage::

    .venv/bin/python benchmarks/model.py                 # every mode, both sizes
    .venv/bin/python benchmarks/model.py --sizes 128 --steps 5 --threads 1

Numbers depend on the machine and on its load; the script prints the CPU,
the thread count and the PyTorch version with them. Each row gives the median
and the best of the timed steps: on a shared machine the best step is the
closer estimate of what the CPU can do, and the speed-ups use it. The warm-up
column includes compilation, which inductor caches on disk between runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import traceback
from collections.abc import Callable
from typing import NamedTuple

import torch

from oaenet_helpers.losses import OAENetLoss
from oaenet_helpers.models import OAENet, oaenet

PAPER_SIZE = 224
CHAPTER_SIZE = 128  # IMAGE_SIZE default in chapters 2-4
MODES = ("eager", "channels_last", "compile")
TASKS = ("train", "inference")


def make_batch(batch: int, size: int, num_classes: int, memory_format: torch.memory_format):
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(batch, 3, size, size, generator=generator).contiguous(memory_format=memory_format)
    weighted = torch.randn(batch, 3, size, size, generator=generator).contiguous(memory_format=memory_format)
    labels = torch.randint(0, num_classes, (batch,), generator=generator)
    masks = torch.rand(batch, size, size, generator=generator)
    return image, weighted, labels, masks


def build(mode: str) -> tuple[OAENet, Callable, torch.memory_format]:
    torch.manual_seed(0)
    model = oaenet(num_classes=7)
    memory_format = torch.contiguous_format
    if mode == "channels_last":
        memory_format = torch.channels_last
        model = model.to(memory_format=memory_format)
    runner: Callable = model
    if mode == "compile":
        runner = torch.compile(model)
    return model, runner, memory_format


def time_steps(step: Callable[[], None], warmup: int, steps: int) -> tuple[float, list[float]]:
    """Return the seconds of the warm-up (including any compilation) and of each timed step."""
    start = time.perf_counter()
    for _ in range(warmup):
        step()
    warmup_seconds = time.perf_counter() - start
    step_seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        step_seconds.append(time.perf_counter() - start)
    return warmup_seconds, step_seconds


class Measurement(NamedTuple):
    median: float  # images per second
    best: float  # images per second
    warmup_seconds: float


def measure(mode: str, task: str, size: int, batch: int, warmup: int, steps: int) -> Measurement:
    model, runner, memory_format = build(mode)
    image, weighted, labels, masks = make_batch(batch, size, model.num_classes, memory_format)

    if task == "train":
        model.train()
        criterion = OAENetLoss(num_classes=model.num_classes)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(runner(image, weighted), labels, masks)
            loss.backward()
            optimizer.step()

    else:
        model.eval()

        def step() -> None:
            with torch.inference_mode():
                runner(image, weighted)

    warmup_seconds, step_seconds = time_steps(step, warmup, steps)
    return Measurement(batch / statistics.median(step_seconds), batch / min(step_seconds), warmup_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16, help="images per step (default 16)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[PAPER_SIZE, CHAPTER_SIZE], help="input sides in pixels")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="ways to run the model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per measurement (default 2)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement (default 5)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads; default: PyTorch's choice (one per core)"
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores")
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    print(f"{args.warmup} warm-up and {args.steps} timed steps per row\n")

    results: dict[tuple[int, str, str], float] = {}
    print(f"{'size':>5} {'task':>10} {'mode':>14} {'images/s median':>16} {'best':>7} {'warm-up s':>10}")
    for size in args.sizes:
        for task in TASKS:
            for mode in args.modes:
                try:
                    result = measure(mode, task, size, args.batch, args.warmup, args.steps)
                except Exception as err:  # noqa: BLE001 - report why compile failed and go on
                    print(f"{size:>5} {task:>10} {mode:>14}    failed: {type(err).__name__}: {err}".splitlines()[0])
                    traceback.print_exc(limit=3)
                    continue
                results[(size, task, mode)] = result.best
                print(
                    f"{size:>5} {task:>10} {mode:>14} {result.median:>16.2f} {result.best:>7.2f} "
                    f"{result.warmup_seconds:>10.1f}",
                    flush=True,
                )

    print("\nSpeed-up over eager, best steps (same size and task):")
    for size in args.sizes:
        for task in TASKS:
            eager = results.get((size, task, "eager"))
            if eager is None:
                continue
            ratios = [
                f"{mode} {results[(size, task, mode)] / eager:.2f}x"
                for mode in args.modes
                if mode != "eager" and (size, task, mode) in results
            ]
            print(f"  {size}px {task}: " + (", ".join(ratios) if ratios else "no other mode measured"))


if __name__ == "__main__":
    main()
