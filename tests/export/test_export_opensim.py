"""OpenSim itself reads the exports, and its inverse kinematics on the exported .trc reproduces the exported
Rajagopal .mot (pelvis, hips, knees) with a leg model built here in code (no model file ships).

Needs the `opensim` package (PyPI); it is not in build.py because its metadata asks for numpy>=2.1 while bpy
pins numpy 1.26 (it works with 1.26): `.venv/bin/python -m pip install --no-deps opensim==4.6`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hsmr_contract import dofs
from hsmr_contract import result_format as rf
from hsmr_contract.export import markers, mot, opensim_map, trc
from synthetic.export_clip import M_REST, rest_joints, save_synthetic

osim = pytest.importorskip("opensim")


@pytest.fixture(scope="module", autouse=True)
def _log_into_tmp(tmp_path_factory):
    """OpenSim logs to ./opensim.log by default: send it to a temporary folder instead (nothing in the repo)."""
    osim.Logger.removeFileSink()
    osim.Logger.addFileSink(str(tmp_path_factory.mktemp("osim_log") / "opensim.log"))
    yield
    osim.Logger.removeFileSink()


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[dict[str, np.ndarray], Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("osim")
    res = rf.load(save_synthetic(tmp, T=20))
    return (
        res,
        mot.write_skel_mot(res, tmp / "s.mot"),
        mot.write_rajagopal_mot(res, tmp / "r.mot"),
        trc.write_markers_trc(res, tmp / "m.trc"),
    )


def test_opensim_reads_the_mot_files(exported):
    res, skel_mot, raj_mot, _ = exported
    cases = ((skel_mot, *opensim_map.skel_motion(res)), (raj_mot, *opensim_map.rajagopal_motion(res)))
    for path, names, values in cases:
        table = osim.TimeSeriesTable(str(path))
        assert list(table.getColumnLabels()) == names
        assert table.getTableMetaDataAsString("inDegrees") == "yes"
        matrix = table.getMatrix()  # held: to_numpy() may view its memory
        np.testing.assert_allclose(np.array(matrix.to_numpy()), values, atol=1e-6)
        np.testing.assert_allclose(np.array(table.getIndependentColumn()), opensim_map.times(res), atol=1e-8)
        storage = osim.Storage(str(path))
        assert storage.isInDegrees() and storage.getSize() == res["poses"].shape[0]


def test_opensim_reads_the_trc(exported):
    res, _, _, trc_path = exported
    names, xyz = markers.virtual_markers(res)
    table = osim.TimeSeriesTableVec3(str(trc_path))
    assert list(table.getColumnLabels()) == names
    assert table.getTableMetaDataAsString("Units") == "m" and table.getTableMetaDataAsString("DataRate") == "30"
    flat_table = table.flatten()  # keep it alive: to_numpy() views its memory
    matrix = flat_table.getMatrix()
    flat = np.array(matrix.to_numpy()).reshape(len(table.getIndependentColumn()), len(names), 3)
    np.testing.assert_allclose(flat, xyz, atol=1e-6)
    data = osim.MarkerData(str(trc_path))
    assert data.getNumFrames() == res["poses"].shape[0] and data.getUnits().getAbbreviation() == "m"


def _leg_model(res: dict[str, np.ndarray]) -> tuple[object, list[str]]:
    """Pelvis (free: Z-X-Y rotations then X/Y/Z translations) + hips (Z-X-Y; left about z, -x, -y) + knees
    (about -z), with the Rajagopal coordinate names; bodies in the synthetic body's BSM frames."""
    rest = rest_joints()
    jidx = {n: i for i, n in enumerate(dofs.JOINT_NAMES)}
    model = osim.Model()
    model.setName("hsmr_test_legs")

    def vec(a) -> object:
        return osim.Vec3(*(float(x) for x in a))

    def add_body(name: str) -> object:
        b = osim.Body(name, 5.0, osim.Vec3(0), osim.Inertia(0.1, 0.1, 0.1))
        model.addBody(b)
        return b

    def add_joint(name, parent, location, child, rotations, translations=()):
        st = osim.SpatialTransform()
        for k, (coord, axis) in enumerate(rotations):
            ax = st.updTransformAxis(k)
            ax.setCoordinateNames(osim.ArrayStr(coord, 1))
            ax.setAxis(vec(axis))
            ax.set_function(osim.LinearFunction())
        if len(rotations) == 1:  # unused rotation axes must still be orthogonal
            st.updTransformAxis(1).setAxis(osim.Vec3(1, 0, 0))
            st.updTransformAxis(2).setAxis(osim.Vec3(0, 1, 0))
        for k, (coord, axis) in enumerate(translations):
            ax = st.updTransformAxis(3 + k)
            ax.setCoordinateNames(osim.ArrayStr(coord, 1))
            ax.setAxis(vec(axis))
            ax.set_function(osim.LinearFunction())
        model.addJoint(
            osim.CustomJoint(name, parent, vec(location), osim.Vec3(0), child, osim.Vec3(0), osim.Vec3(0), st)
        )

    bodies = {"pelvis": add_body("pelvis")}
    add_joint(
        "ground_pelvis",
        model.getGround(),
        (0, 0, 0),
        bodies["pelvis"],
        [("pelvis_tilt", (0, 0, 1)), ("pelvis_list", (1, 0, 0)), ("pelvis_rotation", (0, 1, 0))],
        [("pelvis_tx", (1, 0, 0)), ("pelvis_ty", (0, 1, 0)), ("pelvis_tz", (0, 0, 1))],
    )
    for s, sg in (("r", 1.0), ("l", -1.0)):
        bodies[f"femur_{s}"], bodies[f"tibia_{s}"] = add_body(f"femur_{s}"), add_body(f"tibia_{s}")
        add_joint(
            f"hip_{s}",
            bodies["pelvis"],
            M_REST.T @ (rest[jidx[f"femur_{s}"]] - rest[0]),
            bodies[f"femur_{s}"],
            [(f"hip_flexion_{s}", (0, 0, 1)), (f"hip_adduction_{s}", (sg, 0, 0)), (f"hip_rotation_{s}", (0, sg, 0))],
        )
        add_joint(
            f"knee_{s}",
            bodies[f"femur_{s}"],
            M_REST.T @ (rest[jidx[f"tibia_{s}"]] - rest[jidx[f"femur_{s}"]]),
            bodies[f"tibia_{s}"],
            [(f"knee_angle_{s}", (0, 0, -1))],
        )

    def add_marker(name: str, body: str, rest_pos: np.ndarray) -> None:
        model.addMarker(osim.Marker(name, bodies[body], vec(M_REST.T @ (rest_pos - rest[jidx[body]]))))

    used = []
    for joint, marker in markers.JOINT_CENTRE_NAMES.items():  # a joint centre is fixed in its parent body
        p = dofs.PARENTS[jidx[joint]]
        holder = joint if p < 0 else dofs.JOINT_NAMES[p]
        if holder in bodies:
            add_marker(marker, holder, rest[jidx[joint]])
            used.append(marker)
    names, ids = markers.choose_landmark_vertices(res)
    owner = np.argmax(res["skin_weights"], axis=1)
    for name, i in zip(names, ids, strict=True):
        if dofs.JOINT_NAMES[owner[i]] in bodies:
            add_marker(name, dofs.JOINT_NAMES[owner[i]], res["skin_rest_verts"][i].astype(np.float64))
            used.append(name)
    model.finalizeConnections()
    model.initSystem()
    return model, used


