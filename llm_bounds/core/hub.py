"""Whether the Hugging Face hub may be asked for files (users have it; tests and CI do not), and
:func:`quiet_transformers`, which keeps the Hugging Face libraries' chatter out of a run's output.

Asking an unreachable hub costs minutes of retries inside huggingface_hub. So before the first
request, one TCP connection to the hub is tried with a short timeout; when it fails, the hub is
treated as offline for the rest of the process, and the caller's error names the local fix.
"""
from __future__ import annotations

import os
import socket
import warnings
from contextlib import contextmanager
from urllib.parse import urlparse

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
PROBE_TIMEOUT_S = 3.0
_reachable: dict[str, bool] = {}


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when a TCP connection to the hub (``HF_ENDPOINT``, default huggingface.co) opens
    within ``timeout`` seconds; remembered for the process."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    key = f"{host}:{port}"
    if key not in _reachable:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                _reachable[key] = True
        except OSError:
            _reachable[key] = False
    return _reachable[key]


def cached_snapshot(repo_id: str) -> str | None:
    """The local hub cache's snapshot folder of ``repo_id``, or None when it is not cached (or not
    a valid repo id). Never touches the network."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id=repo_id, local_files_only=True)
    except Exception:  # not cached, or not even a valid repo id
        return None


def downloads_allowed(allow_download: bool | None = None) -> bool:
    """``allow_download`` if given; else False when HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set
    or the hub cannot be reached (:func:`hub_reachable`), True otherwise."""
    if allow_download is not None:
        return allow_download
    if any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in OFFLINE_VARIABLES):
        return False
    return hub_reachable()


@contextmanager
def quiet_transformers(show_progress: bool = False):
    """Silence transformers while loading: log messages below errors, Python warnings and, unless
    ``show_progress``, its progress bars (e.g. the GGUF reader's, one step per tensor, with an
    ETA); restores all three afterwards."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    if show_progress:
        hf_logging.enable_progress_bar()
    else:
        hf_logging.disable_progress_bar()
    # the GGUF reader draws its own tqdm bar, outside transformers' switch: silence it the same way
    try:
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:  # a transformers without GGUF support
        gguf_utils = None
    gguf_bar = getattr(gguf_utils, "tqdm", None)
    if gguf_bar is not None and not show_progress:
        gguf_utils.tqdm = lambda iterable, *args, **kwargs: iterable
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if gguf_bar is not None:
            gguf_utils.tqdm = gguf_bar
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
        else:
            hf_logging.disable_progress_bar()


@contextmanager
def hub_offline_unless_reachable():
    """Inside this block, ``datasets`` and ``huggingface_hub`` do not ask the hub when
    :func:`downloads_allowed` says no: they read the local cache or fail at once, instead of
    retrying an unreachable host for half a minute. Restores their settings afterwards."""
    if downloads_allowed():
        yield
        return
    import huggingface_hub.constants as hub_constants

    modules = [hub_constants]
    try:
        import datasets.config as datasets_config

        modules.append(datasets_config)
    except ImportError:
        pass
    saved = [m.HF_HUB_OFFLINE for m in modules]
    for m in modules:
        m.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        for m, value in zip(modules, saved):
            m.HF_HUB_OFFLINE = value
