"""Numerical constants shared by several steps of the engine, defined once.

Each is a tolerance or a memory budget that more than one module must agree
on; the module that uses a constant imports it from here.
"""

from __future__ import annotations

__all__ = ["CHUNK_ELEMENTS", "RANGE_TOLERANCE", "SINGULAR_EDGE"]

#: Values of n x (markers x columns) per chunk of a scan or a kinship:
#: 4 Mi float64 values, 32 MiB.
CHUNK_ELEMENTS = 1 << 22

#: How far outside their range (``[0, 1]`` for probabilities, ``[0, 2]`` for
#: dosages) genotype values may lie and still count as rounding.
RANGE_TOLERANCE = 1e-9

#: Distance from h2 = 1 used for a singular kinship whose fit is at h2 = 1
#: (where the weights ``1 / (h d_i + 1 - h)`` are infinite): the solution
#: there is the limit, which ``1 - 1e-9`` gives to about 1e-8.
SINGULAR_EDGE = 1e-9
