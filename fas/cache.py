"""The Parquet cache: schema, deterministic shard writer, row-group reader, pixels in place.

Every preprocessing stage writes the same table (docs/ARCHITECTURE.md, "Cache
shards"): one row per image, raw uint8 HWC pixels, sorted by
(video_id, modality, kind, index). Pixels are stored raw and uncompressed:
measured (bench/bench_cache.py, DEPENDENCIES.md) raw bytes read several times
faster than JPEG, and lz4/zstd save only a few per cent on face crops.
A shard is written to a temporary name and renamed, with a fixed row-group
size and no varying metadata, so the same inputs give byte-identical files.
As written, each row's pixels lie in the file as they are (a PLAIN value of an
uncompressed column chunk: a 4-byte length, then the bytes); `pixel_locations`
finds them from the page headers, so a reader can view images in a memory map
instead of copying row groups into Arrow buffers first.
"""

from __future__ import annotations

import mmap
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fas.io import atomic_path

SCHEMA = pa.schema([
    ("video_id", pa.string()),
    ("modality", pa.string()),
    ("kind", pa.string()),
    ("index", pa.int32()),
    ("source_frames", pa.list_(pa.int32())),
    ("timestamps", pa.list_(pa.float64())),
    ("height", pa.int32()),
    ("width", pa.int32()),
    ("channels", pa.int32()),
    ("pixels", pa.binary()),
    ("flags", pa.list_(pa.string())),
    ("is_live", pa.bool_()),
    ("pai", pa.string()),
    ("subject", pa.string()),
])
META_COLUMNS = [name for name in SCHEMA.names if name != "pixels"]
SORT_KEY = ("video_id", "modality", "kind", "index")


def frame_rate(frames: list[int], times: list[float]) -> float | None:
    """Frame rate from source frame numbers and their timestamps, if they span time."""
    if len(frames) < 2 or times[-1] <= times[0] or frames[-1] <= frames[0]:
        return None
    return (frames[-1] - frames[0]) / (times[-1] - times[0])


def consecutive_runs(source_frames: Iterable[int]) -> list[range]:
    """Maximal stretches of a sampled sequence whose source frames follow each other.

    Steps of 1 continue a run; steps of 0 (a padded repeat) do too, so a
    repeat-padded clip stays one run. Returns ranges of positions.
    """
    frames = list(source_frames)
    runs, start = [], 0
    for position in range(1, len(frames) + 1):
        if position == len(frames) or frames[position] - frames[position - 1] not in (0, 1):
            runs.append(range(start, position))
            start = position
    return runs


