"""The desktop app (PySide6). All Qt code of the project lives in this package.

``cli.register(subparsers)`` adds ``cots gui``; ``window.MainWindow`` is the window; it reaches the
library only through a ``service.LibraryService`` and ``tasks.TaskRunner``.
"""
