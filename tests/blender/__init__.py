"""Tests of the add-on (hsmr_blender), most against the bpy wheel."""
