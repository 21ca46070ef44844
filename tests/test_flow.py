"""Optical flow (localmer.flow) on analytic motions of a textured image, optical strain on analytic fields,
the flow pictures, and `localmer flow` on an image pair, a frame folder and a video.

Convention under test: u is horizontal, positive to the right; v vertical, positive downwards; pixels; from
the first image to the second (a point at (x, y) in the first is at (x + u, y + v) in the second).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, write_video

from localmer import flow
from localmer.cli import main as cli

SIZE = 96  # px, square
INTERIOR = (slice(16, -16), slice(16, -16))  # away from the border, where the motion brings in unseen texture
CENTRE = (SIZE - 1) / 2


def _texture_components(seed: int = 3, count: int = 40):
    """Plane waves of random direction and phase, wavelengths 6-24 px: texture everywhere, no aliasing."""
    rng = np.random.default_rng(seed)
    return rng.uniform(1 / 24, 1 / 6, count), rng.uniform(0, 2 * np.pi, count), rng.uniform(0, 2 * np.pi, count)


COMPONENTS = _texture_components()


def texture(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The texture at any (sub-pixel) coordinates, grey uint8: images of a moving texture are drawn exactly,
    without interpolating a first image (which would add its own error)."""
    frequency, direction, phase = COMPONENTS
    waves = sum(
        np.cos(2 * np.pi * f * (np.cos(d) * x + np.sin(d) * y) + p)
        for f, d, p in zip(frequency, direction, phase, strict=True)
    )
    return np.clip(128 + 9.5 * waves, 0, 255).round().astype(np.uint8)


GRID_Y, GRID_X = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
FIRST = texture(GRID_X, GRID_Y)


def moved(source_of) -> np.ndarray:
    """The second image of a motion: each pixel (x, y) shows the texture at ``source_of(x, y)``, the point
    of the first image that moved there."""
    return texture(*source_of(GRID_X, GRID_Y))


def translated(dx: float, dy: float) -> np.ndarray:
    return moved(lambda x, y: (x - dx, y - dy))


def rotated(degrees: float) -> np.ndarray:
    """Rotated about the centre by ``degrees`` (clockwise on screen, y being down)."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return moved(
        lambda x, y: (CENTRE + c * (x - CENTRE) + s * (y - CENTRE), CENTRE - s * (x - CENTRE) + c * (y - CENTRE))
    )


def zoomed(scale: float) -> np.ndarray:
    return moved(lambda x, y: (CENTRE + (x - CENTRE) / scale, CENTRE + (y - CENTRE) / scale))


def interior_mean(field: np.ndarray) -> float:
    return float(field[INTERIOR].mean())


# ----------------------------------------------------------------------------------- flow on motions


def test_tvl1_recovers_a_translation_within_0_05_px():
    """(1.5, -0.75) px: the interior's mean flow within 0.05 px of it and every interior pixel within 0.1.
    TV-L1 (OpenCV) locks towards whole pixels: at a quarter-pixel offset it is ~0.04 px off whatever its
    parameters (docs/preprocessing.md), so a pointwise 0.05 would be luck."""
    dx, dy = 1.5, -0.75
    fields = flow.flow_fields(FIRST, translated(dx, dy), "tvl1")
    u, v = fields[..., 0], fields[..., 1]
    assert abs(interior_mean(u) - dx) < 0.05 and abs(interior_mean(v) - dy) < 0.05
    assert np.abs(u[INTERIOR] - dx).max() < 0.1 and np.abs(v[INTERIOR] - dy).max() < 0.1
    assert abs(interior_mean(u) - (dx + 0.1)) > 0.05  # control: 0.1 px more would not pass


@pytest.mark.parametrize("name", ["dis", "farneback"])
def test_the_fast_methods_recover_a_translation_within_0_1_px(name):
    dx, dy = 1.5, -0.75
    fields = flow.flow_fields(FIRST, translated(dx, dy), name)
    assert abs(np.median(fields[..., 0][INTERIOR]) - dx) < 0.1
    assert abs(np.median(fields[..., 1][INTERIOR]) - dy) < 0.1


@pytest.mark.parametrize("name", sorted(flow.METHODS))
def test_u_is_positive_to_the_right_and_v_downwards(name):
    """Moved 1 px right and 0.5 px down: u ~1, v ~0.5 (swapped axes or signs would not pass)."""
    moved_flow = flow.dense_flow(FIRST, translated(1.0, 0.5), name)[INTERIOR]
    assert abs(np.median(moved_flow[..., 0]) - 1.0) < 0.1 and abs(np.median(moved_flow[..., 1]) - 0.5) < 0.1


def test_rigid_motion_has_no_strain_and_a_zoom_has_sqrt2_times_s_minus_1():
    """A translation and a small rotation: strain ~0 (a rotation's exact strain is sqrt(2)(1 - cos), 6e-4
    at 2 deg); a zoom by s: u_x = v_y = s - 1, no shear, strain sqrt(2)(s - 1). The zoom is also the control
    of the rigid-motion bound: its strain does not pass it."""
    bound = 0.02
    for second in (translated(1.5, -0.75), rotated(2.0)):
        assert interior_mean(flow.flow_fields(FIRST, second, "tvl1")[..., 2]) < bound
    scale = 1.05
    strain = interior_mean(flow.flow_fields(FIRST, zoomed(scale), "tvl1")[..., 2])
    assert strain == pytest.approx(np.sqrt(2) * (scale - 1), rel=0.1)
    assert strain > bound


def test_flow_fields_are_u_v_strain_magnitude():
    fields = flow.flow_fields(FIRST, translated(1.0, 0.5), "dis")
    assert fields.shape == (SIZE, SIZE, len(flow.CHANNELS)) and fields.dtype == np.float32
    u, v, strain, magnitude = np.moveaxis(fields, -1, 0)
    np.testing.assert_allclose(magnitude, np.hypot(u, v), rtol=1e-6)
    np.testing.assert_allclose(strain, flow.optical_strain(u, v), rtol=1e-6)


# ------------------------------------------------------------------------------ strain on exact fields


def strain_swapped_axes(u, v):
    """meb-style bug: np.gradient's (d/dy, d/dx) read as (d/dx, d/dy)."""
    u_x, u_y = np.gradient(u)
    v_x, v_y = np.gradient(v)
    return np.sqrt(u_x**2 + v_y**2 + 0.5 * (u_y + v_x) ** 2)


