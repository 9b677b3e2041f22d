"""The compiled pass of rank pooling (numba, compiled once and cached on disk beside this file).

OpenCV sums two weighted frames per call and adds the pairs into the window's
float32 image one more call each: every call is a pass over a float image
(about 0.1 ns per element, in cache or not), so a window of 8 frames made 7
float passes. `add_pairs` reads eight uint8 frames and writes their weighted
sum in one pass, computing each pair and adding the pairs in OpenCV's order
and rounding (a pair is fma(first, w_first, second * w_second), as OpenCV's
`addWeighted`), so its images equal the OpenCV passes' bit for bit.
"""

from __future__ import annotations

import numba
import numpy as np

FRAMES_PER_PASS = 8


@numba.njit(cache=True, nogil=True, boundscheck=False, fastmath={"contract"})
def add_pairs(f0, f1, f2, f3, f4, f5, f6, f7, weights, pooled, onto):
    """pooled (float32, flat) = [pooled +] (w0 f0 + w1 f1) + (w2 f2 + w3 f3) + ..., left to right."""
    w0, w1, w2, w3 = weights[0], weights[1], weights[2], weights[3]
    w4, w5, w6, w7 = weights[4], weights[5], weights[6], weights[7]
    for i in range(pooled.size):
        total = w0 * np.float32(f0[i]) + w1 * np.float32(f1[i])
        if onto:
            total = pooled[i] + total
        total = total + (w2 * np.float32(f2[i]) + w3 * np.float32(f3[i]))
        total = total + (w4 * np.float32(f4[i]) + w5 * np.float32(f5[i]))
        pooled[i] = total + (w6 * np.float32(f6[i]) + w7 * np.float32(f7[i]))
