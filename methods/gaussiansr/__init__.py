"""GaussianSR (arbitrary-scale super-resolution with per-pixel 2D Gaussians over LR features) and its LIIF
baseline: models, training job, evaluation protocol, the ``sr`` command and the SR view's source."""
