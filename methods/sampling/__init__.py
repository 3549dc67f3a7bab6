"""Classic sampling baselines every learned multiscale method is compared with: GL texture filtering on the
textured fish (nearest … supersampled) and 2D image resampling (nearest / bilinear / prefiltered)."""
