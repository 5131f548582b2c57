"""The progress of a model download from the Hugging Face hub (``cots_core.hub.download``): one bar, bytes
written of the total. The CLI draws it on stderr; the GUI passes ``report`` and shows it in its status bar."""
from __future__ import annotations


def transfer_bar_class(report=None):
    """A tqdm class for ``cots_core.hub.download``: one bar, bytes written of the total, on stderr; with
    ``report``, nothing is drawn and ``report(bytes_done, bytes_total)`` is called instead (the GUI)."""
    from tqdm.auto import tqdm

    from cots_core.hub import is_transfer_bar

    class TransferBar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs.pop("name", None)
            self._kept = is_transfer_bar(kwargs)
            if self._kept:
                kwargs.update(desc="downloading", bar_format=None)
            if report is not None or not self._kept:
                kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            if not (self._kept and report is not None):
                return super().update(n)
            self.n += n or 0  # a disabled tqdm counts nothing itself
            report(int(self.n), int(self.total) if self.total else None)
            return None

        def set_description(self, desc=None, refresh=True):
            pass  # the bar keeps its one name, "downloading"

        def set_description_str(self, desc=None, refresh=True):
            pass

    return TransferBar
