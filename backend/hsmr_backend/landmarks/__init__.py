"""The subject's MediaPipe pose landmarks, frame by frame (the landmark stage). One file per concern:

- ``names``: landmark names, ``LandmarkTrack``, the errors and shared sizes (the bottom layer, imports nothing here)
- ``people``: boxes, plausibility, the ``--subject`` option, appearance, gap bridging (no MediaPipe)
- ``pose``: MediaPipe plumbing: quiet Pose graphs, one run on a window, every person in a frame
- ``tracker``: ``SubjectTracker``, following the chosen subject frame by frame, and its state
- ``relabel``: frames with left and right swapped (the whole body or the legs), found and swapped back
- ``work``: ``WorkDir``, resumable chunks of finished frames (also used by later stages)
- ``detect``: ``detect_landmarks``, the stage itself

The names other modules use are re-exported here. Tunable module constants (e.g. ``relabel.SWITCH_SCALE``) are
read where they are defined: change them on that module, not on this package.
"""

from .detect import detect_landmarks
from .names import (
    CROP_PX,
    KEYPOINT_NAMES,
    MIRROR,
    N_KP,
    WINDOW_PAD,
    LandmarkTrack,
    NoPersonError,
    Progress,
    SubjectError,
)
from .people import (
    SubjectChoice,
    appearance_distance,
    box_center,
    box_from_points,
    box_iou,
    box_size,
    bridge,
    choose_subject,
    contains,
    describe_box,
    person_window,
    plausible_person,
    square_window,
    torso_histogram,
)
from .pose import find_people, native_stderr_filtered, new_pose
from .relabel import (
    LEG_SWAP,
    LEGS,
    fix_labels,
    landmark_up,
    leg_swapped_frames,
    mirrored_frames,
    swap_legs,
    unmirror,
)
from .tracker import SubjectTracker, TrackerState
from .work import Resume, WorkDir, remove_work_folder

__all__ = [
    "CROP_PX", "KEYPOINT_NAMES", "LEGS", "LEG_SWAP", "MIRROR", "N_KP", "WINDOW_PAD", "LandmarkTrack",
    "NoPersonError", "Progress", "Resume", "SubjectChoice", "SubjectError", "SubjectTracker", "TrackerState", "WorkDir",
    "appearance_distance", "box_center", "box_from_points", "box_iou", "box_size", "bridge", "choose_subject",
    "contains", "describe_box", "detect_landmarks", "find_people", "fix_labels", "landmark_up",
    "leg_swapped_frames", "mirrored_frames", "native_stderr_filtered", "new_pose", "person_window",
    "plausible_person", "remove_work_folder", "square_window", "swap_legs", "torso_histogram", "unmirror",
]
