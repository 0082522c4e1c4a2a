"""Benchmarks: environments, shifted dynamics, protocols, dataset generation and perf.

MuJoCo picks its OpenGL backend once, when dm_control is first imported; every program and
import under this package therefore renders with EGL unless ``MUJOCO_GL`` says otherwise
(dm_control itself is only imported when an environment is made).
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
