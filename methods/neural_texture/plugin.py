"""The neural-texture family: the fish walkthrough with one NGSSF texture query per pixel."""
from __future__ import annotations

from methods.neural_texture import cli
from methods.plugin import Command, Family, SourceSpec, lazy

FAMILY = Family(
    name="neural_texture",
    title="Neural texture walkthrough",
    commands=(
        Command(("train", "neural_texture"), "train the fish's neural texture (NGSSF texture field) and bundle it",
                cli.add_train_arguments, cli.run_train),
        Command(("render", "walkthrough"), "render a camera path around the fish in one texture mode",
                cli.add_render_arguments, cli.run_render),
        Command(("eval", "walkthrough"), "every texture mode vs the KxK supersampled reference along a camera path",
                cli.add_eval_arguments, cli.run_eval),
    ),
    sources=(SourceSpec("walkthrough", "Walkthrough (neural texture)",
                        lazy("methods.neural_texture.live_source", "walkthrough_source"), is_3d=True, order=15,
                        help="fly around the fish: GL filters vs one NGSSF query per pixel vs supersampling"),),
    order=45,
)
