"""The ``data.*`` options that decide how a user's table is read and checked, as one value."""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lossbench.errors import ConfigError, check_choice
from lossbench.task import Task

#: ways to fill missing feature values (``data.impute``)
IMPUTE = ("none", "median")
#: the decimal marks of a CSV/TSV file's numbers (``data.decimal``)
DECIMAL_MARKS = (".", ",")
#: the thousands separators of a CSV/TSV file's numbers (``data.thousands``)
THOUSANDS_MARKS = (",", ".", "'", " ")


@dataclass(frozen=True)
class TableOptions:
    """The ``data.*`` options that decide how a table is read (see ``TableDataModule``)."""

    target: tuple[str, ...]
    task: Task | None = None
    drop: tuple[str, ...] = ()
    split_column: str | None = None
    impute: str = "none"
    na_values: tuple[str, ...] = ()
    drop_missing_target: bool = False
    sep: str | None = None
    decimal: str = "."
    encoding: str = "utf-8"
    thousands: str | None = None

    @classmethod
    def from_config(
        cls,
        target: str | Sequence[str],
        task: str | None = None,
        drop: Sequence[str] | None = (),
        split_column: str | None = None,
        impute: str | None = "none",
        na_values: Sequence[str] | None = (),
        drop_missing_target: bool = False,
        sep: str | None = None,
        decimal: str | None = ".",
        encoding: str | None = "utf-8",
        thousands: str | None = None,
    ) -> TableOptions:
        """The options as ``data.*`` gives them, checked (a :class:`ConfigError` names the key)."""
        # data.target=3 (a column named 3) reaches here as an int
        targets = (str(target),) if isinstance(target, str | int | float) else tuple(str(t) for t in target)
        if not targets:
            raise ConfigError("data.target is empty: name the target column (data.target=label)")
        if not isinstance(drop_missing_target, bool):
            raise ConfigError(
                f"data.drop_missing_target={drop_missing_target!r} has the wrong type: use true or false"
            )
        decimal = check_choice("data.decimal", "." if decimal is None else str(decimal), DECIMAL_MARKS)
        if thousands is not None:
            thousands = check_choice("data.thousands", str(thousands), THOUSANDS_MARKS)
            if thousands == decimal:
                raise ConfigError(
                    f"data.thousands={thousands!r} is data.decimal too: a number's thousands separator and "
                    "decimal mark differ (e.g. \"data.thousands=','\" with data.decimal=.)"
                )
        return cls(
            target=targets,
            task=None if task is None else Task(check_choice("data.task", task, [t.value for t in Task])),
            drop=tuple(str(c) for c in (drop or ())),
            split_column=split_column,
            impute=check_choice("data.impute", "none" if impute is None else str(impute), IMPUTE),
            na_values=tuple(str(v) for v in (na_values or ())),
            drop_missing_target=drop_missing_target,
            sep=None if sep is None else "\t" if str(sep) in ("\\t", "tab") else str(sep),
            decimal=decimal,
            encoding=_encoding("utf-8" if encoding is None else str(encoding)),
            thousands=thousands,
        )

    def as_overrides(self) -> dict[str, Any]:
        """The options by their ``data.*`` names and override values."""
        target = self.target[0] if len(self.target) == 1 else list(self.target)
        return {
            "target": target,
            "task": None if self.task is None else self.task.value,
            "drop": list(self.drop),
            "split_column": self.split_column,
            "impute": self.impute,
            "na_values": list(self.na_values),
            "drop_missing_target": self.drop_missing_target,
            "sep": self.sep,
            "decimal": self.decimal,
            "encoding": self.encoding,
            "thousands": self.thousands,
        }


def _encoding(name: str) -> str:
    """``data.encoding``: a text encoding Python knows (``utf-8``, ``cp1252``, ``latin-1``, ...)."""
    try:
        codecs.lookup(name)
    except LookupError:
        raise ConfigError(
            f"data.encoding={name!r} is not a text encoding Python knows: e.g. utf-8, cp1252, latin-1"
        ) from None
    return name
