"""Training data: files -> examples -> tokenised datasets, collators and stats.

The seam the runtime uses is `prepare_data(spec, tokenizer) -> PreparedData` and `NoValidRowsError`.
Importing this package does not import torch (collators import it when called).
"""

from loraforge.engine.data.collators import NeatPackingCollator, PaddedCollator, PaddingFreeCollator
from loraforge.engine.data.dataset import LengthGroupedBatchSampler, TokenizedDataset
from loraforge.engine.data.prepare import PreparedData, load_examples, prepare_data, split_validation
from loraforge.engine.data.readers import DataFileError, read_rows
from loraforge.engine.data.registry import DatasetAttr, DatasetNotFoundError, resolve_dataset
from loraforge.engine.data.stats import DataError, DatasetStats, DataStats, NoValidRowsError, RowProblem

__all__ = [
    "DataError",
    "DataFileError",
    "DataStats",
    "DatasetAttr",
    "DatasetNotFoundError",
    "DatasetStats",
    "LengthGroupedBatchSampler",
    "NeatPackingCollator",
    "NoValidRowsError",
    "PaddedCollator",
    "PaddingFreeCollator",
    "PreparedData",
    "RowProblem",
    "TokenizedDataset",
    "load_examples",
    "prepare_data",
    "read_rows",
    "resolve_dataset",
    "split_validation",
]
