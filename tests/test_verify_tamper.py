"""A doctored certificate is refused, whatever it says about its own environment (#29).

Every upper bound is checked one-sided against the bound the verifier re-derives: a claim tighter by
more than float noise (``BOUND_NOISE_RTOL``) is refused naming the key and both numbers, a looser one
passes and says so. Other floats are compared to the verifier's own ``--rtol``; an edited or deleted
``environment`` is a note and loosens nothing. The token streams' sha256 is compared exactly.

The command line runs in this process (``verify_main``), so a traceback fails the test."""
import copy
import json
import shutil

import numpy as np
import pytest

from llm_bounds.certificate.certify import is_upper_bound
from llm_bounds.certificate.verify import BOUND_NOISE_RTOL, compare
from llm_bounds_cli.bound import bound_main
from llm_bounds_cli.verify import verify_main


@pytest.fixture(scope="module", autouse=True)
def derive_once():
    """Each doctored copy is re-derived as its original: ``certify`` depends only on the config and
    the message, which no case here edits, so the derivation is done once and reused (the rest of
    ``verify``, the hash, data and stream checks included, runs every time)."""
    import llm_bounds.certificate.verify as verify_module

    real, done = verify_module.certify, {}

    def certify_once(ctx, message, progress=True, folder=None):
        key = (json.dumps(ctx.cfg.to_dict(), sort_keys=True, default=str), message)
        if key not in done:
            done[key] = real(ctx, message, progress=progress, folder=folder)
        return copy.deepcopy(done[key])

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(verify_module, "certify", certify_once)
        yield


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A small smoke certificate written here (this host's environment), with a document sample."""
    d = tmp_path_factory.mktemp("tamper")
    rng = np.random.default_rng(1)
    words = "and the lord spake unto moses saying speak unto the children of israel".split()
    (d / "corpus.txt").write_text("\n\n".join(" ".join(rng.choice(words, 150)) for _ in range(24)))
    out = d / "run"
    assert bound_main(["--preset", "smoke", "--max-steps", "6", "--n-samples", "16", "--n-documents", "4",
                       "--heldout-samples", "4", "--quiet", "--dataset", str(d / "corpus.txt"), "--separator", "\\n\\n",
                       "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def rederived(run_folder):
    """The certificate as the verifier re-derives it (its JSON values)."""
    from llm_bounds.certificate.verify import verify

    result = verify(run_folder, progress=False)
    assert result.problems == [] and result.looser == []
    return result.derived


def doctored(run_folder, tmp_path, edit) -> str:
    folder = tmp_path / "doctored"
    shutil.copytree(run_folder, folder)
    cert = json.loads((folder / "certificate.json").read_text())
    edit(cert)
    (folder / "certificate.json").write_text(json.dumps(cert, indent=1))
    return str(folder / "certificate.json")


def lower(*keys, by):
    def edit(cert):
        for k in keys:
            cert[k] *= 1 - by
    return edit


def test_the_untouched_certificate_verifies_and_prints_the_verifiers_bounds(run_folder, capsys):
    assert verify_main([str(run_folder / "certificate.json"), "--quiet"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    cert = json.loads((run_folder / "certificate.json").read_text())
    assert out[-1] == "verified"
    assert any(line.strip().startswith(f"token level: {cert['bound_bpd']:.6f} bits per token = "
                                       f"{cert['bound_bits_per_byte']:.6f} bits per byte") for line in out), out
    assert any(line.strip().startswith(f"document level: {cert['doc_bound_bpd']:.6f} bits per token") for line in out)


CASES = {  # the reported doctorings (#29): each verified before, exit 0
    "0.5e-4 lower, torch version edited": (5e-5, lambda c: c["environment"]["versions"].update(torch="2.0.0")),
    "0.5e-4 lower, environment deleted": (5e-5, lambda c: c.pop("environment")),
    "0.9e-4 lower, environment deleted": (9e-5, lambda c: c.pop("environment")),
    "0.9e-6 lower, same environment": (9e-7, lambda c: None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_tighter_bound_is_refused_whatever_the_environment_says(run_folder, tmp_path, capsys, case):
    by, env_edit = CASES[case]
    cert = json.loads((run_folder / "certificate.json").read_text())

    def edit(c):
        lower("bound_bpd", "bound_bits_per_byte", by=by)(c)
        env_edit(c)

    assert verify_main([doctored(run_folder, tmp_path, edit), "--quiet"]) == 1
    captured = capsys.readouterr()
    mismatches = [line for line in captured.err.splitlines() if line.startswith("verify.py: mismatch: ")]
    for key in ("bound_bpd", "bound_bits_per_byte"):
        line = next(line for line in mismatches if line.startswith(f"verify.py: mismatch: {key}: "))
        assert repr(cert[key] * (1 - by)) in line and repr(cert[key]) in line and "tighter than" in line, line
    assert len(mismatches) == 2, mismatches  # nothing else was touched
    assert "not verified (2 mismatches)" in captured.err
    assert "verified" not in captured.out.splitlines()[-1]
    if case != "0.9e-6 lower, same environment":
        assert "another environment" in captured.err and "nothing is loosened" in captured.err


def test_a_looser_bound_passes_and_says_so(run_folder, tmp_path, capsys):
    def edit(c):
        c["bound_bpd"] *= 1 + 1e-3
    assert verify_main([doctored(run_folder, tmp_path, edit), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().splitlines()[-1].startswith("verified (1 upper bound claimed looser than re-derived")
    assert "note: bound_bpd: the certificate claims" in captured.err and "looser than the" in captured.err


def test_other_floats_use_the_verifiers_tolerance_not_the_certificates_environment(run_folder, tmp_path, capsys):
    def edit(c):
        c["empirical_bpd"] *= 1 + 1e-5  # within the 1e-4 that a deleted environment used to allow
        c.pop("environment")
    path = doctored(run_folder, tmp_path, edit)
    assert verify_main([path, "--quiet"]) == 1
    assert "mismatch: empirical_bpd: certificate says" in capsys.readouterr().err
    assert verify_main([path, "--quiet", "--rtol", "1e-4"]) == 0  # the verifier may choose a looser one


def test_the_token_streams_are_compared_exactly(run_folder, tmp_path, capsys):
    def edit(c):
        c["token_stream_sha256"]["heldout"] = "0" * 64
    assert verify_main([doctored(run_folder, tmp_path, edit), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the heldout token stream here differs from the certified one" in err[0], err
    # a certificate written before the key existed still verifies, with a note naming it
    assert verify_main([doctored(run_folder, tmp_path / "old", lambda c: c.pop("token_stream_sha256")), "--quiet"]) == 0
    assert "written before these keys existed: token_stream_sha256" in capsys.readouterr().err


def paths(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, f"{path}.{k}".lstrip("."))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, f"{path}[{i}]")
    else:
        yield path, value


def set_path(cert, path, value):
    *parents, last = path.replace("[", ".[").split(".")
    node = cert
    for part in parents:
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    node[int(last[1:-1]) if last.startswith("[") else last] = value


def test_every_upper_bound_of_a_certificate_is_checked_one_sided(rederived):
    bounds = [(p, v) for p, v in paths(rederived) if is_upper_bound(p) and isinstance(v, float)]
    named_like_one = [p for p, v in paths(rederived) if isinstance(v, float)
                      and any(w in p.rsplit(".", 1)[-1] for w in ("bound", "ucb"))]
    assert set(named_like_one) <= {p for p, _ in bounds}  # no bound key escapes the one-sided check
    assert {"decomposition[2].bits_per_byte", "terms.document.top10.bound"} <= {p for p, _ in bounds}
    for path, value in bounds:
        for factor, refused in ((1 - 9e-7, True), (1 - BOUND_NOISE_RTOL / 50, False), (1 + 1e-3, False)):
            claimed = copy.deepcopy(rederived)
            set_path(claimed, path, value * factor)
            looser = []
            problems = compare(claimed, rederived, 1e-6, looser=looser)
            assert bool(problems) == (refused and value != 0), (path, factor, problems)
            assert all(p.startswith(f"{path}: ") for p in problems)
            assert bool(looser) == (factor > 1 and value != 0), (path, factor, looser)


def test_a_non_finite_bound_is_refused(rederived):
    for bad in (float("nan"), float("-inf")):
        claimed = copy.deepcopy(rederived)
        claimed["bound_bpd"] = bad
        assert compare(claimed, rederived, 1e-6) != []


def test_the_hoeffding_figure_is_informational(run_folder):
    cert = json.loads((run_folder / "certificate.json").read_text())
    assert "bound_bpd_hoeffding" in cert["claims"]["not_counted"]
    assert "not one of the 8 reported claims" in cert["claims"]["not_counted"]
    assert not any("hoeffding" in c.lower() for c in cert["claims"]["claims"])
    summary = (run_folder / "summary.md").read_text()
    line = next(line for line in summary.splitlines() if "Hoeffding in every term" in line)
    assert line.startswith("- informational, not a claim:") and "not one of the 8 reported bounds" in line


def test_the_stream_hash_is_of_the_ids_whatever_dtype_holds_them(run_folder):
    import hashlib

    from llm_bounds.data.corpus import token_stream_sha256

    ids = np.random.default_rng(0).integers(0, 60000, size=3_000_001)
    expected = hashlib.sha256(ids.astype("<u4").tobytes()).hexdigest()
    assert token_stream_sha256(ids.astype(np.uint16), chunk=1000) == expected == token_stream_sha256(ids.astype(np.uint32))
    assert token_stream_sha256(ids[:-1]) != expected
    cert = json.loads((run_folder / "certificate.json").read_text())
    assert set(cert["token_stream_sha256"]) == {"train", "heldout"}
    assert all(len(h) == 64 for h in cert["token_stream_sha256"].values())
