"""A compact bar chart of the library over time: photos per month (per year over a long span), with the
items shown now (the library under the filters, or the search results) drawn over it. Clicking or
dragging picks a date range (``range_chosen(first day, last day)``); a right click clears it."""
from __future__ import annotations

import calendar
from datetime import date

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

MAX_MONTHS = 120  # a longer span is drawn per year


def months_between(first: str, last: str) -> list[str]:
    """Every "YYYY-MM" from ``first`` to ``last``."""
    (year, month), (end_year, end_month) = (map(int, first.split("-")), map(int, last.split("-")))
    out = []
    while (year, month) <= (end_year, end_month):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


class Timeline(QWidget):
    range_chosen = Signal(object, object)  # date, date (both None: the range was cleared)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(56)
        self.setMaximumHeight(72)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setMouseTracking(True)
        self.library: dict[str, int] = {}  # "YYYY-MM" -> items in the library
        self.shown: dict[str, int] = {}  # "YYYY-MM" -> items shown now
        self.buckets: list[str] = []  # "YYYY-MM" or "YYYY", oldest first
        self.selected: tuple[int, int] | None = None  # bucket range picked
        self._press: int | None = None

    # -- data ----------------------------------------------------------------------------------
    def set_library(self, months: dict[str, int]) -> None:
        self.library = dict(months)
        self._bucket()
        self.update()

    def set_shown(self, months: dict[str, int]) -> None:
        self.shown = dict(months)
        self.update()

    def _bucket(self) -> None:
        if not self.library:
            self.buckets = []
            return
        months = months_between(min(self.library), max(self.library))
        if len(months) > MAX_MONTHS:
            self.buckets = [str(y) for y in range(int(months[0][:4]), int(months[-1][:4]) + 1)]
        else:
            self.buckets = months

    def _count(self, counts: dict[str, int], bucket: str) -> int:
        if len(bucket) == 7:
            return counts.get(bucket, 0)
        return sum(n for month, n in counts.items() if month.startswith(bucket))

    def bucket_dates(self, first: int, last: int) -> tuple[date, date]:
        """The first and last day of buckets ``first``..``last``."""
        a, b = self.buckets[first], self.buckets[last]
        start = date(int(a[:4]), int(a[5:7]) if len(a) == 7 else 1, 1)
        end_year, end_month = int(b[:4]), int(b[5:7]) if len(b) == 7 else 12
        return start, date(end_year, end_month, calendar.monthrange(end_year, end_month)[1])

    def label(self, bucket: int) -> str:
        name = self.buckets[bucket]
        when = date(int(name[:4]), int(name[5:7]), 1).strftime("%B %Y") if len(name) == 7 else name
        shown = self._count(self.shown, name)
        return f"{when}: {self._count(self.library, name)} in the library, {shown} shown"

    # -- mouse ---------------------------------------------------------------------------------
    def bucket_at(self, x: float) -> int | None:
        if not self.buckets:
            return None
        return max(0, min(len(self.buckets) - 1, int(x / max(1.0, self.width()) * len(self.buckets))))

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.RightButton:
            self.selected = None
            self.update()
            return self.range_chosen.emit(None, None)
        self._press = self.bucket_at(event.position().x())
        if self._press is not None:
            self.selected = (self._press, self._press)
            self.update()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        bucket = self.bucket_at(event.position().x())
        if bucket is None:
            return
        if self._press is not None:
            self.selected = (min(self._press, bucket), max(self._press, bucket))
            self.update()
        QToolTip.showText(event.globalPosition().toPoint(), self.label(bucket), self)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._press is None or self.selected is None:
            return
        self._press = None
        self.range_chosen.emit(*self.bucket_dates(*self.selected))

    # -- painting ------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().base())
        if not self.buckets:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignCenter, "The timeline fills as photos are indexed")
            painter.end()
            return
        width, height = self.width() / len(self.buckets), self.height() - 14
        peak = max(self._count(self.library, b) for b in self.buckets) or 1
        if self.selected is not None:
            first, last = self.selected
            painter.fillRect(QRectF(first * width, 0, (last - first + 1) * width, self.height()), QColor("#2d4f73"))
        for i, bucket in enumerate(self.buckets):
            for counts, colour in ((self.library, QColor("#5f6368")), (self.shown, QColor("#8ab4f8"))):
                bar = self._count(counts, bucket) / peak * height
                if bar:
                    painter.fillRect(QRectF(i * width + 0.5, height - max(bar, 1.5), max(width - 1, 1), max(bar, 1.5)),
                                     colour)
        painter.setPen(self.palette().text().color())
        next_free = 0.0  # year labels never overlap
        for i, bucket in enumerate(self.buckets):
            starts_year = i == 0 or len(bucket) == 4 or bucket[5:7] == "01"
            if starts_year and i * width >= next_free:
                painter.drawText(QRectF(i * width + 2, height, 40, 14), Qt.AlignLeft | Qt.AlignVCenter, bucket[:4])
                next_free = i * width + 44
        painter.end()
