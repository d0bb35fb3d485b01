"""``webvid demo-site`` as a user runs it: a real process, a real port, Ctrl-C to stop."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from click.testing import CliRunner

from webvid.cli import cli
from webvid.errors import WebvidError


def test_demo_site_command_serves_until_ctrl_c(tmp_path):
    env = {**os.environ, "WEBVID_NO_PROGRESS": "1", "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "webvid.cli", "-q", "demo-site", "--port", "0", "--clips", "6"]
    cmd += ["--images", "3", "--seed", "4", "--cache-dir", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        deadline, url = time.monotonic() + 60, None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, f"exited early: {proc.stderr.read() if proc.stderr else ''}"
            m = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            url = m.group(1) if m else None
        assert url is not None
        with urllib.request.urlopen(url + "/robots.txt", timeout=10) as r:
            assert b"Disallow: /private/" in r.read()
        with urllib.request.urlopen(url + "/_truth.json", timeout=10) as r:
            doc = json.load(r)
        assert doc["config"]["seed"] == 4
        assert [t["kind"] for t in doc["items"]] == ["video"] * 6 + ["image"] * 3
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0 and "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_demo_site_help_lists_its_options():
    result = CliRunner().invoke(cli, ["demo-site", "--help"])
    assert result.exit_code == 0
    for option in ("--port", "--clips", "--seed", "--no-faults", "--host", "--cache-dir"):
        assert option in result.output


def test_port_in_use_is_one_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["demo-site", "--port", str(port), "--clips", "1", "--images", "0"]
        result = CliRunner().invoke(cli, [*args, "--cache-dir", str(tmp_path)])
    assert isinstance(result.exception, WebvidError)
    assert f"cannot listen on 127.0.0.1:{port}" in str(result.exception)
