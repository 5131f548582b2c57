"""Times from files, EXIF and the command line all land in one range the program can show (issue 30).

Before: a file modified in 2300 ended every `cots index` with `OverflowError: Python int too large to
convert to SQLite INTEGER` (its mtime in nanoseconds), and an EXIF date of 9999-12-31 23:59:59 west of UTC
(year 10000 in UTC) had no month in SQLite (`strftime` gives NULL), so the browse order and the month
sections disagreed, and the detail pane raised `ValueError: year 10000 is out of range`.
"""
from __future__ import annotations

import os
import re
import sqlite3
import time
from datetime import datetime

import pytest
from fakes import solid
from PIL import Image

from app.cli import main
from app.library import Library
from app.library.dates import (
    EARLIEST,
    EARLIEST_NS,
    LATEST,
    LATEST_NS,
    capture_time,
    clamp_mtime_ns,
    local_datetime,
)
from app.library.encoder import Encoder
from app.library.search import Filters, browse, parse_date, periods

YEAR_10000_WEST = 253402318799.0  # 9999-12-31 23:59:59 at UTC-5, as EXIF was read before the range


@pytest.fixture
def fake_model(encoder, monkeypatch):
    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *args, **kwargs: encoder))


@pytest.fixture
def west_of_utc(monkeypatch):
    """A time zone five hours west of UTC (a POSIX rule: the same in glibc and SQLite for every year)."""
    monkeypatch.setenv("TZ", "EST5EDT")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _touch(path, when: str) -> None:
    """Set ``path``'s modification time to ``when`` (YYYY-MM-DD, UTC), as `touch -d` would."""
    seconds = int((datetime.fromisoformat(when) - datetime(1970, 1, 1)).total_seconds())
    os.utime(path, ns=(seconds * 10**9, seconds * 10**9))


def _exif_photo(path, taken: str) -> None:
    exif = Image.Exif()
    exif[306] = taken  # DateTime
    exif.get_ifd(0x8769)[36867] = taken  # DateTimeOriginal
    solid("red").save(path, exif=exif)


