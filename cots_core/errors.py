"""Exceptions with messages a person can act on; the CLI and the GUI decide how to show them."""


class CotsError(Exception):
    """Base class for errors that are reported to the person without a traceback."""


class ModelLoadError(CotsError):
    """A model or checkpoint could not be found, read or matched to its configuration."""
