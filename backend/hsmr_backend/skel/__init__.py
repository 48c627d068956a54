"""SKEL body model (and the open default body that shares its kinematics)."""

from __future__ import annotations

from pathlib import Path

from hsmr_contract import dofs  # noqa: F401  (``from hsmr_backend.skel import dofs`` keeps working)
from hsmr_contract.dofs import DOF_NAMES, DOFS, JOINT_NAMES, JOINTS, N_DOFS, N_JOINTS, PARENTS, Dof, Joint, dof_index

from .data import SkelData, SkelFileError
from .model import SKEL, RestState, SKELOutput

_PKG = Path(__file__).resolve().parent
# where the open default body may live: inside an installed package, or in the source checkout's assets/
OPEN_BODY_CANDIDATES: list[Path] = [
    _PKG.parent / "assets" / "open_body.npz",
    _PKG.parents[2] / "assets" / "open_body.npz",
]


def load_body(spec: str | Path = "open") -> SKEL:
    """``"open"`` -> the shipped open default body (assets/open_body.npz); otherwise a path to an official
    SKEL v1.1.1 ``.pkl`` or a SKEL-format ``.npz``."""
    if str(spec) == "open":
        for p in OPEN_BODY_CANDIDATES:
            if p.is_file():
                return SKEL.from_file(p)
        raise SkelFileError(
            f"the open default body is missing (looked for {', '.join(map(str, OPEN_BODY_CANDIDATES))}); "
            "generate it with `python build.py assets`, or pass a SKEL model file (skel_male.pkl) instead"
        )
    return SKEL.from_file(Path(spec).expanduser())


__all__ = [
    "DOFS",
    "DOF_NAMES",
    "JOINTS",
    "JOINT_NAMES",
    "N_DOFS",
    "N_JOINTS",
    "OPEN_BODY_CANDIDATES",
    "PARENTS",
    "SKEL",
    "Dof",
    "Joint",
    "RestState",
    "SKELOutput",
    "SkelData",
    "SkelFileError",
    "dof_index",
    "load_body",
]
