"""A table file as a DataFrame, by its extension: CSV/TSV (pandas), Parquet (pyarrow), NumPy ``.npz``.

:func:`repeated_columns` reads a CSV/TSV header as written, since pandas renames a repeated name ``a`` to
``a.1``, ``a.2``, ... without a word.
"""

from __future__ import annotations

import codecs
import gzip
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lossbench.errors import ConfigError, DataError

#: file name endings -> reader
FORMATS = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet", ".pq", ".npz")


def file_kind(path: Path) -> str | None:
    """The file's format, as its ending in :data:`FORMATS`, or ``None``."""
    name = path.name.lower()
    return next((f for f in FORMATS if name.endswith(f)), None)


def repeated_columns(path: Path, sep: str | None = None, encoding: str = "utf-8") -> dict[str, int]:
    """Column names a CSV/TSV header holds more than once, with their counts (other formats: none); the
    header is read with the file's ``sep`` and ``encoding`` as :func:`read_table` reads it, and a header
    that cannot be read is a ``DataError``."""
    kind = file_kind(path)
    if kind is None or not kind.startswith((".csv", ".tsv")):
        return {}
    try:
        header = pd.read_csv(
            path, sep=sep or default_sep(kind), header=None, nrows=1, dtype=str, encoding=encoding
        )
    except Exception as err:  # pandas raises many types for a bad file
        text = " ".join(str(err).split())[:200]
        raise DataError(
            f"data.path={path}: its header could not be read: {type(err).__name__}: {text}. Check the file "
            "and data.sep/data.encoding"
        ) from None
    names = [str(n) for n in header.iloc[0].tolist() if isinstance(n, str)]
    return {n: names.count(n) for n in dict.fromkeys(names) if names.count(n) > 1}


def read_table(
    path: Path,
    na_values: Sequence[str] = (),
    sep: str | None = None,
    decimal: str = ".",
    encoding: str = "utf-8",
    thousands: str | None = None,
) -> pd.DataFrame:
    """The file as a DataFrame, by its extension (a CSV/TSV file's ``sep``: its field separator, when not
    ``,`` or a tab; ``decimal``: its numbers' decimal mark; ``encoding``: its text encoding; ``thousands``:
    its numbers' thousands separator, if any); a missing, unreadable or corrupt file is a ``DataError``."""
    kind = file_kind(path)
    if kind is None:
        raise ConfigError(
            f"data.path={path} has an unknown extension: use one of {', '.join(FORMATS)} (CSV, TSV, Parquet, "
            "NumPy .npz)"
        )
    if not path.is_file():
        raise DataError(f"data.path={path} does not exist (relative paths start at {Path.cwd()})")
    if kind.startswith((".csv", ".tsv")) and (wide := wide_bom(path)) and not unicode_of(encoding, wide):
        raise DataError(
            f"data.path={path} is {wide.upper()} text (it starts with a {wide.upper()} byte order mark), not "
            f"{encoding}: set data.encoding={wide}, or save the file as UTF-8"
        )
    try:
        if kind.startswith((".csv", ".tsv")):
            frame = pd.read_csv(
                path,
                sep=sep or default_sep(kind),
                na_values=list(na_values),
                decimal=decimal,
                encoding=encoding,
                thousands=thousands,
            )
            check_separator(frame, path, sep or default_sep(kind))
        elif kind in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = _npz_frame(path)
    except (DataError, ConfigError):
        raise
    except UnicodeDecodeError as err:
        raise DataError(
            f"data.path={path} is not {encoding} text (byte {err.object[err.start]:#04x} at {err.start}): "
            "set data.encoding to the file's encoding (e.g. data.encoding=cp1252 for a file saved by "
            "Excel on Windows, latin-1), or save the file as UTF-8"
        ) from None
    except Exception as err:  # pandas/pyarrow/numpy raise many types for a bad file
        text = " ".join(str(err).split())[:200]
        raise DataError(
            f"data.path={path} could not be read as {kind.lstrip('.')}: {type(err).__name__}: {text}. "
            "Check the file (is it complete, is the extension right?)"
        ) from None
    if frame.empty or len(frame.columns) == 0:
        raise DataError(f"data.path={path} holds no rows or no columns")
    if na_values and not kind.startswith((".csv", ".tsv")):  # pandas' CSV reader did this already
        frame = frame.replace(list(na_values), np.nan)
        numbers = [float(v) for v in na_values if _number(v) is not None]
        for col in frame.select_dtypes(include="number").columns if numbers else ():  # "1e30": 1e30
            marked = frame[col].isin(numbers)
            if marked.any():
                frame[col] = frame[col].mask(marked)
        for col in frame.select_dtypes(include=object).columns:
            parsed = pd.to_numeric(frame[col], errors="coerce")
            if parsed.notna().sum() == frame[col].notna().sum():
                frame[col] = parsed
    return frame