def image_row(video_id: str, modality: str, kind: str, index: int, image: np.ndarray, *,
              source_frames: list[int], timestamps: list[float], flags: Iterable[str] = (),
              labels: dict) -> dict:
    """One cache row; `image` is uint8 HxW or HxWxC, `labels` has is_live, pai, subject."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim == 2:
        image = image[:, :, None]
    height, width, channels = image.shape
    return {"video_id": video_id, "modality": modality, "kind": kind, "index": int(index),
            "source_frames": [int(f) for f in source_frames],
            "timestamps": [float(t) for t in timestamps],
            "height": height, "width": width, "channels": channels,
            "pixels": image.tobytes(), "flags": sorted(set(flags)),
            "is_live": bool(labels["is_live"]), "pai": str(labels["pai"]),
            "subject": str(labels["subject"])}


class ShardWriter:
    """Streams sorted rows into a Parquet shard, atomically.

    Rows must arrive in (video_id, modality, kind, index) order; they are
    written in row groups of exactly `row_group_rows` (the last may be shorter).
    The file appears at `path` only when the `with` block ends without error.
    """

    def __init__(self, path: str | Path, row_group_rows: int):
        if row_group_rows < 1:
            raise ValueError("row_group_rows must be >= 1")
        self.path = Path(path)
        self.row_group_rows = row_group_rows
        self.rows_written = 0
        self._buffer: list[dict] = []
        self._last_key: tuple | None = None

    def __enter__(self) -> "ShardWriter":
        self._stack = ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._writer = pq.ParquetWriter(tmp, SCHEMA, compression="none", use_dictionary=False,
                                        write_statistics=["video_id", "modality", "kind",
                                                          "index"])
        return self

    def write(self, rows: Iterable[dict]) -> None:
        for row in rows:
            key = tuple(row[k] for k in SORT_KEY)
            if self._last_key is not None and key <= self._last_key:
                raise ValueError(f"cache rows out of order: {key} after {self._last_key}")
            self._last_key = key
            self._buffer.append(row)
            if len(self._buffer) == self.row_group_rows:
                self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write_table(pa.Table.from_pylist(self._buffer, schema=SCHEMA),
                                     row_group_size=self.row_group_rows)
            self.rows_written += len(self._buffer)
            self._buffer = []

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                self._flush()
            self._writer.close()
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return bool(self._stack.__exit__(exc_type, exc, tb))


def write_shard(path: str | Path, rows: Iterable[dict], row_group_rows: int) -> int:
    """Write rows (sorted here) to one shard; returns the row count."""
    ordered = sorted(rows, key=lambda r: tuple(r[k] for k in SORT_KEY))
    with ShardWriter(path, row_group_rows) as writer:
        writer.write(ordered)
    return writer.rows_written


def read_meta(paths: Iterable[str | Path]) -> "pa.Table":
    """Every column but the pixels of several shards, with `shard` and `row` added."""
    tables = []
    for shard_number, path in enumerate(paths):
        table = pq.read_table(path, columns=META_COLUMNS)
        tables.append(table.append_column("shard", pa.array(
            np.full(table.num_rows, shard_number, np.int32))).append_column(
            "row", pa.array(np.arange(table.num_rows, dtype=np.int64))))
    if not tables:
        return SCHEMA.empty_table().drop_columns(["pixels"])
    return pa.concat_tables(tables)


def row_group_starts(path: str | Path) -> np.ndarray:
    """First row of every row group of a shard, plus the total row count."""
    metadata = pq.ParquetFile(path).metadata
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def decode_pixels(table: "pa.Table") -> list[np.ndarray]:
    """The images of a table as HxWxC uint8 views of its pixel buffer (no copy)."""
    pixels = table.column("pixels")
    column = pixels.chunk(0) if pixels.num_chunks == 1 else pixels.combine_chunks()
    heights = table.column("height").to_numpy()
    widths = table.column("width").to_numpy()
    channels = table.column("channels").to_numpy()
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32,
                            count=len(column) + 1, offset=column.offset * 4)
    data = np.frombuffer(column.buffers()[2], dtype=np.uint8)
    if len(column) and (heights == heights[0]).all() and (widths == widths[0]).all() \
            and (channels == channels[0]).all():
        shape = (int(heights[0]), int(widths[0]), int(channels[0]))
        if (np.diff(offsets) == np.prod(shape)).all():  # one reshape for uniform images
            return list(data[offsets[0]:offsets[-1]].reshape((len(column),) + shape))
    return [data[offsets[i]:offsets[i + 1]].reshape(heights[i], widths[i], channels[i])
            for i in range(len(column))]


# Page headers as parquet.thrift numbers their fields: PageHeader {1 type, 3 compressed_page_size,
# 5 data_page_header, 8 data_page_header_v2}; DataPageHeader {1 num_values, 2 encoding,
# 3 definition_level_encoding}; DataPageHeaderV2 {1 num_values, 2 num_nulls, 4 encoding,
# 5 definition_levels_byte_length, 6 repetition_levels_byte_length}.
DATA_PAGE, DATA_PAGE_V2, PLAIN, RLE = 0, 3, 0, 3


def pixel_locations(path: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Where each row's pixels lie in a shard file: byte offsets and (height, width, channels)
    per row, when stored as ShardWriter stores them (plain values in uncompressed data pages,
    no dictionary, no nulls); None for any other layout (read those through Arrow)."""
    handle = pq.ParquetFile(path)
    metadata = handle.metadata
    column = [metadata.schema.column(i).path for i in range(metadata.num_columns)].index("pixels")
    if metadata.schema.column(column).max_repetition_level:
        return None
    nullable = metadata.schema.column(column).max_definition_level > 0  # levels precede values
    sizes = handle.read(columns=["height", "width", "channels"])
    shapes = np.stack([sizes.column(name).to_numpy().astype(np.int64)
                       for name in ("height", "width", "channels")], axis=1)
    spans = shapes.prod(axis=1) + 4  # a value: its 4-byte length, then its bytes
    offsets = np.empty(len(spans), np.int64)
    row = 0
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for group in range(metadata.num_row_groups):
            chunk = metadata.row_group(group).column(column)
            if chunk.compression != "UNCOMPRESSED" or chunk.has_dictionary_page:
                return None
            position, end = chunk.data_page_offset, chunk.data_page_offset + chunk.total_compressed_size
            while position < end:
                header, start = _thrift_struct(data, position)
                if header[1] == DATA_PAGE and (not nullable or header[5][3] == RLE):
                    count, encoding = header[5][1], header[5][2]  # levels after their 4-byte length
                    values = start + (4 + int.from_bytes(data[start:start + 4], "little") if nullable else 0)
                elif header[1] == DATA_PAGE_V2 and not header[8][2]:
                    count, encoding = header[8][1], header[8][4]
                    values = start + header[8][5] + header[8][6]
                else:
                    return None
                position = start + header[3]
                page = spans[row:row + count]
                if encoding != PLAIN or len(page) != count or values + int(page.sum()) != position:
                    return None  # not one value per row, each as long as the row's shape
                offsets[row:row + count] = values + 4 + np.cumsum(page) - page
                row += count
    return (offsets, shapes) if row == len(spans) else None


