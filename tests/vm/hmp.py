"""Send commands to a QEMU human monitor (HMP) on a unix socket and print the replies.

    python3 tests/vm/hmp.py SOCKET COMMAND [COMMAND...]

Each COMMAND is one monitor line, for example "system_reset" or "info status". The replies are
printed without the echo of the command and without the prompt. Exit 1 when the socket cannot be
reached.
"""

from __future__ import annotations

import socket
import sys
import time

PROMPT = b"(qemu) "


def _read_until_prompt(sock, timeout):
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(PROMPT):
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if time.monotonic() > deadline:
            break
    return data


def _clean(reply, command):
    text = reply.decode("utf-8", "replace").replace("\r", "")
    if text.endswith(PROMPT.decode()):
        text = text[: -len(PROMPT)]
    lines = [line for line in text.split("\n") if line.strip() and command not in line]
    # HMP echoes the command with terminal escapes: drop lines made of escapes only.
    return "\n".join(line for line in lines if not line.startswith("\x1b"))


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    path, commands = argv[1], argv[2:]
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
    except OSError as err:
        sys.stderr.write("hmp: cannot connect to %s: %s\n" % (path, err))
        return 1
    with sock:
        _read_until_prompt(sock, 10)
        for command in commands:
            sock.sendall(command.encode() + b"\n")
            try:
                reply = _read_until_prompt(sock, 30)
            except OSError:
                # "quit" closes the socket.
                reply = b""
            out = _clean(reply, command)
            if out:
                print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