def default_sep(kind: str) -> str:
    """The field separator of a file of ``kind`` (:data:`FORMATS`) when ``data.sep`` names none."""
    return "\t" if kind.startswith(".tsv") else ","


def wide_bom(path: Path) -> str | None:
    """``utf-32`` or ``utf-16`` when the file (read through gzip for ``.gz``) starts with that encoding's
    byte order mark (UTF-16's, ``FF FE`` or ``FE FF``, as Excel's "Unicode text" and PowerShell's files
    do; UTF-32's little-endian one starts like it), else None (also for a file that cannot be read so)."""
    try:
        with (gzip.open if path.name.lower().endswith(".gz") else open)(path, "rb") as file:
            start = file.read(4)
    except (OSError, EOFError):  # not gzip, or cut short: reading it says so
        return None
    if start in (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE):
        return "utf-32"
    return "utf-16" if start[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else None


def unicode_of(encoding: str, wide: str) -> bool:
    """Whether ``encoding`` is one of the ``wide`` encodings (``utf-16``: UTF-16, little- or big-endian)."""
    try:
        return codecs.lookup(encoding).name.startswith(wide)
    except LookupError:
        return False


def _number(text: str) -> float | None:
    """``text`` as a number, or ``None``."""
    try:
        return float(text)
    except ValueError:
        return None


#: field separators a one-column CSV/TSV header is searched for
SEPARATORS = {",": "','", ";": "';'", "\t": "'\\t'", "|": "'|'"}


def check_separator(frame: pd.DataFrame, path: Path, sep: str) -> None:
    """Name ``data.sep`` when a CSV/TSV read with ``sep`` gave one column whose name holds another
    separator (a ``;``-separated ``.csv``): read that way its header would be one long target name."""
    if len(frame.columns) != 1:
        return
    header = str(frame.columns[0])
    found = [other for other in SEPARATORS if other != sep and other in header]
    if found:
        likely, used = SEPARATORS[found[0]], SEPARATORS.get(sep, repr(sep))
        raise ConfigError(
            f"data.path={path} was read as one column named {header[:60]!r}: its fields look separated by "
            f'{likely}, not {used}; add "data.sep={likely}" (quoted as shown, for the shell)'
        )


def _npz_frame(path: Path) -> pd.DataFrame:
    """``.npz``: each 1-D array is a column; a 2-D array ``a`` gives columns ``a_0 .. a_{k-1}``."""
    columns: dict[str, np.ndarray] = {}
    with np.load(path, allow_pickle=False) as npz:
        for key in npz.files:
            arr = npz[key]
            if arr.ndim == 1:
                columns[key] = arr
            elif arr.ndim == 2:
                columns.update({f"{key}_{j}": arr[:, j] for j in range(arr.shape[1])})
            else:
                raise DataError(
                    f"data.path={path}: array {key!r} has shape {arr.shape}; use 1-D or 2-D arrays"
                )
    lengths = {k: len(v) for k, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(
            f"data.path={path}: arrays of different lengths {lengths}: every array needs one row per sample"
        )
    return pd.DataFrame(columns)
