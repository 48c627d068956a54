"""HSMR for Blender: footage of a person in, an animated SKEL skeleton (24 bones, 46 DoFs, limits) out.

Blender extension entry point. Imports of bpy happen inside ``register`` (and in the modules it loads) so the
bpy-free ``hsmr_blender.io`` package stays importable anywhere. Relative imports only (extension rule).
"""

from __future__ import annotations

_registered: list[object] = []


def register() -> None:
    from . import cli_command, operators, panels, preferences, retarget_ui

    for mod in (preferences, operators, panels, retarget_ui):
        mod.register()
        _registered.append(mod)
    cli_command.register()
    _registered.append(cli_command)


def unregister() -> None:
    while _registered:
        mod = _registered.pop()
        mod.unregister()  # type: ignore[attr-defined]
