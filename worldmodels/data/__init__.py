"""Episodic datasets: on-disk format (TFDS array_record), writer, reader, samplers, stats."""

from worldmodels.data.errors import DatasetError
from worldmodels.data.reader import load_dataset, read_metadata
from worldmodels.data.stats import dataset_statistics, format_statistics_table
from worldmodels.data.types import STEP_KEYS, Steps
from worldmodels.data.writer import EpisodeWriter, write_dataset

__all__ = [
    "DatasetError",
    "EpisodeWriter",
    "STEP_KEYS",
    "Steps",
    "dataset_statistics",
    "format_statistics_table",
    "load_dataset",
    "read_metadata",
    "write_dataset",
]
