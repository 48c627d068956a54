"""The line protocol between the Blender add-on and the backend child process.

The backend writes one JSON object per line on stdout (``--progress json``); stderr is a free-form log.
No sockets. Pure Python (no numpy); the backend writes it and the add-on reads it.

Messages (every one has ``type``; unknown extra keys are ignored, wrong types are errors):
- ``hello``    first line: ``protocol`` (int), ``backend_version`` (str), optional ``device`` (str).
- ``progress`` ``stage`` (str), ``frame`` (int >= 0), ``total`` (int >= 0), optional ``fps`` (number).
- ``log``      ``level`` ("info" | "warning"), ``message`` (str).
- ``done``     ``result`` (str path), optional ``outputs`` (list of str paths).
- ``error``    ``message`` (str): one line saying what is wrong and what to do.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 65536


class ProtocolError(ValueError):
    """A line that is not a valid protocol message."""


_REQUIRED: dict[str, dict[str, tuple[type, ...]]] = {
    "hello": {"protocol": (int,), "backend_version": (str,)},
    "progress": {"stage": (str,), "frame": (int,), "total": (int,)},
    "log": {"level": (str,), "message": (str,)},
    "done": {"result": (str,)},
    "error": {"message": (str,)},
}
_OPTIONAL: dict[str, dict[str, tuple[type, ...]]] = {
    "hello": {"device": (str,)},
    "progress": {"fps": (int, float)},
    "log": {},
    "done": {"outputs": (list,)},
    "error": {},
}


@dataclass(frozen=True)
class Message:
    type: str
    fields: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


def _typed(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # bool is an int subclass; never accept it as a number
        return False
    if not isinstance(value, types):
        return False
    return not (isinstance(value, float) and not math.isfinite(value))


def encode(type_: str, **fields: Any) -> str:
    """One protocol line (without the newline); validates what it writes."""
    line = json.dumps({"type": type_, **fields}, separators=(",", ":"), allow_nan=False)
    parse_line(line)
    return line


def parse_line(line: str | bytes) -> Message:
    """Validate one line; raise ProtocolError saying what is wrong."""
    if isinstance(line, bytes):
        if len(line) > MAX_LINE_BYTES:
            raise ProtocolError(f"protocol line longer than {MAX_LINE_BYTES} bytes")
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("protocol line is not UTF-8") from None
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError(f"protocol line longer than {MAX_LINE_BYTES} bytes")
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        raise ProtocolError(f"not a JSON protocol line: {line[:80]!r}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("protocol line is not a JSON object")
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in _REQUIRED:
        raise ProtocolError(f"unknown protocol message type {kind!r:.40}")
    fields: dict[str, Any] = {}
    for key, types in _REQUIRED[kind].items():
        if key not in obj:
            raise ProtocolError(f"{kind} message lacks {key!r}")
        if not _typed(obj[key], types):
            raise ProtocolError(f"{kind} message has a bad {key!r}")
        fields[key] = obj[key]
    for key, types in _OPTIONAL[kind].items():
        if key in obj:
            if not _typed(obj[key], types):
                raise ProtocolError(f"{kind} message has a bad {key!r}")
            fields[key] = obj[key]
    if kind == "progress" and (fields["frame"] < 0 or fields["total"] < 0):
        raise ProtocolError("progress message has a negative count")
    if kind == "log" and fields["level"] not in ("info", "warning"):
        raise ProtocolError("log message has an unknown level")
    if kind == "done" and not all(isinstance(p, str) for p in fields.get("outputs", [])):
        raise ProtocolError("done message has a bad 'outputs'")
    return Message(kind, fields)


def check_hello(msg: Message) -> None:
    """The handshake: the first message must be a hello of a protocol version we speak."""
    if msg.type != "hello":
        raise ProtocolError(f"backend did not start with a hello (got {msg.type!r})")
    if msg["protocol"] != PROTOCOL_VERSION:
        raise ProtocolError(
            f"backend speaks protocol {msg['protocol']}, the add-on speaks {PROTOCOL_VERSION}: "
            "update the backend environment from the add-on preferences"
        )
