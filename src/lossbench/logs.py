"""What the console shows: each message once, Lightning's start-up chatter kept to the job's log file.

Lightning's top-level package attaches its own console handler to the ``lightning`` logger; once Hydra has
configured logging, its sub-packages also pass every message to the root handlers, so each one would
print twice. :func:`route_lightning_to_root` leaves the root's handlers (console and ``<job>.log``) alone
to print them. :class:`ConsoleFilter` (on Hydra's console handler, ``conf/hydra/default.yaml``) drops
Lightning's advertisement for its cloud logger (:class:`NoAdvertisements`, on the log file too), and,
inside a multirun, Lightning's other INFO lines ("GPU available", "Restoring states from ..."): they stay
in each job's log file.
:func:`print_config_tree` prints the composed config (``extras.print_config=true``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: messages that never reach the console (Lightning's tip about its cloud logging product)
_ADVERTISEMENTS = ("💡 Tip:",)


#: Lightning's loggers
LIGHTNING = ("lightning", "lightning.pytorch", "lightning.fabric")


@contextmanager
def only_warnings(names: tuple[str, ...] = LIGHTNING) -> Iterator[None]:
    """The loggers ``names`` at WARNING in the block (their INFO lines off: a packed group's Trainer, a
    tuning job), at their own levels again after."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def route_lightning_to_root() -> None:
    """Remove the ``lightning`` logger's own console handler when the root logger has handlers; with the
    root at DEBUG (``debug=default``), let Lightning's DEBUG lines through too (Lightning sets its logger to
    INFO when imported)."""
    root = logging.getLogger()
    if not root.handlers:
        return
    for name in LIGHTNING:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
        logger.propagate = True
        if root.level < logger.level:
            logger.setLevel(logging.NOTSET)  # the root's level, as every other library's logger


class NoAdvertisements(logging.Filter):
    """Drops Lightning's advertisement for its cloud logger (a Trainer without a logger prints it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(_ADVERTISEMENTS))


class ConsoleFilter(logging.Filter):
    """Console filter: no advertisements; in a multirun, Lightning's INFO lines only in the job's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("lightning"):
            return True
        if isinstance(record.msg, str) and record.msg.startswith(_ADVERTISEMENTS):
            return False
        return record.levelno > logging.INFO or not _in_multirun()


def _in_multirun() -> bool:
    from lossbench.config import in_multirun

    return in_multirun()


def print_config_tree(cfg: Any) -> None:
    """Print the composed config (without ``hydra``) as a Rich tree, one branch per top-level group."""
    from omegaconf import OmegaConf
    from rich import print as rich_print
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("config", guide_style="dim")
    for key in cfg:
        if key == "hydra":
            continue
        node = cfg[key]
        try:
            text = OmegaConf.to_yaml(node, resolve=True) if OmegaConf.is_config(node) else f"{node}\n"
        except Exception:  # an interpolation that resolves only at run time (e.g. monitor: null defaults)
            text = OmegaConf.to_yaml(node) if OmegaConf.is_config(node) else f"{node}\n"
        tree.add(str(key)).add(Syntax(text, "yaml", background_color="default"))
    rich_print(tree)


def process_rank() -> int:
    """This process's rank, from the first of the launchers' rank variables that is set (the ones
    Lightning's ``rank_zero_only`` reads), before Lightning is loaded; 0 without any."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


def rank_zero() -> bool:
    """Whether this is the rank 0 process (:func:`process_rank`)."""
    return process_rank() == 0
