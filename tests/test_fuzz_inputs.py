"""Generated malformed inputs for the files the project reads, through the real CLI (``main.main``).

A seeded mutator turns valid seed files (a 3DGS PLY, a cameras JSON, a mip stack, an ops file, images, checkpoints,
a camera path, a mesh) into broken ones: truncations at many offsets, header and field edits, wrong types, NaN/Inf,
huge sizes, another family's checkpoint. Each case asserts:
- exit code 1 (2 for argparse),
- exactly one line on stderr, naming the file or the flag,
- no traceback,
- nothing created or modified in the output folder.

``test_the_fuzz_suite_is_at_least_200_cases`` keeps the count honest.
"""
from __future__ import annotations

import json
import math
import random
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

SEED = 20261130
_STACK_DOC = {"version": 1, "base": "base.ply", "base_scale": 1.0, "pseudo_gt": "", "poses": "", "meta": {},
              "levels": [{"scale": 0.5, "ply": "half.ply", "metrics": {}}]}


@dataclass(frozen=True)
class Case:
    kind: str
    name: str
    build: Callable[["Seeds", Path], tuple[list[str], str]]  # -> argv, a word the error line must contain
    expect: str = "fail"  # "fail": malformed, must be refused · "either": a random mutation that may still be valid


class Seeds:
    """Valid files the mutations start from (made once per module)."""

    def __init__(self, root: Path) -> None:
        import numpy as np
        import torch

        import main
        from methods.gaussians.mipmap import MipLevel, MipStack
        from methods.gaussians.ply import load_ply, save_ply
        from methods.io import save_checkpoint

        self.root = root
        assert main.main(["export-demo-ply", "--cameras", str(root / "cams.json"), "--gaussians", "60",
                          str(root / "demo.ply")]) == 0
        self.ply = (root / "demo.ply").read_bytes()
        self.cams = json.loads((root / "cams.json").read_text())
        self.cams["frames"] = self.cams["frames"][:1]
        self.cams.update(w=32, h=32, cx=16.0, cy=16.0, fl_x=38.6, fl_y=38.6)
        (root / "cams.json").write_text(json.dumps(self.cams))
        model = load_ply(root / "demo.ply")
        stack = root / "stack"
        stack.mkdir()
        save_ply(model, stack / "base.ply")
        save_ply(model.clone(), stack / "half.ply")
        self.stack = MipStack("base.ply", (MipLevel(0.5, "half.ply", {}),)).to_json()
        (stack / "mipmap.json").write_text(json.dumps(self.stack))
        self.ops = {"ops": [{"op": "select_sphere", "center": [0, 0, 0], "radius": 0.5}, {"op": "delete"}]}
        (root / "ops.json").write_text(json.dumps(self.ops))
        rng = np.random.default_rng(0)
        import imageio.v3 as iio

        iio.imwrite(root / "img.png", (rng.random((64, 64, 3)) * 255).astype(np.uint8))
        iio.imwrite(root / "img.jpg", (rng.random((24, 24, 3)) * 255).astype(np.uint8))
        self.png = (root / "img.png").read_bytes()
        self.jpg = (root / "img.jpg").read_bytes()
        save_checkpoint(root / "other.pt", {"weights": torch.zeros(3)}, kind="some_other_family", version=1)
        self.other_ckpt = (root / "other.pt").read_bytes()
        torch.save({"step": 3, "model": {"w": torch.zeros(4)}}, root / "plain.pt")
        self.plain_pt = (root / "plain.pt").read_bytes()
        self.path_json = {"version": 1, "frames": [{"t": 0.0, "position": [0.0, -3.0, 1.0],
                                                    "look_at": [0.0, 0.0, 0.0]}]}
        self.obj = "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nf 1/1 2/2 3/3\n"


