"""Mip-NeRF 360 (Barron et al. 2022): the mathematical core, written from the report (research/mipnerf360.md).

``sampling`` holds the s-space ray warp, the proposal resampler and alpha compositing (§1.3–1.4); ``geometry`` the
conical-frustum Gaussians, the contraction and the integrated positional encoding (§1.5–1.7, §5); ``losses`` the
Charbonnier, proposal and distortion losses (§2). Pure torch, batched over leading ray dimensions.
"""
