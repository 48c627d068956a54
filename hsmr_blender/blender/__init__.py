"""bpy builders: armature, keyframes, meshes, camera."""
