"""Synthetic replicas of the seven benchmark datasets in their real on-disk layouts."""

GENERATOR_VERSION = "1.0"
DATASETS = ("cefa", "surf", "oulu", "siw", "replay", "msu", "casia_fasd")