def strain_squared_shear(u, v):
    """Off-TANet-style bug: the shear terms squared one by one."""
    u_y, u_x = np.gradient(u)
    v_y, v_x = np.gradient(v)
    return np.sqrt(u_x**2 + v_y**2 + 0.5 * (u_y**2 + v_x**2))


def strain_u_y_twice(u, v):
    u_y, u_x = np.gradient(u)
    v_y, _ = np.gradient(v)
    return np.sqrt(u_x**2 + v_y**2 + 0.5 * (u_y + u_y) ** 2)


def analytic_field():
    """u = a x^2 + b y, v = c x y (central differences are exact on quadratics, inside the border) and
    its textbook strain sqrt(u_x^2 + v_y^2 + 1/2 (u_y + v_x)^2) from the exact derivatives."""
    y, x = np.mgrid[0:40, 0:50].astype(np.float64)
    a, b, c = 0.01, 0.3, 0.02
    u, v = a * x**2 + b * y, c * x * y
    u_x, u_y, v_x, v_y = 2 * a * x, b, c * y, c * x
    return u, v, np.sqrt(u_x**2 + v_y**2 + 0.5 * (u_y + v_x) ** 2)


def test_optical_strain_is_the_textbook_formula_on_exact_fields():
    y, x = np.mgrid[0:30, 0:40].astype(np.float64)
    a, b, c = 0.05, -0.02, 0.1
    np.testing.assert_allclose(flow.optical_strain(a * x, b * y), np.hypot(a, b), rtol=1e-5)  # stretch
    np.testing.assert_allclose(flow.optical_strain(c * y, 0 * x), abs(c) / np.sqrt(2), rtol=1e-5)  # shear
    np.testing.assert_allclose(flow.optical_strain(c * y, c * x), np.sqrt(2) * abs(c), rtol=1e-5)  # pure shear
    np.testing.assert_allclose(flow.optical_strain(c * y, -c * x), 0, atol=1e-6)  # a (linearised) rotation
    np.testing.assert_allclose(flow.optical_strain(0 * x + 1.5, 0 * x - 2), 0, atol=1e-6)  # a translation
    u, v, expected = analytic_field()
    np.testing.assert_allclose(flow.optical_strain(u, v)[1:-1, 1:-1], expected[1:-1, 1:-1], rtol=1e-5)


