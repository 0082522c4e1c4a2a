"""Launchers, experiment programs, their configs and their committed results.

Like ``benchmarks``, every program here renders with EGL unless ``MUJOCO_GL`` says otherwise: the
variable is set before anything can import dm_control.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
