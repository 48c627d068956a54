"""bpy-free parts of the add-on: the result schema (vendored), rig maths, backend runner, file writers."""