@pytest.mark.parametrize("wrong", [strain_swapped_axes, strain_squared_shear, strain_u_y_twice])
def test_the_strain_check_catches_the_formula_bugs_peers_have(wrong):
    """Control: each bug PEERS.md names fails the comparison the textbook formula passes."""
    u, v, expected = analytic_field()
    assert not np.allclose(wrong(u, v)[1:-1, 1:-1], expected[1:-1, 1:-1], rtol=1e-5)


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        (FIRST, FIRST[:-1], "images of different sizes: (96, 96) and (96, 95) (width, height)"),
        (FIRST, cv2.cvtColor(FIRST, cv2.COLOR_GRAY2RGB), "second image: expected a grey uint8 image"),
        (FIRST.astype(np.float32), FIRST, "first image: expected a grey uint8 image, got float32"),
        (FIRST[:10, :10], FIRST[:10, :10], "images of 10x10 px: flow needs at least 16 px a side"),
    ],
)
def test_images_the_flow_cannot_use(first, second, message):
    with pytest.raises(flow.FlowError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        flow.dense_flow(first, second, "dis")


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("horn", {}, "flow method 'horn': expected one of dis, farneback, tvl1"),
        ("tvl1", {"iterations": 3}, "flow parameter tvl1.iterations: unknown (expected tau, lambda, theta,"),
        ("tvl1", {"scales": 0}, "flow parameter tvl1.scales: expected an integer >= 1, got 0"),
        ("tvl1", {"warps": True}, "flow parameter tvl1.warps: expected an integer >= 1, got True"),
        ("tvl1", {"tau": -0.25}, "flow parameter tvl1.tau: expected a number > 0, got -0.25"),
        ("dis", {"preset": "slow"}, "flow parameter dis.preset: expected one of ultrafast, fast, medium, got 'slow'"),
        ("farneback", {"pyr_scale": 1.0}, "flow parameter farneback.pyr_scale: expected a number between 0 and 1"),
    ],
)
def test_unknown_methods_and_bad_parameters_are_named(name, params, message):
    with pytest.raises(flow.FlowError) as raised:
        flow.dense_flow(FIRST, FIRST, name, params)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


def test_every_method_checks_each_of_its_parameters_and_its_defaults_pass():
    for name, chosen in flow.METHODS.items():
        assert set(chosen.checks) == set(chosen.defaults), name
        assert flow.method_settings(name) == chosen.defaults


# -------------------------------------------------------------------------------------------- pictures


def test_flow_colour_hue_is_direction_and_value_magnitude():
    u = np.array([[1, 0, -1, 0, 0, 0.5, 3]], np.float32)
    v = np.array([[0, 1, 0, -1, 0, 0, 0]], np.float32)
    colours = flow.flow_colour(u, v, limit=1.0)
    assert colours.shape == (1, 7, 3) and colours.dtype == np.uint8
    right, down, left, up, still, half, beyond = colours[0].tolist()
    assert right == [255, 0, 0]  # red
    assert down == [127, 255, 0]  # hue 90 deg: yellow-green
    assert left == [0, 255, 255]  # cyan
    assert up == [128, 0, 255]  # hue 270 deg: violet
    assert still == [0, 0, 0]
    assert half == [127, 0, 0] and beyond == [255, 0, 0]  # value: magnitude / limit, capped
    # Default limit: the 99th percentile of the magnitudes, so one outlier does not darken the rest.
    field = np.full((20, 20), 1.0, np.float32)
    field[0, 0] = 100
    assert flow.flow_colour(field, 0 * field)[5, 5].tolist() == [255, 0, 0]
    assert flow.flow_colour(field, 0 * field, limit=100)[5, 5].tolist() == [2, 0, 0]  # control: max as limit


def test_pictures_and_their_errors():
    u, v = np.meshgrid(np.linspace(-1, 1, 40), np.linspace(-1, 1, 50))
    for picture in (flow.flow_picture(u, v, caption="x"), flow.strain_picture(flow.optical_strain(u, v))):
        assert picture.ndim == 3 and picture.shape[2] == 3 and picture.dtype == np.uint8
        assert picture.shape[0] >= 100  # a 50 px field is enlarged
    still = np.zeros((20, 20), np.float32)
    assert flow.flow_picture(still, still).any() and not flow.flow_colour(still, still).any()
    with pytest.raises(flow.FlowError, match="^flow colour limit: expected a number > 0, got -1$"):
        flow.flow_colour(u, v, limit=-1)
    with pytest.raises(flow.FlowError, match=r"^u and v of different shapes: \(50, 40\) and \(40, 40\)$"):
        flow.flow_colour(u, v[:40])
    with pytest.raises(flow.FlowError, match=r"^strain: expected an \(H, W\) array"):
        flow.strain_colour(np.zeros((2, 2, 2)))


# -------------------------------------------------------------------------------------- localmer flow

CONFIG = ["--config", str(REPO / "config" / "config.yaml"), "--base-dir", str(REPO)]


@pytest.fixture(scope="module")
def clip(tiny_indexed_corpus) -> dict:
    """A synthetic CASME II clip: its frame files, onset and apex (frame numbers)."""
    samples = tiny_indexed_corpus["samples"]
    sample = samples[samples.dataset == "casme2"].iloc[0]
    names = sample["frames"].split("|")
    files = {int(name.removeprefix("img").split(".")[0]): Path(sample["frame_dir"]) / name for name in names}
    return {"folder": Path(sample["frame_dir"]), "files": files, "onset": int(sample.onset), "apex": int(sample.apex)}