@pytest.fixture
def odd_times(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    for name, when in (("future.jpg", "2300-01-01"), ("past.jpg", "1600-01-01"), ("plain.jpg", "2020-06-15")):
        solid("blue").save(root / name)
        _touch(root / name, when)
    _exif_photo(root / "y9999.jpg", "9999:12:31 23:59:59")
    _exif_photo(root / "y1800.jpg", "1800:01:01 00:00:00")  # inside the range at UTC, not west of it
    return root


def _index(root, db, capsys) -> str:
    code = main(["index", str(root), "--db", str(db), "--quiet", "--model", "fake"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "internal error" not in err and "Traceback" not in err
    return out


def test_files_dated_past_2262_or_before_1677_index_and_stay_indexed(tmp_path, capsys, fake_model, west_of_utc,
                                                                     odd_times):
    db = tmp_path / "lib.db"
    _index(odd_times, db, capsys)
    again = _index(odd_times, db, capsys)  # every later run too (it stopped on the same file before)
    assert "5 unchanged" in again, again  # the clamped times compare equal: nothing is read twice
    assert main(["status", "--json", "--db", str(db)]) == 0
    assert '"indexed": 5' in capsys.readouterr().out
    with sqlite3.connect(db) as conn:
        stored = {os.path.basename(p): ns for p, ns in conn.execute("SELECT path, mtime_ns FROM media")}
    assert os.stat(odd_times / "future.jpg").st_mtime_ns > LATEST_NS  # kept by the file system: clamped here
    assert stored["future.jpg"] == LATEST_NS
    assert EARLIEST_NS <= stored["past.jpg"] < 0  # 1600 (or the file system's own limit, e.g. 1901)


def test_browse_order_and_month_sections_agree_and_every_date_can_be_shown(tmp_path, capsys, fake_model,
                                                                            west_of_utc, odd_times):
    db = tmp_path / "lib.db"
    _index(odd_times, db, capsys)
    with sqlite3.connect(db) as conn:  # a library written before the range: a year-10000 capture time
        conn.execute("UPDATE media SET captured_at = ? WHERE path LIKE '%plain.jpg'", (YEAR_10000_WEST,))
    lib = Library(db, create=False)
    try:
        hits, months = browse(lib), periods(lib, Filters(), "%Y-%m")
        assert None not in [period for period, _ in months]  # every item has a month ("Undated" held 1800)
        assert sum(count for _, count in months) == len(hits) == 5
        position = 0
        for period, count in months:  # the items under each section header are the ones of its month
            for hit in hits[position:position + count]:
                assert local_datetime(hit.record.date).strftime("%Y-%m") == period, hit.path
            position += count
        by_name = {os.path.basename(hit.path): hit for hit in hits}
        assert by_name["y9999.jpg"].record.captured_at is None  # a placeholder date is not a capture time
        assert by_name["plain.jpg"].record.date == LATEST  # the old row is shown as it sorts
        assert by_name["y1800.jpg"].record.captured_at is not None
    finally:
        lib.close()


def test_the_detail_pane_shows_any_stored_date(qtbot, tmp_path, capsys, fake_model, west_of_utc, odd_times):
    from app.gui.panels import DetailPane

    db = tmp_path / "lib.db"
    _index(odd_times, db, capsys)
    with sqlite3.connect(db) as conn:  # as written before the range: the row and the EXIF signal's fact
        conn.execute("UPDATE media SET captured_at = ? WHERE path LIKE '%y9999.jpg'", (YEAR_10000_WEST,))
        conn.execute("INSERT OR REPLACE INTO signal_facts(media_id, signal, key, value) SELECT id, 'exif', "
                     "'taken_at', ? FROM media WHERE path LIKE '%y9999.jpg'", (YEAR_10000_WEST,))
    lib = Library(db, create=False)
    try:
        pane = DetailPane()
        qtbot.addWidget(pane)
        for hit in browse(lib):
            pane.show_hit(hit)  # raised ValueError: year 10000 is out of range
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", pane.fields["Date"].text()), hit.path
            assert not pane.fields["Taken"].text().startswith(("9999", "10000"))  # a placeholder is not shown
    finally:
        lib.close()


@pytest.mark.parametrize("flag,value", [("--from", "0001"), ("--to", "0001-01-01"), ("--from", "9999-12-31"),
                                        ("--to", "9999"), ("--to", "9999-12"), ("--from", "1600-02-29")])
def test_date_filters_of_any_year_are_clamped_not_errors(tmp_path, capsys, fake_model, west_of_utc, odd_times,
                                                         flag, value):
    db = tmp_path / "lib.db"
    _index(odd_times, db, capsys)
    code = main(["search", "photo", flag, value, "--db", str(db), "--json"])
    err = capsys.readouterr().err
    assert code == 0, err


def test_one_range_for_every_source_of_a_date(west_of_utc):
    assert capture_time(YEAR_10000_WEST) is None and capture_time(float("nan")) is None
    assert capture_time(True) is None and capture_time("2019") is None
    assert capture_time(1.5e9) == 1.5e9
    assert clamp_mtime_ns(-(2**70)) == EARLIEST_NS and clamp_mtime_ns(2**70) == LATEST_NS  # both fit INTEGER
    assert -(2**63) <= EARLIEST_NS and LATEST_NS < 2**63
    assert parse_date("9999", end=True) == LATEST and parse_date("0001") == EARLIEST
    assert parse_date("2261-12", end=True) < LATEST
    assert parse_date("2019-06", end=True) - parse_date("2019-06") == pytest.approx(30 * 86400, abs=1)
    assert Filters(date_from=-1e300, date_to=1e300).where()[1] == [EARLIEST, LATEST]
    for seconds in (EARLIEST, LATEST, -1e300, 1e300):  # shown in any zone without raising
        assert local_datetime(seconds).year in (1799, 1800, 2261, 2262)
