"""Hostile training data (issue 21): a WebDataset shard whose member would fill memory."""
from __future__ import annotations

import gzip
import io
import tarfile
import tracemalloc

from PIL import Image

from trainer.data import webdataset
from trainer.data.records import LoadReport
from trainer.data.webdataset import iter_tar_samples


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, produced a block at a time (the test never holds the member)."""

    def __init__(self, size: int):
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = b"\0" * n
        self.left -= n
        return n


def _add(tar: tarfile.TarFile, name: str, data: bytes | None = None, size: int = 0) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data) if data is not None else size
    tar.addfile(info, io.BytesIO(data) if data is not None else io.BufferedReader(_Zeros(size), 1 << 20))


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, "JPEG")
    return out.getvalue()


def test_a_huge_member_is_skipped_without_being_read(tmp_path, monkeypatch):
    """Before: members were read whole (a 1.46 MB .tar.gz with a 1.5 GB member took RSS to 4.15 GB). Here
    the limit is lowered to 4 MiB and the member is 64 MiB of zeros (64 KiB compressed)."""
    monkeypatch.setattr(webdataset, "MAX_MEDIA_MEMBER_BYTES", 4 << 20)
    shard = tmp_path / "000000.tar.gz"
    with tarfile.open(shard, "w:gz", compresslevel=1) as tar:
        _add(tar, "a.jpg", _jpeg())
        _add(tar, "a.txt", b"a red square")
        _add(tar, "b.jpg", size=64 << 20)
        _add(tar, "b.txt", b"a bomb")
        _add(tar, "c.jpg", _jpeg())
        _add(tar, "c.txt", b"another red square")
    assert shard.stat().st_size < 1 << 20
    report = LoadReport()
    tracemalloc.start()
    try:
        keys = [key for key, _ in iter_tar_samples(str(shard), report)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert keys == ["a", "c"]
    assert report.skipped == {"member too large": 1}
    assert peak < 16 << 20, peak  # the 64 MiB member was never held (measured: 7.6 MiB; 129 MiB before)
    assert "b.jpg: 67,108,864 bytes, over the limit of 4,194,304" in report.examples[0]


def test_the_default_limits_refuse_a_member_that_claims_1_5_gb(tmp_path):
    """The header's size is read before the member: a 1.5 GB claim is refused at the default limit (the
    shard then ends early, which is counted too)."""
    info = tarfile.TarInfo("big.jpg")
    info.size = 1_500_000_000
    shard = tmp_path / "000000.tar.gz"
    shard.write_bytes(gzip.compress(info.tobuf() + b"\0" * 4096))
    report = LoadReport()
    assert list(iter_tar_samples(str(shard), report)) == []
    assert report.skipped["member too large"] == 1 and report.skipped["unreadable shard"] == 1
    assert webdataset.member_limit("jpg") == 256 << 20 and webdataset.member_limit("txt") == 1 << 20
