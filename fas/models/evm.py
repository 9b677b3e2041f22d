"""Eulerian video magnification (Wu et al. 2012) for MotionEnhancement (REFERENCE.md section 2).

`fas magnify` runs it over every sampled run of a video's face track (the
temporal filters need the whole video to settle). A run is converted to YIQ, decomposed per frame into a spatial pyramid
(Laplacian for motion, Gaussian for colour), band-passed in time between
`low_hz` and `high_hz` at the clip's frame rate (ideal FFT mask or first-order
Butterworth), amplified by `alpha` (per level, limited by the spatial cut-off
`lambda_c`), chroma-attenuated and added back. Pure torch, on any device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fas.evm_settings import pyramid_levels

# RGB -> YIQ (NTSC), as in Wu et al.'s reference code.
_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                     [0.596, -0.274, -0.322],
                     [0.211, -0.523, 0.312]], dtype=torch.float64)
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64) / 16
# Wu et al.'s reference code multiplies the per-level alpha by 2 ("exaggeration").
EXAGGERATION = 2.0


def _color_transform(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,...jhw->...ihw", matrix.to(x), x)


def _blur_down(x: torch.Tensor) -> torch.Tensor:
    """One Gaussian pyramid step: 5x5 binomial blur, then keep every second pixel.

    `x` is [..., C, H, W]; leading dimensions are batch dimensions.
    """
    lead, (channels, height, width) = x.shape[:-3], x.shape[-3:]
    flat = x.reshape(-1, channels, height, width)
    kernel = torch.outer(_BINOMIAL, _BINOMIAL).to(x).expand(channels, 1, 5, 5)
    pad = "reflect" if min(height, width) > 2 else "replicate"
    down = F.conv2d(F.pad(flat, (2, 2, 2, 2), mode=pad), kernel, groups=channels)[..., ::2, ::2]
    return down.reshape(*lead, *down.shape[-3:])


def _up(x: torch.Tensor, size: torch.Size) -> torch.Tensor:
    lead = x.shape[:-3]
    up = F.interpolate(x.reshape(-1, *x.shape[-3:]), size=tuple(size), mode="bilinear",
                       align_corners=False)
    return up.reshape(*lead, *up.shape[-3:])


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass levels, finest first, and the low-pass residual last."""
    pyramid = []
    for _ in range(levels - 1):
        if min(x.shape[-2:]) < 2:
            break
        down = _blur_down(x)
        pyramid.append(x - _up(down, x.shape[-2:]))
        x = down
    return pyramid + [x]


def collapse(pyramid: list[torch.Tensor]) -> torch.Tensor:
    """Invert `laplacian_pyramid` exactly."""
    x = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        x = band + _up(x, band.shape[-2:])
    return x


def temporal_bandpass(x: torch.Tensor, fps: float, low_hz: float, high_hz: float,
                      kind: str = "ideal") -> torch.Tensor:
    """Band-pass along dim 0 (time) between low_hz and high_hz at `fps` frames/s."""
    if not 0 <= low_hz < high_hz:
        raise ValueError(f"evm band must satisfy 0 <= low_hz < high_hz, got {low_hz}, {high_hz}")
    if kind == "ideal":
        spectrum = torch.fft.rfft(x, dim=0)
        freqs = torch.fft.rfftfreq(x.shape[0], d=1.0 / fps).to(x.device)
        keep = ((freqs >= low_hz) & (freqs <= high_hz)).to(x.dtype)
        if not keep.any():  # the filter would silently pass nothing
            raise ValueError(
                f"evm ideal band-pass: {x.shape[0]} frames at {fps:g} fps resolve frequencies in "
                f"steps of {fps / x.shape[0]:.3g} Hz, none within [{low_hz}, {high_hz}] Hz; use "
                "longer clips or temporal_filter: butterworth")
        return torch.fft.irfft(spectrum * keep.view(-1, *[1] * (x.dim() - 1)), n=x.shape[0], dim=0)
    if kind == "butterworth":
        return _first_order_lowpass(x, fps, high_hz) - _first_order_lowpass(x, fps, low_hz)
    raise ValueError(f"evm temporal_filter must be 'ideal' or 'butterworth', got {kind!r}")


def _first_order_lowpass(x: torch.Tensor, fps: float, cutoff_hz: float) -> torch.Tensor:
    """First-order Butterworth low-pass (bilinear transform), started at the first frame."""
    nyquist = fps / 2
    k = math.tan(math.pi * min(cutoff_hz, 0.99 * nyquist) / fps)
    b, a1 = k / (1 + k), (k - 1) / (1 + k)
    out, y, previous = [], x[0], x[0]
    for frame in x:
        y = b * frame + b * previous - a1 * y
        out.append(y)
        previous = frame
    return torch.stack(out)


def magnify(frames: torch.Tensor, fps: float, *, levels: int | str = "full", low_hz: float = 0.4,
            high_hz: float = 3.0, alpha: float = 10.0, lambda_c: float = 16.0,
            chroma_attenuation: float = 0.1, pyramid: str = "laplacian",
            temporal_filter: str = "butterworth") -> torch.Tensor:
    """Magnify a clip `frames` [T, 3, H, W], or clips [N, T, 3, H, W] sharing one frame
    rate (float RGB in [0, 1]); same shape back.

    `levels` "full" builds every pyramid level the frame size allows (Wu et al.'s
    'auto'); fas.evm_settings holds Wu et al.'s named presets.
    """
    if frames.dim() not in (4, 5) or frames.shape[-3] != 3:
        raise ValueError(f"evm expects frames [T, 3, H, W] or [N, T, 3, H, W], "
                         f"got {tuple(frames.shape)}")
    if fps <= 0:
        raise ValueError(f"evm needs a positive frame rate, got {fps}")
    levels = pyramid_levels(levels, *frames.shape[-2:])
    # time first, clips (if any) as a batch dimension
    yiq = _color_transform(frames.transpose(0, 1) if frames.dim() == 5 else frames, _YIQ)
    if pyramid == "laplacian":
        bands = laplacian_pyramid(yiq, levels)
        lam = math.hypot(*frames.shape[-2:]) / 3  # wavelength of the coarsest level
        delta = lambda_c / 8 / (1 + alpha)
        amplified = [None] * len(bands)
        for level in reversed(range(len(bands))):  # coarsest first, as in Wu's code
            # never negative: Wu's code would attenuate the finest bands instead
            gain = min(alpha, max(0.0, (lam / delta / 8 - 1) * EXAGGERATION))
            if level in (0, len(bands) - 1):  # finest and coarsest bands are left alone
                gain = 0.0
            amplified[level] = gain * temporal_bandpass(bands[level], fps, low_hz, high_hz,
                                                        temporal_filter)
            lam /= 2
        change = collapse(amplified)
    elif pyramid == "gaussian":
        coarse = yiq
        for _ in range(levels - 1):
            if min(coarse.shape[-2:]) < 2:
                break
            coarse = _blur_down(coarse)
        change = _up(alpha * temporal_bandpass(coarse, fps, low_hz, high_hz, temporal_filter),
                     yiq.shape[-2:])
    else:
        raise ValueError(f"evm pyramid must be 'laplacian' or 'gaussian', got {pyramid!r}")
    change = change * torch.tensor([1.0, chroma_attenuation, chroma_attenuation]).to(change).view(3, 1, 1)
    rgb = _color_transform(yiq + change, torch.linalg.inv(_YIQ)).clamp(0, 1)
    return rgb.transpose(0, 1) if frames.dim() == 5 else rgb
