"""Full-reference teachers: pseudo-labels in [0, 1] (1 = identical to the reference) for degraded images.

These are *pseudo-labels* computed against each image's pristine reference, the weak supervision
of KADIS-700k-style training, NOT human opinion scores. Each teacher is a function of a degraded
uint8 (3, H, W) image and its reference:

* ``ssim_psnr``: ``(SSIM + min(PSNR, 50 dB) / 50) / 2`` (SSIM with an 11 px Gaussian window, RGB);
* ``haarpsi``: HaarPSI (Reisenhofer et al. 2018), among the full-reference metrics that agree best
  with human opinion on KADID-10k, TID2013 and CSIQ (SRCC about 0.89 on KADID-10k);
* ``haarpsi_msssim``: the mean of HaarPSI and MS-SSIM.

HaarPSI and MS-SSIM come from piq (``pip install piq``, part of the ``train`` extra).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

Teacher = Callable[[torch.Tensor, torch.Tensor], float]


def _unit(image: torch.Tensor) -> torch.Tensor:
    return image[None].float() / 255.0


def ssim_psnr(image: torch.Tensor, reference: torch.Tensor) -> float:
    import kornia

    x, r = _unit(image), _unit(reference)
    ssim = float(kornia.metrics.ssim(x, r, 11).mean())
    mse = float(((x - r) ** 2).mean())
    psnr = 50.0 if mse == 0 else min(50.0, -10.0 * torch.log10(torch.tensor(mse)).item())
    return max(0.0, min(1.0, (ssim + psnr / 50.0) / 2.0))


def _piq():
    try:
        import piq
    except ImportError:
        raise ImportError("this teacher needs piq: pip install 'dri-toolkit[train]' (or pip install piq)") from None
    return piq


def haarpsi(image: torch.Tensor, reference: torch.Tensor) -> float:
    if torch.equal(image, reference):
        return 1.0
    return max(0.0, min(1.0, float(_piq().haarpsi(_unit(image), _unit(reference), data_range=1.0))))


def haarpsi_msssim(image: torch.Tensor, reference: torch.Tensor) -> float:
    if torch.equal(image, reference):
        return 1.0
    x, r = _unit(image), _unit(reference)
    ms = float(_piq().multi_scale_ssim(x, r, data_range=1.0)) if min(x.shape[-2:]) > 160 else \
        float(_piq().ssim(x, r, data_range=1.0))
    return max(0.0, min(1.0, (haarpsi(image, reference) + ms) / 2.0))


TEACHERS: dict[str, Teacher] = {"ssim_psnr": ssim_psnr, "haarpsi": haarpsi, "haarpsi_msssim": haarpsi_msssim}


def teacher(name: str) -> Teacher:
    """The teacher called ``name`` (see :data:`TEACHERS`)."""
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r}; choose from {sorted(TEACHERS)}")
    return TEACHERS[name]
