"""The cots application: the photo/video library engine, its CLI and the desktop GUI."""

import cots_core  # noqa: E402, F401 - switches native libraries' telemetry off before they load
