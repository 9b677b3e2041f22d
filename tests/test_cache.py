"""The Parquet cache: bit-exact round trip, deterministic bytes, atomic writes, pixels in place."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fas.cache import (SCHEMA, ShardWriter, decode_pixels, image_row, pixel_locations, read_meta,
                       write_shard)
from fas.paths import Shard, shard_file, shard_files

LABELS = {"is_live": True, "pai": "live", "subject": "s1"}


def _rows(seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for video in ["v2", "v1"]:
        for modality, channels in [("ir", 1), ("color", 3)]:
            for index in range(5):
                image = rng.integers(0, 256, (6, 7, channels), dtype=np.uint8)
                rows.append(image_row(video, modality, "static", index, image,
                                      source_frames=[index * 2], timestamps=[index / 30],
                                      flags=["padded"] if index == 4 else [], labels=LABELS))
    return rows


def test_round_trip_is_bit_exact_and_sorted(tmp_path):
    rows = _rows()
    path = tmp_path / "static-0-of-1.parquet"
    assert write_shard(path, rows, row_group_rows=3) == 20
    table = pq.read_table(path)
    assert table.schema.equals(SCHEMA)
    assert pq.ParquetFile(path).metadata.num_row_groups == 7
    by_key = {(r["video_id"], r["modality"], r["index"]): r for r in rows}
    keys = list(zip(*(table.column(k).to_pylist() for k in ("video_id", "modality", "index"))))
    assert keys == sorted(keys)
    for key, image in zip(keys, decode_pixels(table)):
        original = by_key[key]
        assert image.shape == (6, 7, original["channels"])
        assert image.tobytes() == original["pixels"]
    meta = read_meta([path])
    assert meta.column("flags").to_pylist()[4] == ["padded"]
    assert meta.column("row").to_pylist() == list(range(20))


def _in_place(path):
    """The pixel bytes of every row where `pixel_locations` puts them."""
    data = path.read_bytes()
    offsets, shapes = pixel_locations(path)
    return [data[offset:offset + int(np.prod(shape))] for offset, shape in zip(offsets, shapes)]


def test_pixels_lie_in_place_where_the_page_headers_say(tmp_path):
    path = tmp_path / "static-0-of-1.parquet"
    write_shard(path, _rows(), row_group_rows=3)  # grey and colour rows, 7 row groups
    table = pq.read_table(path)
    assert _in_place(path) == table.column("pixels").to_pylist()
    assert pixel_locations(path)[1].tolist() == [[6, 7, c] for c in table.column("channels").to_pylist()]
    for layout in [{"data_page_version": "2.0"}, {"data_page_size": 100, "write_batch_size": 2}]:
        pq.write_table(table, path, compression="none", use_dictionary=False, **layout)
        assert _in_place(path) == table.column("pixels").to_pylist()


def test_pixels_stored_otherwise_are_left_to_arrow(tmp_path):
    path = tmp_path / "static-0-of-1.parquet"
    write_shard(path, _rows(), row_group_rows=3)
    table = pq.read_table(path)
    pixels = table.column("pixels").to_pylist()
    with_null = table.set_column(table.schema.get_field_index("pixels"), "pixels",
                                 pa.array(pixels[:3] + [None] + pixels[4:], pa.binary()))
    for written, layout in [(table, {"compression": "zstd", "use_dictionary": False}),
                            (table, {"compression": "none", "use_dictionary": True}),
                            (with_null, {"compression": "none", "use_dictionary": False})]:
        pq.write_table(written, path, **layout)
        assert pixel_locations(path) is None


def test_rebuild_from_the_same_inputs_is_byte_identical(tmp_path):
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_shard(first, _rows(), 4)
    write_shard(second, list(reversed(_rows())), 4)
    assert first.read_bytes() == second.read_bytes()
    write_shard(second, _rows(seed=1), 4)
    assert first.read_bytes() != second.read_bytes()


def test_writer_rejects_unsorted_rows_and_leaves_no_file(tmp_path):
    path = tmp_path / "static-0-of-1.parquet"
    rows = _rows()
    with pytest.raises(ValueError, match="out of order"):
        with ShardWriter(path, 4) as writer:
            writer.write(rows)  # unsorted: v2 before v1
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_shard_helpers():
    assert Shard.parse("1/3") == (1, 3) and Shard.parse("0/2").name == "0-of-2"
    for bad in ["3/3", "a/2", "-1/2"]:
        with pytest.raises(ValueError, match="bad shard"):
            Shard.parse(bad)
    ids = [f"v{i}" for i in range(7)]
    parts = [Shard(i, 3).members(reversed(ids)) for i in range(3)]
    assert sorted(sum(parts, [])) == sorted(ids)
    assert parts[0] == ["v0", "v3", "v6"]


def test_shard_paths_are_ordered_and_refuse_mixed_counts(tmp_path):
    for i in (1, 0):
        shard_file(tmp_path, "static", Shard(i, 2)).write_bytes(b"")
    shard_file(tmp_path, "dynamic", Shard(0, 1)).write_bytes(b"")
    assert [p.name for p in shard_files(tmp_path, "static")] == [
        "static-0-of-2.parquet", "static-1-of-2.parquet"]
    shard_file(tmp_path, "static", Shard(0, 3)).write_bytes(b"")
    with pytest.raises(ValueError, match="different counts"):
        shard_files(tmp_path, "static")


def test_consecutive_runs():
    from fas.cache import consecutive_runs

    assert consecutive_runs([0, 1, 2, 10, 11, 11, 30]) == [range(0, 3), range(3, 6), range(6, 7)]
    assert consecutive_runs([]) == []
