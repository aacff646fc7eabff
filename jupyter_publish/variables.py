"""Notebook variables as files, so ``%publish df`` publishes a DataFrame like a path.

Types are recognised only through modules already imported (a DataFrame can exist only
if pandas is loaded), so nothing heavy is imported here.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

from .errors import SourceError
from .text import one_line

SUPPORTED_TYPES = (
    "pandas DataFrame/Series (.parquet, or .csv without pyarrow), matplotlib Figure (.png), "
    "dict/list (.json), str (.txt), bytes (.bin), numpy array (.npy)"
)


def variable_to_file(name: str, value: object, folder: Path) -> Path:
    """Serialise a notebook variable as ``folder/NAME.ext`` so it can be published.

    Types are recognised through modules already imported (a DataFrame exists only if
    pandas is loaded), so this never imports pandas, numpy or matplotlib by itself.
    """
    pandas = sys.modules.get("pandas")
    numpy = sys.modules.get("numpy")
    figure = sys.modules.get("matplotlib.figure")
    if pandas is not None and isinstance(value, pandas.Series):
        value = value.to_frame()
    if pandas is not None and isinstance(value, pandas.DataFrame):
        return _write_frame(name, value, folder)
    if figure is not None and isinstance(value, figure.Figure):
        path = folder / f"{name}.png"
        value.savefig(path, bbox_inches="tight")
        return path
    if numpy is not None and isinstance(value, numpy.ndarray):
        return _write_array(name, value, folder, numpy)
    if isinstance(value, (bytes, bytearray, memoryview)):
        path = folder / f"{name}.bin"
        path.write_bytes(bytes(value))
        return path
    if isinstance(value, str):
        path = folder / f"{name}.txt"
        path.write_text(value, encoding="utf-8")
        return path
    if isinstance(value, (dict, list, tuple)):
        return _write_json(name, value, folder)
    raise SourceError(
        f"cannot publish {name!r}: a {type(value).__module__}.{type(value).__qualname__} is not a file; "
        f"notebook variables can be {SUPPORTED_TYPES} — or save it to a file and publish that"
    )


def _write_frame(name: str, frame: pd.DataFrame, folder: Path) -> Path:
    """Parquet keeps dtypes; CSV when pyarrow is missing or cannot store the frame."""
    if importlib.util.find_spec("pyarrow") is not None:
        path = folder / f"{name}.parquet"
        try:
            frame.to_parquet(path)
            return path
        except (ValueError, TypeError, NotImplementedError, ImportError):
            path.unlink(missing_ok=True)  # e.g. non-string column names: fall back to CSV
    path = folder / f"{name}.csv"
    plain_index = type(frame.index).__name__ == "RangeIndex"
    frame.to_csv(path, index=not plain_index)
    return path


def _write_array(name: str, array: np.ndarray, folder: Path, numpy: ModuleType) -> Path:
    path = folder / f"{name}.npy"
    try:
        numpy.save(path, array, allow_pickle=False)
    except ValueError as exc:
        raise SourceError(f"cannot publish {name!r} as .npy: {one_line(exc)}") from None
    return path


def _write_json(name: str, value: object, folder: Path) -> Path:
    path = folder / f"{name}.json"
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError) as exc:
        raise SourceError(f"cannot publish {name!r} as JSON: {one_line(exc)}") from None
    path.write_text(text + "\n", encoding="utf-8")
    return path
