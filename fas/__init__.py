"""fas: a reproducible experiment pipeline for face anti-spoofing research."""

__version__ = "0.1.0"
