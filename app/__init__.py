"""The cots application: the photo/video library engine, its CLI and the desktop GUI."""
