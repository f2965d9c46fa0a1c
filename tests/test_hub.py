"""Offline means offline, fast: an unreachable hub is detected by one short connection attempt,
and a command that needs files this machine lacks fails with one line naming the fix."""
import os
import socket
import subprocess
import sys
from pathlib import Path

from llm_bounds.core import hub

ROOT = Path(__file__).resolve().parents[1]


def test_probe_sees_a_listening_port_and_a_closed_one(monkeypatch):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    monkeypatch.setattr(hub, "_reachable", {})
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    assert hub.hub_reachable(timeout=2)
    server.close()
    monkeypatch.setattr(hub, "_reachable", {})
    assert not hub.hub_reachable(timeout=2)


def test_offline_variables_and_an_unreachable_hub_forbid_downloads(monkeypatch):
    monkeypatch.setattr(hub, "_reachable", {})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not hub.downloads_allowed()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    assert not hub.downloads_allowed()
    assert hub.downloads_allowed(True)


def test_missing_pretrained_weights_fail_at_once_with_the_fix(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in hub.OFFLINE_VARIABLES}
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"
    env["HF_HOME"] = str(tmp_path / "hf")  # an empty cache
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "bound.py"), "--model", "gpt2", "--init",
                          "pretrained", "--preset", "smoke", "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "not available offline" in lines[0] and "--init scratch" in lines[0]
    assert not (tmp_path / "run").exists()
