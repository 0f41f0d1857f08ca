"""The W&B mode a run logs in, chosen before ``wandb.init`` (which would otherwise prompt for a login or
wait for an unreachable server): online only with credentials and a server that answers."""

from __future__ import annotations

import configparser
import http.client
import logging
import netrc
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from lossbench.errors import ConfigError, check_choice

log = logging.getLogger(__name__)

WANDB_MODES = ("auto", "online", "offline", "disabled")


def wandb_credentials_present() -> bool:
    """True when an API key is in the environment or ``~/.netrc`` has an entry for the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def _wandb_url() -> str:
    return os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"


def _wandb_host() -> tuple[str, int]:
    url = urlparse(_wandb_url())
    return url.hostname or "api.wandb.ai", url.port or (80 if url.scheme == "http" else 443)


def wandb_reachable(timeout: float = 3.0) -> bool:
    """True when the W&B server at ``WANDB_BASE_URL`` answers an HTTP request within ``timeout`` seconds.

    Any HTTP response counts, an error status (401, 404, 5xx) too: the server answers. A refused or silent
    connection (a server or proxy that accepts TCP and never answers), a TLS failure or anything that is
    not HTTP does not.
    """
    request = urllib.request.Request(_wandb_url(), method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, http.client.HTTPException, ValueError):  # URLError and TimeoutError are OSErrors
        return False


def wandb_settings_files() -> list[Path]:
    """W&B's settings files, in the order W&B lets them win: the working directory's ``wandb/settings``
    (``.wandb/settings`` where ``.wandb`` exists), then the global ``$WANDB_CONFIG_DIR/settings``
    (``~/.config/wandb/settings``). ``wandb offline``, ``wandb disabled`` and ``wandb online`` write them."""
    local = Path(".wandb" if Path(".wandb").is_dir() else "wandb", "settings")
    config_dir = os.environ.get("WANDB_CONFIG_DIR")
    global_dir = Path(config_dir).expanduser() if config_dir else Path.home() / ".config" / "wandb"
    return [local.absolute(), global_dir / "settings"]


def wandb_settings_mode() -> tuple[str, Path] | None:
    """The ``mode`` under ``[default]`` of the first of :func:`wandb_settings_files` that sets one, and that
    file; None when none does. A file that cannot be read or parsed sets nothing, as in W&B."""
    for path in wandb_settings_files():
        parser = configparser.ConfigParser()
        try:
            parser.read(path, encoding="utf-8")  # a missing file reads as empty
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        if mode := parser.get("default", "mode", fallback="").strip():
            return mode, path
    return None


def offline_run_glob(save_dir: str | Path | None) -> str:
    """The offline W&B runs under ``save_dir`` (W&B's ``dir``; None: the working directory) as ``wandb sync``
    takes them: ``<save_dir>/wandb/offline-run-*``."""
    return str(Path(save_dir or ".") / "wandb" / "offline-run-*")


def resolve_wandb_mode(requested: str, save_dir: str | Path | None = None) -> str:
    """Choose the W&B mode before ``wandb.init`` so that it never prompts or waits for a login.

    ``WANDB_MODE`` in the environment overrides the config. ``auto`` takes ``offline`` or ``disabled`` from
    W&B's settings files (:func:`wandb_settings_mode`: ``wandb offline``, ``wandb disabled``); otherwise it
    means online when credentials exist and the server answers within seconds, else offline. ``online``
    without credentials or without a reachable server falls back to offline with a warning, so no metric
    is lost; the warning names the offline runs under ``save_dir`` (W&B's ``dir``) to upload.
    """
    own = "offline" if requested == "dryrun" else requested  # W&B's old name of offline
    check_choice("logger.wandb.mode", own, WANDB_MODES)  # checked also where WANDB_MODE overrides it
    from_env = os.environ.get("WANDB_MODE") or None  # an empty WANDB_MODE= means unset, as in W&B
    requested = from_env or requested
    if requested == "dryrun":
        requested = "offline"
    if from_env is not None and requested not in WANDB_MODES:
        raise ConfigError(
            f"WANDB_MODE={from_env} in the environment is not a W&B mode: unset it or set one of "
            f"{', '.join(WANDB_MODES)}"
        )
    if requested == "auto" and from_env is None and (settings := wandb_settings_mode()):
        mode, path = settings
        mode = "offline" if mode == "dryrun" else mode
        if mode in ("offline", "disabled"):
            log.info("W&B mode %s, as set in %s (logger.wandb.mode=auto follows it)", mode, path)
            return mode
    if requested in ("offline", "disabled"):
        return requested
    if not wandb_credentials_present():
        if requested == "online":
            log.warning("W&B online mode was asked for but no credentials were found: logging offline")
        return "offline"
    if not wandb_reachable():
        host, port = _wandb_host()
        log.warning(
            "W&B server %s:%d is unreachable: logging offline (upload later with `wandb sync %s`)",
            host,
            port,
            offline_run_glob(save_dir),
        )
        return "offline"
    return "online"
