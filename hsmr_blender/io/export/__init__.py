"""Byte-identical copies of the backend's numpy-only biomechanics writers (``hsmr_backend/export``): csv, mot,
opensim_map, kinematics. The add-on cannot import the backend; a test keeps the copies equal."""
