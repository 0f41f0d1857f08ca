"""Problems found in a user's table, collected and raised as one error with one line of overrides.

Each :class:`Problem` says what is wrong, how to fix it in words, and which overrides fix it (columns added
to or removed from ``data.drop``, markers added to ``data.na_values``, options set such as
``data.impute=median``). :class:`Problems` gathers them while a table is checked and raises them together:
one problem as ``<table>: <what>: <how>``; several as a numbered list followed by the one line of
overrides that fixes all of them, e.g. ``data.drop=[id,name] data.impute=median``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lossbench.errors import ConfigError, DataError

#: fix keys that add entries to a list option (``undrop`` removes entries from ``data.drop``)
LIST_KEYS = ("drop", "na_values")
_PLAIN = re.compile(r"[\w.?/+\-]+")
#: the notes already said in this process (see :func:`note`)
_SAID: set[str] = set()


def note(logger: logging.Logger, level: int, message: str, *args: Any) -> None:
    """Log a note about a table once per process: a table is checked before torch loads and again when its
    data module is set up, and a note said at the first check is not repeated at the second."""
    text = message % args if args else message
    if text not in _SAID:
        _SAID.add(text)
        logger.log(level, text)


def plain(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds (``np.int64(1)`` → ``1``); other values unchanged."""
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 0) == 0 else value


def override_value(value: Any) -> str:
    """``value`` as the right-hand side of a Hydra override: lists in brackets, odd text quoted."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    text = str(value)
    if _PLAIN.fullmatch(text) and not _parses_as_other(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _parses_as_other(text: str) -> bool:
    """Hydra would read ``text`` unquoted as a number, a boolean or null."""
    if text.lower() in ("true", "false", "null"):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a table.

    Attributes:
        text: what is wrong, e.g. ``feature column 'age' has 3 missing or infinite values``.
        advice: how to fix it, in words; shown when it is the only problem or when no override fixes it.
        fix: the overrides that fix it: ``drop``/``na_values`` list entries to add, ``undrop`` entries to
            remove from ``data.drop``, any other key an option to set (``{"impute": "median"}``).
        config: the options contradict each other (a ``ConfigError``) rather than the data being unusable.
    """

    text: str
    advice: str = ""
    fix: Mapping[str, Any] = field(default_factory=dict)
    config: bool = False


class Problems:
    """The problems of one table, raised together by :meth:`raise_if_any`.

    Args:
        where: the table in messages, e.g. ``table my.csv``.
        options: the ``data.*`` options as the user set them (at least ``drop`` and ``na_values``), so the
            fix line keeps the user's list entries and names only options that change.
    """

    def __init__(self, where: str, options: Mapping[str, Any]) -> None:
        self.where = where
        self.options = options
        self.items: list[Problem] = []

    def add(self, text: str, advice: str = "", *, config: bool = False, **fix: Any) -> None:
        """Record a problem: ``fix`` as in :attr:`Problem.fix`."""
        self.items.append(Problem(text, advice, fix, config))

    def __len__(self) -> int:
        return len(self.items)

    def fix_line(self) -> str:
        """The overrides that fix every problem that an override can fix, e.g. ``data.drop=[a,b]``; one
        with a quoted value in double quotes, so the shell passes its quotes on to Hydra
        (``"data.decimal=','"``)."""
        lists: dict[str, list[Any]] = {key: list(self.options.get(key) or ()) for key in LIST_KEYS}
        settings: dict[str, Any] = {}
        for problem in self.items:
            for key, value in problem.fix.items():
                if key == "undrop":
                    lists["drop"] = [c for c in lists["drop"] if c not in value]
                elif key in LIST_KEYS:
                    lists[key] += [v for v in value if v not in lists[key]]
                else:
                    settings.setdefault(key, value)
        parts = [
            f"data.{key}={override_value(values)}"
            for key, values in lists.items()
            if values != list(self.options.get(key) or ())
        ]
        parts += [
            f"data.{key}={override_value(value)}"
            for key, value in settings.items()
            if override_value(value) != override_value(self.options.get(key))
        ]
        return " ".join(f'"{part}"' if "'" in part and not set('"$`') & set(part) else part for part in parts)

    def message(self) -> str:
        """All problems in one message, ending with the one fix line when there are several."""
        if len(self.items) == 1:
            only = self.items[0]
            return f"{self.where}: {only.text}" + (f": {only.advice}" if only.advice else "")
        entries = [p.text if p.fix or not p.advice else f"{p.text} ({p.advice})" for p in self.items]
        text = f"{self.where}: {len(entries)} problems: " + "; ".join(
            f"({i}) {entry}" for i, entry in enumerate(entries, 1)
        )
        line = self.fix_line()
        if line:
            every = all(p.fix for p in self.items)
            text += f". Fix {'them all' if every else 'the others'} with: {line}"
        return text

    def raise_if_any(self) -> None:
        """Raise one ``DataError`` naming every problem (a ``ConfigError`` when all are option clashes)."""
        if not self.items:
            return
        error = ConfigError if all(p.config for p in self.items) else DataError
        raise error(self.message())


def listing(names: Sequence[Any], limit: int = 20) -> str:
    """``a, b, c`` with at most ``limit`` names shown (``… and N more``)."""
    shown = ", ".join(str(plain(n)) for n in names[:limit])
    return shown + (f" … and {len(names) - limit} more" if len(names) > limit else "")
