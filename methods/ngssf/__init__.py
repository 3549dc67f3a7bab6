"""Neural Gaussian scale-space fields (NGSSF, Mujkanovic et al. 2024): one forward pass returns a signal smoothed
by any Gaussian (isotropic, anisotropic, or a different one per point).

Every signal here — images, the Ackley function, mesh SDFs, the Monte-Carlo ground truth and the neural field —
is a :class:`~methods.field.Field`, so evaluation and viewing code never cares which one it holds.
"""