def _thrift_struct(data, position: int) -> tuple[dict, int]:
    """The Thrift compact-protocol struct at `position` as {field id: value} (structs as dicts,
    integers and booleans as ints, other values as None) and the position after it."""
    fields, field = {}, 0
    while data[position]:
        header = data[position]
        if header >> 4:
            field, position = field + (header >> 4), position + 1
        else:
            field, position = _zigzag(data, position + 1)
        fields[field], position = _thrift_value(data, position, header & 0x0F)
    return fields, position + 1


def _thrift_value(data, position: int, kind: int) -> tuple[object, int]:
    """One compact-protocol value of type `kind` at `position`, and the position after it."""
    if kind in (1, 2):  # boolean, held in the field header
        return kind == 1, position
    if kind == 3:
        return data[position], position + 1
    if kind in (4, 5, 6):
        return _zigzag(data, position)
    if kind == 7:
        return None, position + 8
    if kind == 8:
        size, position = _varint(data, position)
        return None, position + size
    if kind in (9, 10):  # list, set: size and element type, then the elements
        size, element = data[position] >> 4, data[position] & 0x0F
        position += 1
        if size == 15:
            size, position = _varint(data, position)
        for _ in range(size):
            _, position = _thrift_value(data, position, 3 if element in (1, 2) else element)
        return None, position
    if kind == 11:  # map: size, key and value types, then the pairs
        size, position = _varint(data, position)
        if size:
            types, position = data[position], position + 1
            for _ in range(size):
                for element in (types >> 4, types & 0x0F):
                    _, position = _thrift_value(data, position, 3 if element in (1, 2) else element)
        return None, position
    if kind == 12:
        return _thrift_struct(data, position)
    raise ValueError(f"not a Thrift compact type: {kind}")


def _varint(data, position: int) -> tuple[int, int]:
    value = shift = 0
    while data[position] & 0x80:
        value |= (data[position] & 0x7F) << shift
        position, shift = position + 1, shift + 7
    return value | data[position] << shift, position + 1


def _zigzag(data, position: int) -> tuple[int, int]:
    value, position = _varint(data, position)
    return (value >> 1) ^ -(value & 1), position


def iter_row_groups(path: str | Path, columns: list[str] | None = None) -> Iterator["pa.Table"]:
    """Row groups of one shard as tables, in order (memory-mapped: uncompressed pages
    are read without an intermediate copy, about 1.5x faster)."""
    handle = pq.ParquetFile(path, memory_map=True)
    for group in range(handle.num_row_groups):
        yield handle.read_row_group(group, columns=columns)


def with_images(rows: list[dict]) -> list[dict]:
    """Cache rows held in memory, each with its decoded `image` as `iter_video_rows` gives it."""
    decoded = []
    for row in rows:
        image = np.frombuffer(row["pixels"], np.uint8).reshape(
            row["height"], row["width"], row["channels"])
        decoded.append({**row, "image": image[:, :, 0] if row["channels"] == 1 else image})
    return decoded


def iter_video_rows(path: str | Path) -> Iterator[tuple[str, list[dict]]]:
    """(video_id, rows) per video of a shard, streaming; rows carry a decoded `image`.

    Grey images come as HxW, colour as HxWx3; the shard must be sorted by video.
    """
    current, rows = None, []
    for table in iter_row_groups(path):
        images = decode_pixels(table)
        for row, image in zip(table.drop_columns(["pixels"]).to_pylist(), images):
            if row["video_id"] != current and rows:
                yield current, rows
                rows = []
            current = row["video_id"]
            row["image"] = image[:, :, 0] if image.shape[2] == 1 else image
            rows.append(row)
    if rows:
        yield current, rows
