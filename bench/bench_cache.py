"""Reading 112x112x3 face crops: the Parquet cache vs image folders vs a .npy memmap.

Full scan (in order) and shuffled (the cache through fas.loader, shuffling
row groups and a buffer; the others in a random order of single samples).
Each method delivers every sample as its own uint8 array. The loader gives
each crop a CHW tensor of its own, transposed from the memory-mapped shard;
".npy memmap, CHW tensors" does the same from a memmap, the loader's ceiling.
The loader's dataset is opened once, as a training job opens each split's,
and each timed call is one epoch (`set_epoch`); opening is timed on its own.
"""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import skimage.data
import torch

from bench._util import OUT, best_time, one_thread_each, peak_memory_mb, table
from fas.cache import decode_pixels, image_row, iter_row_groups, write_shard
from fas.paths import Shard, shard_file
from fas.loader import ClipSamples, chw

N, SIZE = 4000, 112


def crops(n: int) -> np.ndarray:
    """Photographic crops (scikit-image's bundled photographs), so codecs see real texture."""
    rng = np.random.default_rng(0)
    sources = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]
    out = np.empty((n, SIZE, SIZE, 3), np.uint8)
    for i in range(n):
        image = sources[i % len(sources)]
        y, x = rng.integers(0, image.shape[0] - SIZE), rng.integers(0, image.shape[1] - SIZE)
        out[i] = image[y:y + SIZE, x:x + SIZE]
    return out


def write_all(folder, images):
    labels = {"is_live": True, "pai": "live", "subject": "s"}
    rows = [image_row(f"v{i // 16:05d}", "color", "static", i % 16, image, source_frames=[i % 16],
                      timestamps=[i % 16 / 30], labels=labels) for i, image in enumerate(images)]
    write_shard(shard_file(folder / "cache", "static", Shard(0, 1)), rows, 256)
    for ext in ("jpg", "png"):
        (folder / ext).mkdir()
        for i, image in enumerate(images):
            cv2.imwrite(str(folder / ext / f"{i:06d}.{ext}"), image[:, :, ::-1])
    np.save(folder / "crops.npy", images)


def main() -> None:
    folder = OUT / "cache_bench"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    images = crops(N)
    write_all(folder, images)
    order = np.random.default_rng(1).permutation(N)
    # a plain ndarray view: slicing np.memmap objects costs more than the copy itself
    memmap = np.load(folder / "crops.npy", mmap_mode="r").view(np.ndarray)
    shard = shard_file(folder / "cache", "static", Shard(0, 1))

    def cache_scan():
        columns = ["pixels", "height", "width", "channels"]
        return sum(len([image.copy() for image in decode_pixels(table)])
                   for table in iter_row_groups(shard, columns=columns))

    def memmap_tensors(indices):
        return [torch.from_numpy(chw(memmap[i])) for i in indices]

    def open_dataset(shuffle):
        return ClipSamples(folder / "cache", None, 1, shuffle=shuffle, seed=0)

    datasets = {shuffle: open_dataset(shuffle) for shuffle in (False, True)}

    def loader(shuffle):
        dataset = datasets[shuffle]
        dataset.set_epoch(dataset.epoch + 1)
        return sum(1 for _ in dataset)

    def folder_read(ext, indices):
        return [cv2.cvtColor(cv2.imread(str(folder / ext / f"{i:06d}.{ext}")), cv2.COLOR_BGR2RGB)
                for i in indices]

    methods = {
        ("Parquet cache, row groups", "scan"): cache_scan,
        ("Parquet cache, fas.loader", "scan"): lambda: loader(False),
        ("Parquet cache, fas.loader", "shuffled"): lambda: loader(True),
        ("JPEG folder", "scan"): lambda: folder_read("jpg", range(N)),
        ("JPEG folder", "shuffled"): lambda: folder_read("jpg", order),
        ("PNG folder", "scan"): lambda: folder_read("png", range(N)),
        ("PNG folder", "shuffled"): lambda: folder_read("png", order),
        (".npy memmap", "scan"): lambda: [np.array(memmap[i]) for i in range(N)],
        (".npy memmap", "shuffled"): lambda: [np.array(memmap[i]) for i in order],
        (".npy memmap, CHW tensors", "scan"): lambda: memmap_tensors(range(N)),
        (".npy memmap, CHW tensors", "shuffled"): lambda: memmap_tensors(order),
    }
    with one_thread_each() as pinned:
        rates = {key: N / best_time(method, repeats=2) for key, method in methods.items()}
        opening = best_time(lambda: open_dataset(True), repeats=3)
    sizes = {"Parquet cache": shard.stat().st_size,
             "JPEG folder": sum(p.stat().st_size for p in (folder / "jpg").iterdir()),
             "PNG folder": sum(p.stat().st_size for p in (folder / "png").iterdir()),
             ".npy memmap": (folder / "crops.npy").stat().st_size}
    rows = []
    for (name, mode), rate in rates.items():
        size = next(v for k, v in sizes.items() if name.startswith(k))
        ceiling = ".npy memmap, CHW tensors" if "loader" in name else ".npy memmap"
        rows.append((name, mode, f"{rate:,.0f}", f"{rate / rates['JPEG folder', mode]:.1f}x",
                     f"{rate / rates[ceiling, mode]:.0%}", f"{size / 1e6:.0f} MB"))
    print(f"{N} crops of {SIZE}x{SIZE}x3, page cache warm, {pinned}")
    print(table(rows, ("method", "order", "samples/s", "vs JPEG", "vs memmap", "size")))
    print("(the loader, which yields a CHW tensor of its own per crop, is compared with a memmap "
          "yielding the same; its rates are per epoch of a dataset opened once)")
    print(f"opening the loader's dataset (once per split in a training job): {opening * 1e3:.1f} ms, "
          f"{opening * rates['Parquet cache, fas.loader', 'shuffled'] / N:.0%} of a shuffled epoch")
    print(peak_memory_mb())
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
