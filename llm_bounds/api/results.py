"""What the Python entry point returns: :class:`Certificate`, a run's certificate as an object, and
the verifier's verdict (:class:`~llm_bounds.certificate.verify.Verification`)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from llm_bounds.certificate.card import model_card
from llm_bounds.certificate.stages import RunFolder
from llm_bounds.certificate.summary import render_summary
from llm_bounds.certificate.supplied import Supplied, is_model_object
from llm_bounds.certificate.verify import Verification, verify as rederive
from llm_bounds.core.errors import BoundInputError, require


def verify_run(path, model=None, tokenizer=None, rtol: float = 1e-6, progress: bool = True) -> Verification:
    """Re-derive the certificate at ``path`` (a run's folder or its ``certificate.json``) with the
    same code the run used. ``model``/``tokenizer``: the objects a certificate of objects was
    computed with (refused by their hash when they are others). Bad input raises
    :class:`~llm_bounds.core.errors.BoundInputError` (one line); mismatches are in the verdict."""
    require(model is None or is_model_object(model),
            f"model= hands the verifier the model object a certificate was computed with; got a "
            f"{type(model).__name__} (a certificate of a named model needs no model=)")
    require(tokenizer is None or not isinstance(tokenizer, str),
            "tokenizer= hands the verifier the tokenizer object a certificate was computed with; a certificate "
            "names its own tokenizer: leave tokenizer= out")
    return rederive(path, rtol, progress, Supplied.of(model, tokenizer))


class Certificate:
    """A certificate a run wrote, read back from its folder (``path``).

    Every top-level key of ``certificate.json`` is an attribute: ``bound_bpd`` and
    ``bound_bits_per_byte`` (the certified token-level bound, in bits per token and per byte),
    ``empirical_bpd`` and ``empirical_bits_per_byte`` (the quantized model's smoothed loss on the
    sample), ``subsample_term_bpd``, ``complexity_term_bpd``, ``heldout_bpd``, ``heldout_bits_per_byte``,
    ``random_guess_bpd``, ``message_bits``, ``complexity_bits`` (K), ``delta``, ``alpha``, ``terms``
    (every term of every bound), ``decomposition``, ``claims``, ``tuning_charge``, ``weights``, ``data``,
    ``config``, and whatever else the certificate holds. ``summary()`` is ``summary.md``, ``card()``
    the model-card section, ``verify()`` the verifier's verdict; ``to_dict()`` the whole certificate.
    """

    def __init__(self, data: dict, path):
        self._data = data
        self.path = Path(path)

    @classmethod
    def load(cls, path) -> "Certificate":
        """The certificate in folder ``path`` (or the ``certificate.json`` file itself)."""
        path = Path(path)
        file = RunFolder(path).certificate if path.is_dir() else path
        require(file.is_file(), f"{file} does not exist; pass a run's folder (OUT of bound.py, out= of certify) or "
                                "its certificate.json")
        try:
            data = json.loads(file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BoundInputError(f"{file} is not valid JSON ({e}); it was damaged or is not a certificate") from None
        require(isinstance(data, dict) and "certificate_version" in data,
                f"{file} is not a certificate (no certificate_version)")
        return cls(data, file.parent)

    def __getattr__(self, name):
        data = self.__dict__.get("_data") or {}
        if name in data:
            return data[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}; its numbers are the keys of "
                             f"certificate.json ({', '.join(list(data)[:6])}, ...: see dir())")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._data))

    def to_dict(self) -> dict:
        """The whole certificate (a copy of ``certificate.json``'s dictionary)."""
        return copy.deepcopy(self._data)

    @property
    def message(self) -> bytes:
        """The message bytes (``message.bin``): the model, coded."""
        return RunFolder(self.path).message.read_bytes()

    def summary(self) -> str:
        """The Markdown of ``summary.md``."""
        file = RunFolder(self.path).summary
        return file.read_text() if file.is_file() else render_summary(self._data)

    def card(self, name: str | None = None) -> str:
        """The model-card section: YAML ``model-index`` metadata and Markdown (``llm-bounds card``)."""
        return model_card(self._data, str(self.path), name)

    def verify(self, model=None, tokenizer=None, rtol: float = 1e-6, progress: bool = True) -> Verification:
        """Re-derive this certificate (:func:`llm_bounds.verify`)."""
        return verify_run(self.path, model, tokenizer, rtol, progress)

    def __repr__(self) -> str:
        d = self._data
        return (f"Certificate({d.get('model')} on {d.get('dataset')}: bound {d.get('bound_bits_per_byte', 0):.4f} "
                f"bits per byte ({d.get('bound_bpd', 0):.4f} per token), path={str(self.path)!r})")

    def _repr_markdown_(self) -> str:  # a notebook shows the summary
        return self.summary()
