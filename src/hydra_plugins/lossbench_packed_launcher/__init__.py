"""Hydra launcher plugins of lossbench: ``hydra/launcher=sequential`` (the default: Hydra's basic launcher
with each job composed once) and ``hydra/launcher=packed`` (a sweep's small jobs trained together as packed
models).

Hydra imports every module of the ``hydra_plugins`` namespace package when it looks for plugins, so the
modules here import only Hydra; lossbench, torch and Lightning load when a launcher launches.
"""
