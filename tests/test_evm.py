"""Eulerian video magnification: exact pyramids, band-pass behaviour, magnified motion."""

from __future__ import annotations

import math

import pytest
import torch

from fas.models.evm import collapse, laplacian_pyramid, magnify, temporal_bandpass

FPS = 30.0


pytestmark = pytest.mark.usefixtures("one_thread")


def sinusoid(hz: float, n: int = 60) -> torch.Tensor:
    t = torch.arange(n, dtype=torch.float64) / FPS
    return torch.sin(2 * math.pi * hz * t).view(n, 1, 1, 1).expand(n, 3, 2, 2).clone()


def moving_blob(n: int = 60, hz: float = 1.0, amplitude: float = 0.5) -> torch.Tensor:
    """A bright blob on grey that moves sub-pixel at `hz`."""
    t = torch.arange(n) / FPS
    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    centre = 16 + amplitude * torch.sin(2 * math.pi * hz * t).view(n, 1, 1)
    blob = torch.exp(-((x - centre) ** 2 + (y - 16) ** 2) / 20)
    return (0.4 + 0.3 * blob).unsqueeze(1).expand(n, 3, 32, 32).clone()


def test_laplacian_pyramid_collapses_exactly():
    x = torch.rand(3, 3, 37, 50)
    bands = laplacian_pyramid(x, 4)
    assert [b.shape[-2:] for b in bands] == [(37, 50), (19, 25), (10, 13), (5, 7)]
    torch.testing.assert_close(collapse(bands), x)


@pytest.mark.parametrize("kind", ["ideal", "butterworth"])
def test_bandpass_keeps_the_band_and_removes_the_rest(kind):
    inside = temporal_bandpass(sinusoid(1.5), FPS, 0.4, 3.0, kind)
    outside = temporal_bandpass(sinusoid(10.0), FPS, 0.4, 3.0, kind)
    constant = temporal_bandpass(torch.ones(60, 3, 2, 2, dtype=torch.float64), FPS, 0.4, 3.0, kind)
    assert inside[30:].abs().max() > 0.5
    assert outside[30:].abs().max() < 0.35 * inside[30:].abs().max()
    assert constant.abs().max() < 1e-6


@pytest.mark.parametrize("pyramid", ["laplacian", "gaussian"])
@pytest.mark.parametrize("kind", ["ideal", "butterworth"])
def test_in_band_motion_is_amplified_and_a_still_clip_is_unchanged(pyramid, kind):
    clip = moving_blob()
    out = magnify(clip, FPS, pyramid=pyramid, temporal_filter=kind)
    assert out.shape == clip.shape and out.min() >= 0 and out.max() <= 1
    assert out.var(dim=0).sum() > 3 * clip.var(dim=0).sum()
    still = clip[:1].expand_as(clip)
    torch.testing.assert_close(magnify(still, FPS, pyramid=pyramid, temporal_filter=kind), still,
                               atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["ideal", "butterworth"])
def test_out_of_band_motion_gains_less_and_zero_alpha_is_the_identity(kind):
    def gain(hz):
        clip = moving_blob(hz=hz)
        return magnify(clip, FPS, temporal_filter=kind).var(dim=0).sum() / clip.var(dim=0).sum()

    assert gain(10.0) < 0.5 * gain(1.0)  # a first-order Butterworth rolls off slowly
    if kind == "ideal":
        assert gain(10.0) < 1.5
    torch.testing.assert_close(magnify(moving_blob(), FPS, alpha=0.0, temporal_filter=kind), moving_blob(),
                               atol=1e-5, rtol=0)


def test_chroma_attenuation_limits_colour_change():
    clip = moving_blob()
    clip[:, 0] *= 1 + 0.05 * torch.sin(torch.arange(60) / FPS * 2 * math.pi).view(60, 1, 1)
    grey = lambda x: x.mean(dim=1, keepdim=True)  # noqa: E731
    chroma = lambda x: (x - grey(x)).var(dim=0).sum()  # noqa: E731
    assert chroma(magnify(clip, FPS, chroma_attenuation=0.0)) < chroma(magnify(clip, FPS, chroma_attenuation=1.0))


@pytest.mark.parametrize("kind", ["ideal", "butterworth"])
def test_a_batch_of_clips_equals_clip_by_clip(kind):
    clips = torch.rand(3, 16, 3, 16, 16)
    torch.testing.assert_close(magnify(clips, 25.0, temporal_filter=kind),
                               torch.stack([magnify(c, 25.0, temporal_filter=kind) for c in clips]))


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="frames"):
        magnify(torch.rand(8, 1, 16, 16), FPS)
    with pytest.raises(ValueError, match="positive frame rate"):
        magnify(torch.rand(8, 3, 16, 16), 0.0)
    with pytest.raises(ValueError, match="low_hz < high_hz"):
        magnify(torch.rand(8, 3, 16, 16), FPS, low_hz=3.0, high_hz=1.0)
    with pytest.raises(ValueError, match="none within"):  # 8 frames at 25 fps: 3.1 Hz steps
        magnify(torch.rand(8, 3, 16, 16), 25.0, low_hz=0.4, high_hz=3.0, temporal_filter="ideal")
    with pytest.raises(ValueError, match="temporal_filter"):
        magnify(torch.rand(8, 3, 16, 16), FPS, temporal_filter="fir")
