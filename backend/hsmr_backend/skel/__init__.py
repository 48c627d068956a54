"""SKEL body model (and the open default body that shares its kinematics)."""

from .dofs import DOF_NAMES, DOFS, JOINT_NAMES, JOINTS, N_DOFS, N_JOINTS, PARENTS, Dof, Joint, dof_index

__all__ = ["DOFS", "DOF_NAMES", "JOINTS", "JOINT_NAMES", "N_DOFS", "N_JOINTS", "PARENTS", "Dof", "Joint", "dof_index"]
