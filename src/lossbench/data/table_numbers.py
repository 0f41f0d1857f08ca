"""Numbers written as text in a table column: decimal commas, thousands separators, mixed decimal marks.

A column of numbers written with a decimal comma (``3,5``) or with thousands separators (``73,073``,
``1.234,5`` where ``data.decimal=','``) is read as text, and one-hot encoding would make each number a
category; :func:`comma_decimal_problem` names the ``data.decimal`` or ``data.thousands`` that reads it.
"""

from __future__ import annotations

import re

import pandas as pd

from lossbench.data.table_problems import Problems

#: a number written with a decimal comma (``3,5``, ``-0,25``)
COMMA_DECIMAL = re.compile(r"[+-]?\d+,\d+")
#: a number with a comma between each three digits (``73,073``, ``-1,234,567.5``): thousands separators
THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?")
#: a number with a point between each three digits and a decimal comma (``1.234,5``, ``-73.073``): thousands
#: separators where ``data.decimal=','``
POINT_THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2}(?:\.\d{3})+(?:,\d+)?")
#: such a number that a decimal point cannot have written: a decimal comma, or more than one point
POINT_THOUSANDS_ONLY = re.compile(r"[+-]?[1-9]\d{0,2}(?:(?:\.\d{3})+,\d+|(?:\.\d{3}){2,})")
#: a number written with a decimal point (``3.5``, ``-.25``, ``1.5e3``)
POINT_DECIMAL = re.compile(r"[+-]?\d*\.\d+(?:[eE][+-]?\d+)?")


def point_thousands_problem(what: str, text: pd.Series, problems: Problems) -> bool:
    """Record a problem when the column ``what``, read with ``data.decimal=','``, is text ``text`` at least
    90% numbers, some with points between each three digits; whether it is. Such points separate thousands
    when some value could not hold a decimal point (``1.234,5``, ``1.234.567``): ``data.thousands=.``, or
    the file to fix where others hold one (``0.5``). Values a decimal point may have written (``3.185``)
    are decimal points beside ordinary ones (``1.5``: left to :func:`comma_decimal_problem`), and either
    alone (``1.234``, ``12.345``, ``999``)."""
    points = text.str.fullmatch(POINT_THOUSANDS)
    if not points.any():
        return False
    decimal_points = text.str.fullmatch(POINT_DECIMAL) & ~points
    numbers = points | decimal_points | text.str.fullmatch(COMMA_DECIMAL)
    if (numbers | pd.to_numeric(text, errors="coerce").notna()).mean() < 0.9:
        return False
    shown = ", ".join(map(repr, list(dict.fromkeys(text[points]))[:3]))
    if not text.str.fullmatch(POINT_THOUSANDS_ONLY).any():
        if decimal_points.any():
            return False
        problems.add(
            f"{what} holds numbers written with a point between each three digits ({shown})",
            "if the points separate thousands set data.thousands=., if they are decimal points leave "
            "data.decimal out",
        )
        return True
    if decimal_points.any():
        stray = ", ".join(map(repr, list(dict.fromkeys(text[decimal_points]))[:3]))
        problems.add(
            f"{what} holds numbers written with thousands separators ({shown}) and "
            f"{int(decimal_points.sum())} with a decimal point ({stray})",
            "write those with a decimal comma in the file, then read the column with data.thousands=.",
        )
        return True
    problems.add(
        f"{what} holds numbers written with thousands separators ({shown})",
        "read them as numbers with data.thousands=.",
        thousands=".",
    )
    return True


def comma_decimal_problem(what: str, present: pd.Series, problems: Problems) -> bool:
    """Record a problem when the column ``what`` (``column 'x'``, ``target column 'y'``) is text whose values
    ``present`` are at least 90% numbers and mix decimal marks or hold thousands separators; whether it is.
    Numbers whose commas all separate thousands (``73,073``, ``1,234.5``) are read by
    ``data.thousands=','``; numbers with a decimal comma (``3,5``) and none with a point are read by
    ``data.decimal=','``; a few commas among points are cells to fix in the file; points in a file read with
    ``data.decimal=','`` are left as text by it, unless they separate thousands (``1.234,5``: read by
    ``data.thousands=.``)."""
    text = present.astype(str).str.strip()
    if problems.options.get("decimal") == "," and point_thousands_problem(what, text, problems):
        return True
    thousands = text.str.fullmatch(THOUSANDS)
    comma = text.str.fullmatch(COMMA_DECIMAL)
    point = text.str.fullmatch(POINT_DECIMAL)
    numbers = thousands | comma | point | pd.to_numeric(text, errors="coerce").notna()
    if not len(text) or numbers.mean() < 0.9 or not (thousands.any() or comma.any() or point.any()):
        return False
    if thousands.any() and not (comma & ~thousands).any():
        shown = list(dict.fromkeys(text[thousands]))[:3]
        problems.add(
            f"{what} holds numbers written with thousands separators ({', '.join(map(repr, shown))})",
            "read them as numbers with \"data.thousands=','\" (quoted as shown, for the shell)",
            thousands=",",
        )
        return True
    commas = list(dict.fromkeys(text[comma]))
    read_with_comma = problems.options.get("decimal") == ","
    if not point.any():
        if read_with_comma:
            return False
        problems.add(
            f"{what} holds numbers written with a decimal comma ({commas[0]!r})",
            "read them as numbers with \"data.decimal=','\" (quoted as shown, for the shell)",
            decimal=",",
        )
    elif commas:
        problems.add(
            f"{what} holds numbers written with a decimal point ({text[point].iloc[0]!r}) and "
            f"{int(comma.sum())} with a decimal comma ({', '.join(repr(c) for c in commas[:3])})",
            "write those with a decimal point in the file",
        )
    elif read_with_comma:
        problems.add(
            f"{what} holds numbers written with a decimal point ({text[point].iloc[0]!r}), which "
            "data.decimal=',' leaves as text",
            "leave data.decimal out (its default is '.')",
            decimal=".",
        )
    else:
        return False
    return True
