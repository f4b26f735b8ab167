"""Layouts, job specs, pipeline assembly, gates, reports and the ``ikou`` command line."""

__version__ = "0.1.0"
