"""The contract between the HSMR backend and the Blender add-on: pure Python + numpy (no torch, no bpy).

- ``dofs``: SKEL's kinematic tree and its 46 DoFs (the single DoF table).
- ``result_format``: the result file's schema (``FIELDS``), ``save`` / ``load`` and ``atomic_write``;
  ``meta``: ``Meta``, the typed ``meta_json``.
- ``protocol``: the JSON-lines protocol of the backend child process.
- ``rotations``: numpy rotation maps; ``kinematics``: SKEL's joint rotations and chains in numpy.
- ``export``: OpenSim ``.mot`` / ``.trc``, CSV and virtual markers from a result.
"""

__version__ = "0.1.0"
