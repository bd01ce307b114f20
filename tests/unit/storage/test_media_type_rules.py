"""The archiver's media type rules and the asset route's Range parsing."""

from __future__ import annotations

import pytest

from genbus.api.entrypoints.http.routes.assets import parse_range
from genbus.storage import ByteRange
from genbus.storage.archive import ArchiveRefused, check_media_type, sniff

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(300)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(300)


def test_the_signature_decides_the_type() -> None:
    assert sniff(MP4) == "video/mp4"
    assert sniff(PNG) == "image/png"
    assert sniff(b"<html></html>") is None
    # The declared type may be vaguer (octet-stream, a family) but not another family.
    assert check_media_type("image/png", "application/octet-stream", "image") == "image/png"
    assert check_media_type("video/mp4", "video/quicktime", "video/mp4") == "video/mp4"


@pytest.mark.parametrize(
    ("sniffed", "declared", "expected", "code"),
    [
        (None, "video/mp4", "video/mp4", "media_type_unknown"),
        ("image/png", "video/mp4", "video/mp4", "media_type_mismatch"),
        ("image/png", "image/png", "video", "media_type_mismatch"),
    ],
)
def test_wrong_or_unknown_types_are_refused(
    sniffed: str | None, declared: str, expected: str, code: str
) -> None:
    with pytest.raises(ArchiveRefused) as refused:
        check_media_type(sniffed, declared, expected)
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", ByteRange(0, 9)),
        ("bytes=90-", ByteRange(90, 99)),
        ("bytes=90-500", ByteRange(90, 99)),
        ("bytes=-10", ByteRange(90, 99)),
        ("bytes=-500", ByteRange(0, 99)),
        ("bytes=100-", "unsatisfiable"),
        ("bytes=-0", "unsatisfiable"),
        ("bytes=5-2", None),
        ("bytes=0-1,5-6", None),  # several ranges: the whole object
        ("items=0-1", None),
    ],
)
def test_range_header(header: str | None, expected: ByteRange | str | None) -> None:
    assert parse_range(header, 100) == expected
