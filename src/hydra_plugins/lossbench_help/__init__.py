"""A Hydra search-path plugin: ``lossbench-train hydra.searchpath=[...] --help`` lists the user's options.

Hydra composes a run's config with the command line's ``hydra.searchpath``, but ``--help`` lists the config
groups of its *base* search path, which that override does not reach. For lossbench's app only and only
with ``--help``/``-h``, this plugin appends the command line's ``hydra.searchpath`` entries to the base path,
so the help lists exactly the options a run with the same command line can choose.
"""

from __future__ import annotations

import sys

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.plugins.search_path_plugin import SearchPathPlugin


def command_line_searchpath(argv: list[str]) -> list[str]:
    """The entries of a ``hydra.searchpath=[...]`` override in ``argv`` (empty when there is none)."""
    overrides = [a for a in argv if a.startswith("hydra.searchpath=")]
    if not overrides:
        return []
    value = OverridesParser.create().parse_overrides(overrides[-1:])[0].value()
    return [str(v) for v in value] if isinstance(value, list) else []


class LossbenchHelpSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        argv = sys.argv[1:]
        if not {"--help", "-h"} & set(argv):
            return
        if not any(str(e.path).rstrip("/").endswith("lossbench/conf") for e in search_path.get_path()):
            return  # another Hydra app
        for path in command_line_searchpath(argv):
            search_path.append(provider="hydra.searchpath in command-line", path=path)