def test_opensim_ik_on_the_trc_reproduces_the_rajagopal_mot(exported, tmp_path: Path):
    res, _, raj_mot, trc_path = exported
    model, used = _leg_model(res)
    assert len(used) >= 12
    ik = osim.InverseKinematicsTool()
    ik.setModel(model)
    ik.setMarkerDataFileName(str(trc_path))
    t = opensim_map.times(res)
    ik.setStartTime(float(t[0]))
    ik.setEndTime(float(t[-1]))
    ik.setOutputMotionFileName(str(tmp_path / "ik.mot"))
    ik.set_report_errors(False)
    for name in used:
        task = osim.IKMarkerTask()
        task.setName(name)
        task.setWeight(1.0)
        ik.getIKTaskSet().cloneAndAppend(task)
    assert ik.run()
    got, want = mot.read_mot(tmp_path / "ik.mot"), mot.read_mot(raj_mot)
    np.testing.assert_allclose(got.time, want.time, atol=1e-6)
    compared = 0
    for c in got.columns:
        tol = 1e-4 if c in opensim_map.TRANSLATIONS else 0.1  # metres / degrees (float32 result, 6-digit .trc)
        np.testing.assert_allclose(got.column(c), want.column(c), atol=tol, err_msg=c)
        compared += 1
    assert compared == 14