def run_flow(arguments: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    status = cli(["flow", *map(str, arguments), *CONFIG])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def saved(out: Path) -> dict:
    with np.load(out / "flow.npz") as data:
        return {name: data[name] for name in data.files}


def test_flow_of_an_image_pair_aligns_the_face(clip, tmp_path, capsys):
    onset, apex = clip["files"][clip["onset"]], clip["files"][clip["apex"]]
    status, out, _ = run_flow([onset, apex, "--method", "dis", "--out", tmp_path / "pair"], capsys)
    assert status == 0
    assert f"{onset} {apex}: onset 0, apex 1 (annotated); dis flow on the aligned face (160x192 px)" in out
    data = saved(tmp_path / "pair")
    for name in flow.CHANNELS:
        assert data[name].shape == (192, 160) and data[name].dtype == np.float32  # the default face size
    assert data["apex_source"] == "annotated" and data["method"] == "dis" and bool(data["aligned"])
    assert data["magnitude"].max() > 0.2  # the synthetic action moved the face
    for name in ("flow.png", "strain.png"):
        picture = cv2.imread(str(tmp_path / "pair" / name))
        assert picture is not None and picture.shape[0] > 192
    assert sorted(p.name for p in (tmp_path / "pair").iterdir()) == ["flow.npz", "flow.png", "strain.png"]


def test_flow_without_alignment_is_the_flow_of_the_images_as_they_are(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), FIRST)
    cv2.imwrite(str(tmp_path / "b.png"), translated(1.0, 0.0))
    status, out, _ = run_flow(
        [tmp_path / "a.png", tmp_path / "b.png", "--no-align", "--method", "dis", "--out", tmp_path / "o"], capsys
    )
    assert status == 0 and "dis flow on the image (96x96 px)" in out
    np.testing.assert_array_equal(
        saved(tmp_path / "o")["u"], flow.dense_flow(FIRST, translated(1.0, 0.0), "dis")[..., 0]
    )


def test_flow_of_a_frame_folder_spots_the_apex(clip, tmp_path, capsys):
    status, out, _ = run_flow([clip["folder"], "--onset", clip["onset"], "--method", "dis", "--out", tmp_path], capsys)
    assert status == 0
    data = saved(tmp_path)
    assert data["apex_source"] == "spotted" and int(data["onset"]) == clip["onset"]
    assert int(data["apex"]) in clip["files"] and int(data["apex"]) > clip["onset"]
    assert f"onset {clip['onset']}, apex {int(data['apex'])} (spotted)" in out


def test_flow_of_a_video_with_a_given_apex(clip, tmp_path, capsys):
    numbers = sorted(clip["files"])
    write_video([cv2.imread(str(clip["files"][n]), cv2.IMREAD_GRAYSCALE) for n in numbers], tmp_path / "clip.avi")
    apex = numbers.index(clip["apex"])  # video frames are numbered 0, 1, ...
    status, out, _ = run_flow([tmp_path / "clip.avi", "--apex", apex, "--method", "dis", "--out", tmp_path], capsys)
    assert status == 0 and f"onset 0, apex {apex} (annotated)" in out
    data = saved(tmp_path)
    assert int(data["apex"]) == apex and data["apex_source"] == "annotated"
    assert data["magnitude"].max() > 0.2


def test_flow_errors_are_one_line_naming_the_file(clip, tmp_path, capsys):
    onset = clip["files"][clip["onset"]]
    cv2.imwrite(str(tmp_path / "smaller.png"), cv2.imread(str(onset))[:-8])
    cv2.imwrite(str(tmp_path / "noise.png"), FIRST)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    last = max(clip["files"])
    cases = [
        ([onset, tmp_path / "smaller.png"], f"{onset} is 160x180 px, {tmp_path / 'smaller.png'} 160x172 px: the onset"),
        ([tmp_path / "noise.png", tmp_path / "noise.png"], f"{tmp_path / 'noise.png'} (frame 0) and"),
        ([onset, tmp_path / "broken.png"], f"frame file '{tmp_path / 'broken.png'}' cannot be decoded as an image"),
        ([clip["folder"], "--apex", last + 5], f"{clip['folder']}: --apex {last + 5} is outside the clip (frames "),
        ([clip["folder"], "--apex", last, "--spot"], "--apex and --spot: give one"),
        ([onset], f"{onset}: one image has no apex"),
    ]
    for arguments, message in cases:
        status, _, err = run_flow([*arguments, "--method", "dis", "--out", tmp_path / "out"], capsys)
        assert status == 2, arguments
        assert err.startswith(f"localmer flow: error: {message}") and err.count("\n") == 1, err
    assert "no face on frames 0..1" in run_flow([tmp_path / "noise.png"] * 2 + ["--out", tmp_path], capsys)[2]
    assert not (tmp_path / "out").exists()  # nothing written by a failed command
