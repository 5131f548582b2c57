"""The desktop app (PySide6). All Qt code of the project lives in this package.

``launch.open_window`` starts it (``cots gui`` calls it from ``app/cli/gui.py``; the GUI imports no CLI
module); ``window.MainWindow`` is the window; it reaches the library only through a
``service.LibraryService`` and ``tasks.TaskRunner``.
"""
