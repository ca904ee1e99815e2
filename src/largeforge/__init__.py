"""LargeForge: the whole life of a language model in one system.

The top-level package only exposes the version; every capability lives in its own sub-package
(``largeforge.data``, ``largeforge.scratch`` …) so that importing one never drags in the others.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("largeforge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
