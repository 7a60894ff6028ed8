"""Versions, in one place.

``__version__``: the toolkit's (the package metadata, every ``--version`` and checkpoint read it).
``ENGINE_VERSION``: the version of the engine's outputs. It changes whenever any op's output for
the same plan changes (a new algorithm, a new fast path), so plans and shards record which engine
made them, and a replay by another version is reported as such, not as corruption. History: "1"
the first release; "2" CPU fast paths (OpenCV per image plane) and ARNIQA's own tables for the
``arniqa`` preset; "3" a CPU batch cut into one part per pool thread, and high_sharpen's blur
per image plane on the CPU (its grouped convolution changed in the last float bit with the batch
size); "4" the Lab conversions of the CPU fast path on channel planes with OpenCV's exp and log
(equal to the torch formulas to float rounding, about 1e-6). ``tests/degrade/calibration.json``
pins the outputs of each version.
"""
__version__ = "0.2.0"
ENGINE_VERSION = "4"
