"""Mip-NeRF 360 (Barron et al. 2022), written from the report (research/mipnerf360.md).

Math core: ``sampling`` (s-space ray warp, proposal resampler, alpha compositing, §1.3–1.4), ``geometry``
(conical-frustum Gaussians, the contraction, integrated positional encoding, §1.5–1.7, §5), ``losses`` (Charbonnier,
proposal and distortion losses, §2). On top: ``model`` (proposal MLP + NeRF MLP), ``train`` (the training job),
``dataset`` (the generated unbounded scene and real-data loaders), ``evaluate`` (``eval nerf360``), and the family's
``plugin``/``cli``. Pure torch, batched over leading ray dimensions.
"""
