"""Eulerian video magnification settings: Wu et al.'s named presets and the resolved `evm:` section.

The presets are the calls of Wu et al.'s reference code (reproduceResults.m
of their MATLAB release, SIGGRAPH 2012); keys given in params.yaml override
the chosen preset. REFERENCE.md section 2.
"""

from __future__ import annotations

from typing import Any, Mapping

WU_PRESETS: dict[str, dict[str, Any]] = {
    # baby: amplify_spatial_lpyr_temporal_iir(.., 10, 16, 0.4, 0.05, 0.1), with the band the
    # file's butterworth alternative names (0.4-3 Hz): REFERENCE section 2's motion preset.
    "baby": {"pyramid": "laplacian", "alpha": 10.0, "lambda_c": 16.0, "low_hz": 0.4,
             "high_hz": 3.0, "temporal_filter": "butterworth", "chroma_attenuation": 0.1},
    # baby, butterworth alternative: amplify_spatial_lpyr_temporal_butter(.., 30, 16, 0.4, 3, 30, 0.1)
    "baby_butter": {"pyramid": "laplacian", "alpha": 30.0, "lambda_c": 16.0, "low_hz": 0.4,
                    "high_hz": 3.0, "temporal_filter": "butterworth", "chroma_attenuation": 0.1},
    # face2, motion: amplify_spatial_lpyr_temporal_butter(.., 20, 80, 0.5, 10, 30, 0)
    "face2": {"pyramid": "laplacian", "alpha": 20.0, "lambda_c": 80.0, "low_hz": 0.5,
              "high_hz": 10.0, "temporal_filter": "butterworth", "chroma_attenuation": 0.0},
    # face, colour (pulse): amplify_spatial_Gdown_temporal_ideal(.., 50, 4, 50/60, 60/60, 30, 1)
    "face": {"pyramid": "gaussian", "levels": 4, "alpha": 50.0, "lambda_c": 16.0,
             "low_hz": 50 / 60, "high_hz": 1.0, "temporal_filter": "ideal",
             "chroma_attenuation": 1.0},
}
# Wu et al.'s code designs its Butterworth filters with butter(1, f / fs); MATLAB normalises by
# the Nyquist frequency (fs / 2), so the effective cut-offs are half the nominal ones.
CUTOFF_FACTOR = {"wu_code": 0.5, "nominal": 1.0}


def resolve_evm(section: Mapping[str, Any]) -> dict[str, Any]:
    """The `evm:` section as magnify() keywords: the preset, then the keys params sets."""
    resolved = {"levels": "full", **WU_PRESETS[section["preset"]]}
    resolved.update({k: v for k, v in section.items()
                     if k not in ("preset", "cutoff_convention", "row_group_rows")})
    if resolved["temporal_filter"] == "butterworth":
        factor = CUTOFF_FACTOR[section["cutoff_convention"]]
        resolved["low_hz"], resolved["high_hz"] = (resolved["low_hz"] * factor,
                                                   resolved["high_hz"] * factor)
    return resolved


def pyramid_levels(levels: int | str, height: int, width: int, filter_size: int = 5) -> int:
    """`full`: every level the crop allows, as Wu et al.'s buildLpyr(im, 'auto') (1 + maxPyrHt)."""
    if levels != "full":
        return int(levels)
    size, height_levels = min(height, width), 0
    while size >= filter_size:
        height_levels += 1
        size //= 2
    return 1 + height_levels