# ----- the mutators ---------------------------------------------------------------------------------------------------
def _json_mutations(doc, rng: random.Random, n: int) -> list[tuple[str, object]]:
    """(label, value) variants of a JSON document: keys removed, values of wrong type, NaN/Inf, huge, empty."""
    paths: list[tuple] = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append(path + (k,))
                walk(v, path + (k,))
        elif isinstance(node, list) and node:
            paths.append(path + (0,))
            walk(node[0], path + (0,))

    walk(doc, ())
    bad_values = [None, "text", -1, 0, [], {}, math.nan, math.inf, 1e308, [1, 2], True]
    out = []
    for k in range(n):
        path = rng.choice(paths)
        value = rng.choice(bad_values + ["<delete>"])
        d = json.loads(json.dumps(doc))
        node = d
        for key in path[:-1]:
            node = node[key]
        if value == "<delete>":
            if isinstance(node, list):
                node.pop(path[-1])
            else:
                node.pop(path[-1])
        else:
            node[path[-1]] = value
        out.append((f"{k}:" + "/".join(map(str, path)) + "=" + (value if isinstance(value, str) else repr(value)), d))
    return out


def _write_json(path: Path, doc) -> None:
    path.write_text(json.dumps(doc, allow_nan=True))


def _bytes_truncations(data: bytes, rng: random.Random, n: int) -> list[int]:
    cuts = {0, 1, len(data) // 2, len(data) - 1}
    while len(cuts) < n:
        cuts.add(rng.randrange(0, len(data)))
    return sorted(cuts)


def _ply_header_end(data: bytes) -> int:
    return data.index(b"end_header\n") + len(b"end_header\n")


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_with_size(w: int, h: int, depth: int = 8, colour: int = 2, data: bool = True) -> bytes:
    """A PNG whose header says w×h, with 16 zero bytes of pixel data (or none): too little for any real size."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    idat = _png_chunk(b"IDAT", zlib.compress(b"\0" * 16)) if data else b""
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + idat + _png_chunk(b"IEND", b"")


def _cases() -> list[Case]:
    rng = random.Random(SEED)
    cases: list[Case] = []

    def add(kind: str, name: str, build, expect: str = "fail") -> None:
        cases.append(Case(kind, f"{kind}:{name}", build, expect))

    # --- 3DGS PLY, through `edit gaussians` (the fastest command that loads one) --------------------------------
    def ply_case(mutate: Callable[[bytes], bytes]):
        def build(seeds: Seeds, out: Path):
            bad = seeds.root / "case.ply"
            bad.write_bytes(mutate(seeds.ply))
            return ["edit", "gaussians", str(bad), "--ops", str(seeds.root / "ops.json"), "--out",
                    str(out / "out.ply")], "case.ply"
        return build

    for cut in _bytes_truncations(b"x" * 2000, rng, 24):    # offsets scaled to the file below
        add("ply", f"truncated@{cut / 2000:.3f}", ply_case(lambda d, c=cut: d[:int(len(d) * c / 2000)]))
    for label, old, new in [
            ("magic", b"ply\n", b"plx\n"), ("no-end-header", b"end_header\n", b"end_headr\n"),
            ("format-ascii", b"binary_little_endian", b"ascii"), ("format-junk", b"binary_little_endian", b"zzz"),
            ("count-zero", b"element vertex 60", b"element vertex 0"),
            ("count-more", b"element vertex 60", b"element vertex 61"),
            ("count-huge", b"element vertex 60", b"element vertex 999999999999"),
            ("count-negative", b"element vertex 60", b"element vertex -5"),
            ("count-text", b"element vertex 60", b"element vertex sixty"),
            ("no-x", b"property float x\n", b""), ("no-opacity", b"property float opacity\n", b""),
            ("no-scale_2", b"property float scale_2\n", b""), ("no-rot_3", b"property float rot_3\n", b""),
            ("no-f_dc_1", b"property float f_dc_1\n", b""),
            ("x-as-uchar", b"property float x\n", b"property uchar x\n"),
            ("x-as-double", b"property float x\n", b"property double x\n"),
            ("type-junk", b"property float y\n", b"property flaot y\n"),
            ("vertex-list-property", b"property float x\n", b"property list uchar float x\n"),
            ("second-vertex-element", b"end_header\n", b"element vertex 3\nproperty float q\nend_header\n"),
            ("format-version", b"binary_little_endian 1.0", b"binary_little_endian 2.0")]:
        add("ply", label, ply_case(lambda d, o=old, n=new: d.replace(o, n, 1)))

    def nan_body(value: float, column: str):
        def mutate(d: bytes) -> bytes:
            import numpy as np

            end = _ply_header_end(d)
            names = [ln.split()[-1] for ln in d[:end].decode().splitlines() if ln.startswith("property")]
            body = np.frombuffer(d[end:], dtype="<f4").reshape(-1, len(names)).copy()
            body[:, names.index(column)] = value
            return d[:end] + body.tobytes()
        return mutate

    for col in ("x", "opacity", "scale_0", "rot_0", "f_dc_0"):
        for v in (math.nan, math.inf):
            add("ply", f"all-{col}={v}", ply_case(nan_body(v, col)))
    add("ply", "empty", ply_case(lambda d: b""))
    add("ply", "a-png", ply_case(lambda d: _png_with_size(4, 4)))
    add("ply", "random-bytes", ply_case(lambda d: bytes(random.Random(1).randrange(256) for _ in range(3000))))
    add("ply", "text-only-header", ply_case(lambda d: d[:_ply_header_end(d)]))

    # --- cameras JSON (nerf_synthetic / nerfstudio), through `render gaussians` ---------------------------------
    def cams_case(mutate):
        def build(seeds: Seeds, out: Path):
            bad = seeds.root / "case_cams.json"
            doc = mutate(json.loads(json.dumps(seeds.cams)))
            if isinstance(doc, bytes):
                bad.write_bytes(doc)
            else:
                _write_json(bad, doc)
            return ["render", "gaussians", "--ply", str(seeds.root / "demo.ply"), "--cameras", str(bad), "--out",
                    str(out / "renders"), "--backend", "torch"], "case_cams.json"
        return build

    for label, mutate in [
            ("not-json", lambda d: b"{frames: ["), ("empty", lambda d: b""), ("list", lambda d: []),
            ("number", lambda d: 3), ("no-frames", lambda d: {k: v for k, v in d.items() if k != "frames"}),
            ("frames-empty", lambda d: {**d, "frames": []}), ("frames-dict", lambda d: {**d, "frames": {}}),
            ("matrix-3x4", lambda d: {**d, "frames": [{**d["frames"][0],
                                                       "transform_matrix": d["frames"][0]["transform_matrix"][:3]}]}),
            ("matrix-nan", lambda d: {**d, "frames": [{**d["frames"][0], "transform_matrix": [[math.nan] * 4] * 4}]}),
            ("matrix-text", lambda d: {**d, "frames": [{**d["frames"][0], "transform_matrix": "eye"}]}),
            ("no-matrix", lambda d: {**d, "frames": [{"file_path": "x"}]}),
            ("no-intrinsics", lambda d: {"frames": d["frames"]}),
            ("focal-zero", lambda d: {**d, "fl_x": 0.0, "fl_y": 0.0}),
            ("focal-negative", lambda d: {**d, "fl_x": -5.0}), ("focal-nan", lambda d: {**d, "fl_x": math.nan}),
            ("width-zero", lambda d: {**d, "w": 0}), ("width-negative", lambda d: {**d, "w": -32}),
            ("width-huge", lambda d: {**d, "w": 10 ** 9, "h": 10 ** 9}), ("width-text", lambda d: {**d, "w": "wide"}),
            ("angle-nan", lambda d: {"camera_angle_x": math.nan, "frames": d["frames"]}),
            ("angle-zero", lambda d: {"camera_angle_x": 0.0, "frames": d["frames"]})]:
        add("cameras", label, cams_case(mutate))
    for cut in (1, 10, 50, 120, 200):
        add("cameras", f"truncated@{cut}", cams_case(lambda d, c=cut: json.dumps(d).encode()[:c]))

    # --- mip stack (mipmap.json), through `edit gaussians` -------------------------------------------------------
    def stack_case(mutate):
        def build(seeds: Seeds, out: Path):
            bad = seeds.root / "stack" / "case_mipmap.json"
            doc = mutate(json.loads(json.dumps(seeds.stack)))
            bad.write_bytes(doc) if isinstance(doc, bytes) else _write_json(bad, doc)
            return ["edit", "gaussians", str(bad), "--ops", str(seeds.root / "ops.json"), "--out",
                    str(out / "mipmap.json")], "case_mipmap.json"
        return build

    for label, mutate in [
            ("not-json", lambda d: b"{levels"), ("empty", lambda d: b""), ("list", lambda d: []),
            ("no-base", lambda d: {k: v for k, v in d.items() if k != "base"}),
            ("no-levels", lambda d: {k: v for k, v in d.items() if k != "levels"}),
            ("levels-dict", lambda d: {**d, "levels": {}}),
            ("base-missing-file", lambda d: {**d, "base": "nope.ply"}),
            ("level-missing-file", lambda d: {**d, "levels": [{"scale": 0.5, "ply": "nope.ply"}]}),
            ("level-no-scale", lambda d: {**d, "levels": [{"ply": "half.ply"}]}),
            ("scale-nan", lambda d: {**d, "levels": [{"scale": math.nan, "ply": "half.ply"}]}),
            ("scale-text", lambda d: {**d, "levels": [{"scale": "half", "ply": "half.ply"}]}),
            ("scale-one", lambda d: {**d, "levels": [{"scale": 1.0, "ply": "half.ply"}]}),
            ("scale-huge", lambda d: {**d, "levels": [{"scale": 64.0, "ply": "half.ply"}]}),
            ("scale-bool", lambda d: {**d, "levels": [{"scale": True, "ply": "half.ply"}]}),
            ("duplicate-scales", lambda d: {**d, "levels": [{"scale": 0.5, "ply": "half.ply"}] * 2}),
            ("unsorted", lambda d: {**d, "levels": [{"scale": 0.5, "ply": "half.ply"},
                                                   {"scale": 0.25, "ply": "half.ply"}]}),
            ("level-not-ply", lambda d: {**d, "levels": [{"scale": 0.5, "ply": "../ops.json"}]}),
            ("base-not-ply", lambda d: {**d, "base": "../cams.json"})]:
        add("mipmap", label, stack_case(mutate))
    for label, doc in _json_mutations(json.loads(json.dumps(_STACK_DOC)), rng, 16):
        add("mipmap", f"mutated:{label}", stack_case(lambda d, doc=doc: doc), "either")

    # --- edit-ops files, through `edit gaussians` -----------------------------------------------------------------
    def ops_case(doc):
        def build(seeds: Seeds, out: Path):
            bad = seeds.root / "case_ops.json"
            bad.write_bytes(doc) if isinstance(doc, bytes) else _write_json(bad, doc)
            return ["edit", "gaussians", str(seeds.root / "demo.ply"), "--ops", str(bad), "--out",
                    str(out / "out.ply")], "case_ops.json"
        return build

    base_ops = [{"op": "select_sphere", "center": [0, 0, 0], "radius": 0.5}, {"op": "delete"}]
    for label, doc in [("not-json", b"[{op"), ("empty", b""), ("number", 7), ("string", "delete"),
                       ("ops-not-list", {"ops": {"op": "delete"}}), ("entry-not-object", ["delete"]),
                       ("no-op-field", [{"radius": 1}]), ("unknown-op", [{"op": "explode"}]),
                       ("delete-empty-selection", [{"op": "delete"}]),
                       ("unknown-field", [{"op": "select_all", "colour": 1}]),
                       ("radius-negative", [{"op": "select_sphere", "radius": -1}, {"op": "delete"}]),
                       ("radius-nan", [{"op": "select_sphere", "radius": math.nan}]),
                       ("centre-2d", [{"op": "select_sphere", "center": [0, 0]}]),
                       ("centre-text", [{"op": "select_sphere", "center": "origin"}]),
                       ("opacity-negative", [{"op": "select_all"}, {"op": "opacity", "factor": -2}]),
                       ("opacity-inf", [{"op": "select_all"}, {"op": "opacity", "factor": math.inf}]),
                       ("hue-text", [{"op": "select_all"}, {"op": "recolour", "hue": "red"}]),
                       ("quat-zero", [{"op": "select_all"}, {"op": "transform", "rotate": [0, 0, 0, 0]}]),
                       ("scale-zero", [{"op": "select_all"}, {"op": "transform", "scale": 0}]),
                       ("box-inverted", [{"op": "select_box", "lo": [1, 1, 1], "hi": [0, 0, 0]}]),
                       ("indices-out-of-range", [{"op": "select_indices", "indices": [0, 10 ** 9]}]),
                       ("indices-float", [{"op": "select_indices", "indices": [0.5]}]),
                       ("mode-junk", [{"op": "select_all", "mode": "xor"}]),
                       ("crop-shape-junk", [{"op": "crop", "shape": "cone"}]),
                       ("grow-negative", [{"op": "select_all"}, {"op": "grow", "radius": -0.1}]),
                       ("crop-everything-inside", [{"op": "crop", "shape": "sphere", "radius": 1e6}])]:
        add("ops", label, ops_case(doc))
    for label, doc in _json_mutations({"ops": base_ops}, rng, 24):
        add("ops", f"mutated:{label}", ops_case(doc), "either")

    # --- images, through `sr` (bicubic: no model needed) ------------------------------------------------------------
    def image_case(make: Callable[["Seeds"], bytes], suffix: str = ".png"):
        def build(seeds: Seeds, out: Path):
            bad = seeds.root / f"case_image{suffix}"
            bad.write_bytes(make(seeds))
            return ["sr", str(bad), "--scale", "2", "--mode", "bicubic", "--out", str(out / "sr.png")], bad.name
        return build

    for cut in (0, 4, 8, 20, 33, 60, 100):
        add("image", f"png-truncated@{cut}", image_case(lambda s, c=cut: s.png[:c]))
    for cut in (0, 2, 50, 200, 400):
        add("image", f"jpg-truncated@{cut}", image_case(lambda s, c=cut: s.jpg[:c], ".jpg"))
    add("image", "wrong-magic", image_case(lambda s: b"GIF89a" + s.png[6:]))
    add("image", "text", image_case(lambda s: b"hello, I am not an image\n"))
    add("image", "huge-dimensions", image_case(lambda s: _png_with_size(200_000, 200_000)))
    add("image", "zero-dimensions", image_case(lambda s: _png_with_size(0, 0)))
    add("image", "1x1-no-pixel-data", image_case(lambda s: _png_with_size(1, 1, data=False)))
    add("image", "16-bit-broken", image_case(lambda s: _png_with_size(8, 8, depth=16)))
    add("image", "bad-crc", image_case(lambda s: s.png[:29] + b"\0\0\0\0" + s.png[33:]))

    # --- checkpoints (every family's loader), through the commands that take one ---------------------------------
    def ckpt_case(make: Callable[["Seeds"], bytes], argv: Callable[["Seeds", Path, Path], list[str]], who: str):
        def build(seeds: Seeds, out: Path):
            bad = seeds.root / f"case_{who}.pt"
            bad.write_bytes(make(seeds))
            return argv(seeds, bad, out), bad.name
        return build

    loaders = {
        "gaussians": lambda s, b, o: ["train", "gaussians", "--resume", str(b), "--out", str(o / "run")],
        "miner": lambda s, b, o: ["train", "miner", str(s.root / "img.png"), "--levels", "1", "--resume", str(b),
                                  "--out", str(o / "run")],
        "gaussiansr": lambda s, b, o: ["sr", str(s.root / "img.png"), "--scale", "2", "--checkpoint", str(b),
                                       "--out", str(o / "sr.png")],
        "ngssf": lambda s, b, o: ["render", "ngssf", str(b), "--out", str(o / "f.png")],
        "neural_texture": lambda s, b, o: ["render", "walkthrough", "--field", str(b), "--mode", "ngssf",
                                           "--frames", "1", "--out", str(o / "walk")],
        "nerf360": lambda s, b, o: ["train", "nerf360", "--resume", str(b), "--out", str(o / "run")],
    }
    blobs = {"random-bytes": lambda s: bytes(random.Random(2).randrange(256) for _ in range(4096)),
             "empty": lambda s: b"", "text": lambda s: b"not a checkpoint\n",
             "other-family": lambda s: s.other_ckpt, "plain-torch-dict": lambda s: s.plain_pt,
             "truncated-half": lambda s: s.other_ckpt[:len(s.other_ckpt) // 2],
             "truncated-end": lambda s: s.other_ckpt[:-10], "zip-junk": lambda s: b"PK\x03\x04" + b"\0" * 200}
    for family, argv in loaders.items():
        for label, make in blobs.items():
            add("checkpoint", f"{family}:{label}", ckpt_case(make, argv, family))

    # --- camera paths, through `render walkthrough` ---------------------------------------------------------------
    def path_case(doc):
        def build(seeds: Seeds, out: Path):
            bad = seeds.root / "case_path.json"
            bad.write_bytes(doc) if isinstance(doc, bytes) else _write_json(bad, doc)
            return ["render", "walkthrough", "--path", str(bad), "--mode", "nearest", "--out",
                    str(out / "walk")], "case_path.json"
        return build

    for label, doc in [("not-json", b"{frames"), ("empty", b""), ("list-of-numbers", [1, 2, 3]),
                       ("no-frames", {"version": 1}), ("frames-empty", {"version": 1, "frames": []}),
                       ("frame-not-object", {"frames": [3]}),
                       ("position-nan", {"frames": [{"position": [math.nan] * 3}]}),
                       ("position-2d", {"frames": [{"position": [0, 1]}]}),
                       ("position-text", {"frames": [{"position": "up"}]})]:
        add("path", label, path_case(doc))

    # --- meshes (OBJ), through `train ngssf --modality mesh` ------------------------------------------------------
    def mesh_case(text: str):
        def build(seeds: Seeds, out: Path):
            bad = seeds.root / "case_mesh.obj"
            bad.write_text(text)
            return ["train", "ngssf", str(bad), "--modality", "mesh", "--config", "test_tiny", "--iterations", "1",
                    "--out", str(out / "ngssf")], "case_mesh.obj"
        return build

    for label, text in [("empty", ""), ("no-faces", "v 0 0 0\nv 1 0 0\nv 0 1 0\n"),
                        ("face-out-of-range", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n"),
                        ("nan-vertex", "v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"),
                        ("inf-vertex", "v inf 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"),
                        ("text", "hello\nworld\n"), ("binary", "\x00\x01\x02" * 40),
                        ("degenerate", "v 0 0 0\nv 0 0 0\nv 0 0 0\nf 1 2 3\n")]:
        add("mesh", label, mesh_case(text))

    # --- CLI arguments: files that do not exist, outputs that cannot be written, non-numbers -------------------------
    def argv_case(make: Callable[["Seeds", Path], list[str]], word: str):
        def build(seeds: Seeds, out: Path):
            return make(seeds, out), word
        return build

    missing = "/nonexistent/nothing_here"
    for label, make, word in [
            ("edit:missing-ply", lambda s, o: ["edit", "gaussians", missing + ".ply", "--ops", str(s.root / "ops.json"),
                                               "--out", str(o / "x.ply")], "nothing_here"),
            ("edit:missing-ops", lambda s, o: ["edit", "gaussians", str(s.root / "demo.ply"), "--ops", missing,
                                               "--out", str(o / "x.ply")], "--ops"),
            ("edit:out-under-a-file", lambda s, o: ["edit", "gaussians", str(s.root / "demo.ply"), "--ops",
                                                    str(s.root / "ops.json"), "--out", str(s.root / "img.png/x.ply")],
             "--out"),
            ("render:missing-ply", lambda s, o: ["render", "gaussians", "--ply", missing, "--cameras",
                                                 str(s.root / "cams.json"), "--out", str(o / "r")], "nothing_here"),
            ("render:missing-cameras", lambda s, o: ["render", "gaussians", "--ply", str(s.root / "demo.ply"),
                                                     "--cameras", missing, "--out", str(o / "r")], "nothing_here"),
            ("sr:missing-image", lambda s, o: ["sr", missing + ".png", "--scale", "2", "--out", str(o / "a.png")],
             "nothing_here"),
            ("sr:out-under-a-file", lambda s, o: ["sr", str(s.root / "img.png"), "--scale", "2", "--mode", "bicubic",
                                                  "--out", str(s.root / "img.png") + "/x.png"], "x.png"),
            ("finetune:missing-ply", lambda s, o: ["finetune", "gaussians", "--ply", missing, "--out", str(o / "st")],
             "--ply"),
            ("train-gaussians:missing-dataset", lambda s, o: ["train", "gaussians", "--dataset", missing, "--out",
                                                              str(o / "run")], "nothing_here"),
            ("train-nerf360:missing-dataset", lambda s, o: ["train", "nerf360", "--dataset", missing, "--out",
                                                            str(o / "run")], "nothing_here"),
            ("train-miner:missing-image", lambda s, o: ["train", "miner", missing + ".png", "--out", str(o / "m")],
             "nothing_here"),
            ("eval-miner:missing-image", lambda s, o: ["eval", "miner", missing + ".png"], "nothing_here"),
            ("render-ngssf:missing-field", lambda s, o: ["render", "ngssf", missing + ".pt", "--out", str(o / "a.png")],
             "nothing_here"),
            ("walk:missing-path", lambda s, o: ["render", "walkthrough", "--path", missing, "--mode", "nearest",
                                                "--out", str(o / "w")], "nothing_here"),
            ("train-gaussiansr:missing-folder", lambda s, o: ["train", "gaussiansr", missing, "--out", str(o / "g")],
             "nothing_here"),
            ("export-demo:out-under-a-file", lambda s, o: ["export-demo-ply", str(s.root / "img.png/demo.ply")],
             "demo.ply")]:
        add("args", label, argv_case(make, word))
    numeric = [("sr", "--scale", lambda s, o, v: ["sr", str(s.root / "img.png"), "--scale", v, "--mode", "bicubic",
                                                 "--out", str(o / "a.png")]),
               ("render-gaussians", "--zoom", lambda s, o, v: ["render", "gaussians", "--ply", str(s.root / "demo.ply"),
                                                              "--cameras", str(s.root / "cams.json"), "--zoom", v,
                                                              "--out", str(o / "r")]),
               ("render-gaussians", "--size", lambda s, o, v: ["render", "gaussians", "--ply", str(s.root / "demo.ply"),
                                                              "--cameras", str(s.root / "cams.json"), "--size", v,
                                                              "--out", str(o / "r")]),
               ("train-miner", "--levels", lambda s, o, v: ["train", "miner", str(s.root / "img.png"), "--levels", v,
                                                           "--out", str(o / "m")]),
               ("train-miner", "--block", lambda s, o, v: ["train", "miner", str(s.root / "img.png"), "--block", v,
                                                          "--out", str(o / "m")]),
               ("export-demo", "--gaussians", lambda s, o, v: ["export-demo-ply", "--gaussians", v, str(o / "d.ply")]),
               ("render-ngssf", "--size", lambda s, o, v: ["render", "ngssf", "astronaut", "--size", v, "--out",
                                                          str(o / "a.png")])]
    for cmd, flag, make in numeric:
        for v in ("abc", "1e999x", "nan", "-3", "inf", "0x"):
            add("args", f"{cmd}{flag}={v}", argv_case(lambda s, o, m=make, v=v: m(s, o, v), flag))
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> Seeds:
    return Seeds(tmp_path_factory.mktemp("fuzz_seeds"))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_malformed_input_is_one_line_and_writes_nothing(case: Case, seeds: Seeds, tmp_path, capsys):
    import main

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("an existing file must stay as it is")
    inputs_before = _snapshot(seeds.root)
    before = _snapshot(out)
    argv, word = case.build(seeds, out)
    capsys.readouterr()
    rc = main.main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if case.expect == "either" and rc == 0:  # the mutation left a valid file: it must have worked cleanly
        assert "Traceback" not in err
        return
    assert rc in (1, 2), f"exit {rc} for {case.name}; stderr: {err[-400:]}"
    assert "Traceback" not in err
    assert len(lines) == 1, f"{len(lines)} lines: {err[-600:]}"
    assert word.lower() in lines[0].lower(), f"the line does not name {word!r}: {lines[0]}"
    assert _snapshot(out) == before, "the output folder changed"
    after_inputs = _snapshot(seeds.root)
    changed = [k for k in inputs_before
               if not Path(k).name.startswith("case") and after_inputs.get(k) != inputs_before[k]]
    assert not changed, f"inputs modified: {changed}"
    assert not [k for k in after_inputs if ".tmp" in k]


def test_the_fuzz_suite_is_at_least_200_cases():
    from collections import Counter

    counts = Counter(c.kind for c in CASES if c.expect == "fail")
    assert sum(counts.values()) >= 200 and len({c.name for c in CASES}) == len(CASES), counts
    assert set(counts) >= {"ply", "cameras", "mipmap", "ops", "image", "checkpoint", "path", "mesh", "args"}
