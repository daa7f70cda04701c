"""Sweeps: a grid of models x deploy candidates x backends x targets x runtime settings, each
cell run through the existing stages as Ray tasks, on this machine or on a fleet of devices.

Only :mod:`frugalml.sweep.cluster` imports Ray (the ``cluster`` extra); the spec, the stage
functions and the report are plain Python and usable without it.
"""

from frugalml.sweep.spec import CandidateEntry, Cell, ModelEntry, SweepSpec, load_spec

__all__ = ["CandidateEntry", "Cell", "ModelEntry", "SweepSpec", "load_spec"]
