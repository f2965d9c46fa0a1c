"""Whether the Hugging Face hub may be asked for files (users have it; tests and CI do not)."""
import os

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def downloads_allowed(allow_download: bool | None = None) -> bool:
    """``allow_download`` if given, else True unless HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set."""
    if allow_download is not None:
        return allow_download
    return not any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in OFFLINE_VARIABLES)
