"""Aligned crops, landmarks and weighted masks, computed once and memory-mapped.

Training reads the same faces every epoch, so :func:`prepare` aligns each face
(:func:`oaenet_helpers.faces.align_and_crop`) and builds its weighted mask
(:func:`oaenet_helpers.mask.weighted_mask_batch`) once. It stores all of it in
``.npy`` files that :class:`PreparedDataset` opens as memory maps, so nothing
is loaded up front and the OS keeps in RAM what fits.

The cache folder is named by a key over the dataset's fingerprint (its items'
content or files), the crop size, the mask options and :data:`PREPARE_VERSION`,
so changing any of them prepares a new copy and never mixes old rows in.
A ``status.npy`` array marks each row done only after its data are flushed, so an
interrupted run resumes where it stopped.

Layout of ``cache_dir/prepared-v1/<key>/``: ``images.npy`` (N, S, S, 3) uint8,
``landmarks.npy`` (N, 68, 2) float32, ``masks.npy`` (N, S, S) float16,
``labels.npy`` (N,) int64, ``status.npy`` (N,) uint8 (0 to do, 1 done, 2 failed),
``failures.json`` and ``meta.json``.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
from numpy.lib.format import open_memmap
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from oaenet_helpers.data.labels import class_names
from oaenet_helpers.data.sample import MaskedSample
from oaenet_helpers.faces import N_LANDMARKS, ImageLoadError, align_and_crop

logger = logging.getLogger(__name__)

PREPARE_VERSION = 1
PathLike = Union[str, os.PathLike]
TODO, DONE, FAILED = 0, 1, 2
# float16 halves the disk and page-cache size of the masks; its step near 1 is
# 2**-11 (about 5e-4), far below what changes a training run.
MASK_DTYPE = np.float16


@dataclass(frozen=True)
class PrepareFailure:
    """A dataset item that could not be prepared: its index and why."""

    index: int
    reason: str


def prepare_key(dataset: Any, size: int, mask_options: dict) -> str:
    """Return the cache key (16 hex digits) of a dataset prepared at ``size`` with ``mask_options``.

    Raises:
        TypeError: the dataset has no ``fingerprint()`` method.
    """
    fingerprint = getattr(dataset, "fingerprint", None)
    if not callable(fingerprint):
        raise TypeError(
            f"{type(dataset).__name__} has no fingerprint() method, so a cache key cannot be built; "
            "use a dataset from oaenet_helpers.data or add a fingerprint() that changes with its content."
        )
    text = json.dumps(
        {"version": PREPARE_VERSION, "dataset": fingerprint(), "size": size, "mask": mask_options},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class PreparedDataset(Dataset):
    """Prepared faces read from memory-mapped ``.npy`` files.

    Items are :class:`~oaenet_helpers.data.sample.MaskedSample` ``(image,
    landmarks, mask, label)`` with copies of the stored rows (``(S, S, 3)``
    uint8, ``(68, 2)`` float32, ``(S, S)`` float32, int). Failed rows are not
    items; :attr:`failures` lists them.

    Args:
        folder: a folder written by :func:`prepare`.
        transform: applied to each item, e.g. :class:`oaenet_helpers.data.augment.FaceAugment`.
    """

    def __init__(self, folder: PathLike, transform: Optional[Callable[[MaskedSample], Any]] = None) -> None:
        self.folder = Path(folder)
        meta_file = self.folder / "meta.json"
        if not meta_file.is_file():
            raise FileNotFoundError(f"'{meta_file}' not found: '{self.folder}' is not a prepared dataset; run prepare() first.")
        self.meta = json.loads(meta_file.read_text(encoding="utf-8"))
        self.images = np.load(self.folder / "images.npy", mmap_mode="r")
        self.landmarks = np.load(self.folder / "landmarks.npy", mmap_mode="r")
        self.masks = np.load(self.folder / "masks.npy", mmap_mode="r")
        labels = np.load(self.folder / "labels.npy")
        status = np.load(self.folder / "status.npy")
        if np.any(status == TODO):
            raise RuntimeError(
                f"'{self.folder}' is only partly prepared ({int(np.sum(status == TODO))} rows to do); "
                "run prepare() again to finish it."
            )
        self.indices = np.flatnonzero(status == DONE)
        self.labels = labels[self.indices]
        failures = json.loads((self.folder / "failures.json").read_text(encoding="utf-8"))
        self.failures = [PrepareFailure(int(index), reason) for index, reason in sorted(failures.items(), key=lambda kv: int(kv[0]))]
        self.transform = transform

    @property
    def size(self) -> int:
        """Side of the crops in pixels."""
        return int(self.images.shape[1])

    @property
    def classes(self) -> tuple[str, ...]:
        """Canonical class names."""
        return class_names(int(self.meta.get("num_classes", 7)))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> MaskedSample:
        row = int(self.indices[index])
        sample = MaskedSample(
            np.array(self.images[row]),
            np.array(self.landmarks[row]),
            np.array(self.masks[row], dtype=np.float32),
            int(self.labels[index]),
        )
        return self.transform(sample) if self.transform is not None else sample


# --------------------------------------------------------------------------
# Workers

_WORKER: dict[str, Any] = {}


def _open_outputs(folder: Path) -> dict[str, np.ndarray]:
    return {name: np.load(folder / f"{name}.npy", mmap_mode="r+") for name in ("images", "landmarks", "masks", "labels")}


def _init_worker(dataset, folder: str, size: int, mask_options: dict, single_thread: bool = False) -> None:
    if single_thread:
        # Each pool process gets one core; OpenCV's and torch's own thread
        # pools would otherwise oversubscribe the CPUs.
        import cv2
        import torch

        cv2.setNumThreads(1)
        torch.set_num_threads(1)
    _WORKER.update(dataset=dataset, size=size, mask_options=mask_options, outputs=_open_outputs(Path(folder)))


def _prepare_chunk(indices: list[int]) -> list[tuple[int, Optional[str]]]:
    """Prepare items and write their rows; return ``(index, failure reason or None)``."""
    from oaenet_helpers.mask import weighted_mask_batch

    dataset, size, outputs = _WORKER["dataset"], _WORKER["size"], _WORKER["outputs"]
    results: list[tuple[int, Optional[str]]] = []
    good: list[int] = []
    crops, points = [], []
    for index in indices:
        try:
            image, landmarks, label = dataset[index][:3]
            aligned = align_and_crop(image, landmarks, size=size)
        except ImageLoadError as err:
            results.append((index, f"unreadable: {err}"))
            continue
        except ValueError as err:
            # Missing (0, 2), NaN or degenerate landmarks all raise ValueError.
            results.append((index, f"invalid landmarks: {err}"))
            continue
        good.append(index)
        crops.append(aligned.image)
        points.append(aligned.landmarks)
        outputs["labels"][index] = int(label)
    if good:
        crops_array = np.stack(crops)
        points_array = np.stack(points)
        masks = weighted_mask_batch(crops_array, points_array, **_WORKER["mask_options"])
        rows = np.asarray(good)
        # Sorted fancy-index writes touch each page once.
        outputs["images"][rows] = crops_array
        outputs["landmarks"][rows] = points_array
        outputs["masks"][rows] = masks.astype(MASK_DTYPE)
        results.extend((index, None) for index in good)
    for array in outputs.values():
        array.flush()
    return results


# --------------------------------------------------------------------------
# prepare()


def prepare(
    dataset,
    size: int = 224,
    cache_dir: PathLike = "cache",
    workers: int = 1,
    mask_options: Optional[dict] = None,
    chunk_size: int = 32,
    retry_failed: bool = False,
    progress: bool = True,
    transform: Optional[Callable[[MaskedSample], Any]] = None,
) -> PreparedDataset:
    """Align, mask and store every item of ``dataset`` once; resume if interrupted.

    Args:
        dataset: items ``(image, landmarks, label)`` with a ``fingerprint()``
            method (every dataset in :mod:`oaenet_helpers.data`). Its own
            ``transform`` must be None so that stored rows are not augmented.
        size: side of the aligned crops in pixels (224 in OAENet).
        cache_dir: parent folder of the cache.
        workers: processes; 1 runs in this process.
        mask_options: keyword arguments of :func:`oaenet_helpers.mask.weighted_mask_batch`
            (``n_regions``, ``orientations``, ``patch_size``, ``mode``, ...).
        chunk_size: items per task; each task writes and flushes its rows.
        retry_failed: try failed items again (after fixing their files).
        progress: show a tqdm bar.
        transform: passed to the returned :class:`PreparedDataset`.

    Returns:
        The :class:`PreparedDataset`. Items that failed (unreadable image,
        missing or invalid landmarks) are logged with counts and listed in its
        ``failures`` and in ``failures.json``.

    Raises:
        ValueError: invalid ``size``, ``workers`` or ``chunk_size``, or a
            dataset with a ``transform`` set.
        TypeError: the dataset has no ``fingerprint()``.
    """
    if int(size) != size or size < 32:
        raise ValueError(f"size must be an integer of at least 32 pixels, got {size!r}.")
    if int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}.")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}.")
    if getattr(dataset, "transform", None) is not None:
        raise ValueError(
            "The dataset has a transform; prepare() stores untransformed faces. Set dataset.transform = None "
            "and pass the augmentation as prepare(..., transform=...)."
        )
    # Import now so that a missing mask module fails before any work.
    from oaenet_helpers.mask import check_params

    mask_options = dict(mask_options or {})
    check_params(
        size,
        mask_options.get("n_regions", 4),
        mask_options.get("orientations", 8),
        mask_options.get("patch_size", 15),
        mask_options.get("mode", "paper"),
        mask_options.get("combine"),
    )
    key = prepare_key(dataset, size, mask_options)
    folder = Path(cache_dir) / f"prepared-v{PREPARE_VERSION}" / key
    count = len(dataset)
    if not (folder / "meta.json").is_file():
        _create(folder, dataset, count, size, mask_options, key)

    status = np.load(folder / "status.npy", mmap_mode="r+")
    failures_file = folder / "failures.json"
    failures: dict[str, str] = json.loads(failures_file.read_text(encoding="utf-8"))
    if retry_failed:
        status[status == FAILED] = TODO
        failures = {}
    todo = np.flatnonzero(status == TODO).tolist()
    logger.info("prepare %s: %d of %d items to do, %d worker(s), cache %s", key, len(todo), count, workers, folder)

    chunks = [todo[start : start + chunk_size] for start in range(0, len(todo), chunk_size)]
    bar = tqdm(total=len(todo), desc="prepare", unit="face", disable=not progress or not todo)

    def record(results: list[tuple[int, Optional[str]]]) -> None:
        for index, reason in results:
            status[index] = DONE if reason is None else FAILED
            if reason is not None:
                failures[str(index)] = reason
        status.flush()
        if any(reason is not None for _, reason in results):
            _write_json(failures_file, failures)
        bar.update(len(results))

    try:
        if workers == 1 or len(chunks) <= 1:
            _init_worker(dataset, os.fspath(folder), size, mask_options)
            try:
                for chunk in chunks:
                    record(_prepare_chunk(chunk))
            finally:
                _WORKER.clear()
        else:
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(
                workers, mp_context=context, initializer=_init_worker,
                initargs=(dataset, os.fspath(folder), size, mask_options, True),
            ) as pool:
                futures = [pool.submit(_prepare_chunk, chunk) for chunk in chunks]
                try:
                    for future in concurrent.futures.as_completed(futures):
                        record(future.result())
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        bar.close()
        _write_json(failures_file, failures)
        del status

    prepared = PreparedDataset(folder, transform=transform)
    if prepared.failures:
        kinds: dict[str, int] = {}
        for failure in prepared.failures:
            kind = failure.reason.split(":", 1)[0]
            kinds[kind] = kinds.get(kind, 0) + 1
        logger.warning(
            "prepare %s: %d of %d items prepared, %d failed (%s); details in %s",
            key, len(prepared), count, len(prepared.failures), kinds, failures_file,
        )
    return prepared


def _write_json(path: Path, value) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(value, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)


def _create(folder: Path, dataset, count: int, size: int, mask_options: dict, key: str) -> None:
    """Allocate the arrays; ``meta.json`` is written last, so a half-created folder is rebuilt."""
    folder.mkdir(parents=True, exist_ok=True)
    open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8, shape=(count, size, size, 3))
    open_memmap(folder / "landmarks.npy", mode="w+", dtype=np.float32, shape=(count, N_LANDMARKS, 2))
    open_memmap(folder / "masks.npy", mode="w+", dtype=MASK_DTYPE, shape=(count, size, size))
    labels = open_memmap(folder / "labels.npy", mode="w+", dtype=np.int64, shape=(count,))
    labels[:] = -1
    labels.flush()
    status = open_memmap(folder / "status.npy", mode="w+", dtype=np.uint8, shape=(count,))
    status[:] = TODO
    status.flush()
    _write_json(folder / "failures.json", {})
    meta = {
        "version": PREPARE_VERSION,
        "key": key,
        "count": count,
        "size": size,
        "mask_options": mask_options,
        "dataset": type(dataset).__name__,
        "fingerprint": dataset.fingerprint(),
        "num_classes": int(getattr(dataset, "num_classes", 7)),
    }
    _write_json(folder / "meta.json", meta)
