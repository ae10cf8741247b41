"""Real client programs against the server."""

import subprocess

import pytest


@pytest.mark.parametrize("pipeline", [False, True], ids=["plain", "pipelined"])
def test_swaks(postern, pipeline):
    p = postern.start()
    argv = ["swaks", "--server", "127.0.0.1:%d" % p.port, "--helo", "client.example.test",
            "--from", "swaks@client.example.test", "--to", "mailtest@example.test",
            "--header", "Subject: swaks test", "--body", "hello from swaks"]
    if pipeline:
        argv.append("--pipeline")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<-  250 2.0.0 Ok: queued as " in r.stdout, r.stdout
    (msg,) = p.wait_mbox("mailtest")
    assert b"\nReturn-Path: <swaks@client.example.test>\n" in msg
    assert b"\nSubject: swaks test\n" in msg
    assert b"\n\nhello from swaks\n" in msg, msg[-200:]
