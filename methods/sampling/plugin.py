"""The sampling-baselines family: texture filtering on the fish mesh and 2D image resampling."""
from __future__ import annotations

from methods.plugin import Command, Family, SourceSpec, lazy
from methods.sampling import cli

FAMILY = Family(
    name="sampling",
    title="Sampling baselines",
    commands=(Command(("render", "mesh"), "render the textured fish through a GL texture filter to an image",
                      cli.add_render_mesh_arguments, cli.run_render_mesh),),
    jobs=(),
    sources=(
        SourceSpec("mesh", "Mesh (textured fish)",
                   lazy("methods.sampling.live_source", "fish_source"), is_3d=True, order=10,
                   help="GL texture filtering on a high-frequency texture: nearest, mipmaps, anisotropic, reference"),
        SourceSpec("image", "Image (2D sampling)",
                   lazy("methods.sampling.live_source", "DemoImageSource"), order=20,
                   help="a photo or texture resampled at any zoom: nearest, bilinear, Gaussian-prefiltered"),
    ),
    order=20,
)
