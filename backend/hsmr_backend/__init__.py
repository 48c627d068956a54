"""HSMR for Blender — inference backend (never imports bpy)."""

__version__ = "0.1.0"
