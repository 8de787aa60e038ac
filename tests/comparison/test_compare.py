"""compare on a tiny `shapes` export: exact scores for methods with known answers, identical noisy inputs for
every method, oracle marking, files written; the classical and CNN paths end to end on a few images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pixelwise.classical import oracle_name
from pixelwise.comparison import FORMAT, Method, build_methods, compare
from pixelwise.data.builtin import export_builtin
from pixelwise.data.folder import SegmentationFolder
from pixelwise.errors import PixelwiseError
from pixelwise.noise import NoiseLevel, apply_noise

LEVELS = [NoiseLevel("gaussian", 0.1), NoiseLevel("salt_pepper", 0.2)]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 train, 2 val, 2 test scenes of 32×32."""
    return export_builtin("shapes", tmp_path_factory.mktemp("data") / "shapes", size=32, count=8)


class Constant(Method):
    """Predicts one class everywhere: its scores follow from the class frequencies alone."""

    def __init__(self, label: int, name: str = "constant") -> None:
        self.name, self.family, self.description = name, "classical", f"class {label} everywhere"
        self.label = label

    def fit(self, train: Any, val: Any, out_dir: Path) -> None:
        pass

    def predict(self, image: np.ndarray, truth: np.ndarray | None = None) -> np.ndarray:
        return np.full(image.shape[:2], self.label, dtype=np.uint8)


class Recorder(Constant):
    """Remembers every input it is given (image and truth)."""

    def __init__(self, name: str, family: Any = "classical") -> None:
        super().__init__(0, name)
        self.family = family
        self.seen: list[tuple[np.ndarray, np.ndarray | None]] = []

    def predict(self, image: np.ndarray, truth: np.ndarray | None = None) -> np.ndarray:
        self.seen.append((image.copy(), truth))
        return super().predict(image)


def test_scores_of_a_constant_method_are_the_class_frequencies(shapes: Path, tmp_path: Path) -> None:
    results = compare(
        shapes, methods=[Constant(0)], out_dir=tmp_path, noise=LEVELS, report=False, progress=False
    ).to_dict()
    masks = [sample.mask for sample in SegmentationFolder(shapes, split="test")]
    background = sum(int((mask == 0).sum()) for mask in masks) / sum(mask.size for mask in masks)
    (method,) = results["methods"]
    assert method["metrics"]["pixel_accuracy"] == pytest.approx(background)
    # IoU of background = its frequency; the other classes have IoU 0 where present, None where absent
    present = sorted({int(label) for mask in masks for label in np.unique(mask)})
    assert method["metrics"]["miou"] == pytest.approx(background / len(present))
    # noise does not change what a constant predicts
    for key in ("clean", "gaussian-0.1", "salt_pepper-0.2"):
        assert method["noise"][key]["pixel_accuracy"] == pytest.approx(background)
    assert method["oracle"] is False and method["checkpoint"] is None
    assert method["ms_per_image"] >= 0 and method["train_seconds"] >= 0


def test_results_json_is_strict_json_and_what_compare_returns(shapes: Path, tmp_path: Path) -> None:
    results = compare(
        shapes, methods=[Constant(1)], out_dir=tmp_path, noise=LEVELS, report=False, progress=False
    ).to_dict()
    stored = json.loads((tmp_path / "results.json").read_text(), parse_constant=pytest.fail)  # no NaN
    assert stored == results
    assert stored["format"] == FORMAT
    assert stored["dataset"]["splits"] == {"train": 8, "val": 2, "test": 2}
    assert stored["dataset"]["classes"]["classes"][0]["name"] == "background"
    assert [level["key"] for level in stored["noise"]] == ["clean", "gaussian-0.1", "salt_pepper-0.2"]
    assert stored["seed"] == 0 and stored["versions"]["numpy"] == np.__version__
    # examples: the first test images clean, the first at the strongest level of each kind, all saved
    assert [(entry["index"], entry["noise"]) for entry in stored["examples"]] == [
        (0, "clean"),
        (1, "clean"),
        (0, "gaussian-0.1"),
        (0, "salt_pepper-0.2"),
    ]
    for entry in stored["examples"]:
        for path in (entry["image"], entry["truth"], *entry["predictions"].values()):
            assert (tmp_path / path).is_file()
        assert list(entry["predictions"]) == ["constant"]


def test_results_json_keeps_its_schema_and_reads_back_into_the_same_records(shapes: Path, tmp_path: Path) -> None:
    from pixelwise.comparison import ComparisonResults

    results = compare(shapes, methods=[Constant(1)], out_dir=tmp_path, noise=LEVELS, report=False, progress=False)
    stored = json.loads((tmp_path / "results.json").read_text())
    # the keys results.json had when compare returned a dict (issue 18 changed the records, not the file)
    assert list(stored) == [
        *("format", "created", "dataset", "seed", "noise", "budget", "settings", "versions", "torch_threads"),
        *("total_seconds", "methods", "examples"),
    ]
    assert list(stored["dataset"]) == [
        *("name", "description", "root", "classes", "in_channels", "splits", "test_limit"),
        "instances",  # issue 23: test images with label images of their objects
    ]
    assert all(list(level) == ["key", "name", "kind", "amount"] for level in stored["noise"])
    (method,) = stored["methods"]
    assert list(method) == [
        *("name", "family", "oracle", "description", "metrics", "noise", "ms_per_image", "ms_per_image_mean"),
        *("train_seconds", "train_images", "checkpoint"),
        "instances",  # issue 23: object scores when the test truth has instances, else null
    ]
    assert list(method["metrics"]) == [
        *("miou", "mean_dice", "pixel_accuracy", "mean_class_accuracy", "fw_iou", "boundary_f1"),
        *("boundary_tolerance", "per_class", "absent_classes", "confusion_matrix", "num_images", "num_pixels"),
        *("classes", "ignore_index"),
    ]
    assert all(
        list(scores) == ["miou", "mean_dice", "pixel_accuracy", "boundary_f1"] for scores in method["noise"].values()
    )
    assert all(
        list(example) == ["stem", "index", "noise", "noise_name", "image", "truth", "predictions"]
        for example in stored["examples"]
    )
    assert stored == results.to_dict() == ComparisonResults.from_dict(stored).to_dict()
    assert results.method("constant").metrics.pixel_accuracy == method["metrics"]["pixel_accuracy"]


def test_every_method_sees_the_same_noisy_images_and_only_the_oracle_sees_truth(shapes: Path, tmp_path: Path) -> None:
    first, second, oracle = Recorder("first"), Recorder("second"), Recorder("peek-oracle", family="oracle")
    results = compare(
        shapes, methods=[first, second, oracle], out_dir=tmp_path, noise=LEVELS, report=False, progress=False
    ).to_dict()
    assert len(first.seen) == 1 + 3 * 2  # one warm-up call, then 3 levels × 2 test images
    for (image_a, truth_a), (image_b, _), (image_o, truth_o) in zip(first.seen, second.seen, oracle.seen, strict=True):
        np.testing.assert_array_equal(image_a, image_b)
        np.testing.assert_array_equal(image_a, image_o)
        assert truth_a is None and truth_o is not None
    test = SegmentationFolder(shapes, split="test")
    # after the warm-up: clean images exactly, then the seeded noise of compare's seed
    np.testing.assert_array_equal(first.seen[1][0], test[0].image)
    np.testing.assert_array_equal(first.seen[3][0], apply_noise(test[0].image, LEVELS[0], seed=0, index=0))
    np.testing.assert_array_equal(oracle.seen[1][1], test[0].mask)
    assert [method["oracle"] for method in results["methods"]] == [False, False, True]


def test_a_different_seed_gives_different_noise(shapes: Path, tmp_path: Path) -> None:
    runs = []
    for seed in (0, 1):
        recorder = Recorder("r")
        compare(shapes, methods=[recorder], out_dir=tmp_path / str(seed), noise=LEVELS[:1], seed=seed,
                report=False, progress=False, num_examples=0)  # fmt: skip
        runs.append(recorder.seen)
    np.testing.assert_array_equal(runs[0][1][0], runs[1][1][0])  # clean: the same
    assert not np.array_equal(runs[0][3][0], runs[1][3][0])  # noisy: another draw


def test_bad_inputs_are_one_line_errors(shapes: Path, tmp_path: Path) -> None:
    with pytest.raises(PixelwiseError, match="neither a folder nor a built-in"):
        compare(tmp_path / "missing", methods=[Constant(0)], out_dir=tmp_path / "out", progress=False)
    with pytest.raises(PixelwiseError, match="listed twice"):
        build_methods([Constant(0), Constant(1)])
    # an oracle reads the test truth: its name must say so, the one way every oracle is named
    with pytest.raises(PixelwiseError, match=r"'peek' is an oracle .* end its name in '-oracle'"):
        build_methods([Recorder("peek", family="oracle")])
    assert [method.name for method in build_methods(["otsu-oracle"])] == [oracle_name("otsu")]
    no_masks = tmp_path / "no-masks"
    (no_masks / "images").mkdir(parents=True)
    test_image = next((shapes / "test" / "images").iterdir())
    (no_masks / "images" / test_image.name).write_bytes(test_image.read_bytes())
    with pytest.raises(PixelwiseError, match="masks"):
        compare(no_masks, methods=[Constant(0)], out_dir=tmp_path / "out", progress=False)
    file = tmp_path / "a-file"
    file.write_text("x")
    with pytest.raises(PixelwiseError, match="not a folder"):
        compare(shapes, methods=[Constant(0)], out_dir=file, progress=False)


def test_compare_command_with_classical_methods_and_oracle(shapes: Path, tmp_path: Path, cli: Any) -> None:
    out = tmp_path / "report"
    result = cli("compare", shapes, "--out", out, "--methods", "otsu,multi_otsu", "--oracle", "--sigmas", "0,0.1",
                 "--salt-pepper", "", "--examples", "1", "--classical-fit-images", "3")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"report: {(out / 'report.html').resolve()}" in result.stdout
    for name in ("report.html", "report.md", "results.json", "figures/methods.png", "figures/noise.png",
                 "figures/examples.png"):  # fmt: skip
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    families = {method["name"]: (method["family"], method["oracle"]) for method in results["methods"]}
    assert families == {
        "otsu": ("classical", False),
        "multi_otsu": ("classical", False),
        "otsu-oracle": ("oracle", True),
        "multi_otsu-oracle": ("oracle", True),
    }
    # the oracle labels regions with the truth: it can only do better than the fitted labeler on pixels
    for name in ("otsu", "multi_otsu"):
        honest = next(m for m in results["methods"] if m["name"] == name)["metrics"]["pixel_accuracy"]
        oracle = next(m for m in results["methods"] if m["name"] == f"{name}-oracle")["metrics"]["pixel_accuracy"]
        assert oracle >= honest
    assert [method["train_images"] for method in results["methods"]] == [3, 3, 0, 0]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "ORACLE" in page and "Classical labelers fitted on 3 of the 8 training images" in page


def test_compare_command_refuses_bad_input_in_one_line(shapes: Path, tmp_path: Path, cli: Any) -> None:
    result = cli("compare", shapes, "--out", tmp_path / "r", "--methods", "otsu,magic")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "unknown method 'magic'" in result.stderr
    result = cli("compare", shapes, "--out", tmp_path / "r", "--methods", "otsu", "--sigmas", "0,abc")
    assert result.returncode == 2 and "--sigmas" in result.stderr
    result = cli("compare", shapes, "--out", tmp_path / "r", "--methods", "cnn", "--set", "epochs=zero")
    assert result.returncode == 2 and "epochs" in result.stderr


@pytest.mark.slow
def test_networks_are_trained_kept_and_reusable(shapes: Path, tmp_path: Path) -> None:
    from pixelwise.inference.predictor import Predictor
    from pixelwise.report import read_example

    budget = {"epochs": 1, "batch_size": 4, "crop_size": 32, "tile_size": 32}
    results = compare(shapes, methods=["cnn", "adversarial"], out_dir=tmp_path, train_options=budget,
                      noise=LEVELS[:1], num_examples=1, progress=False).to_dict()  # fmt: skip
    cnn, adversarial = results["methods"]
    assert (cnn["family"], adversarial["family"]) == ("cnn", "adversarial")
    assert cnn["checkpoint"] == "models/cnn/best.pt" and adversarial["checkpoint"] == "models/adversarial/best.pt"
    assert results["budget"]["epochs"] == 1 and "adversarial_weight" not in results["budget"]
    assert results["torch_threads"] >= 1
    assert "0.01 × adversarial" in adversarial["description"]
    # the kept checkpoint predicts exactly what the report shows: it can be reused with `predict`
    predictor = Predictor.load(tmp_path / cnn["checkpoint"])
    image = SegmentationFolder(shapes, split="test")[0].image
    (example,) = [entry for entry in results["examples"] if entry["noise"] == "clean"]
    np.testing.assert_array_equal(
        predictor.predict_labels(image), read_example(tmp_path / example["predictions"]["cnn"])
    )
    assert (tmp_path / "report.html").is_file()


@pytest.mark.slow
def test_demo_falls_back_to_shapes_without_fashion_mnist(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pixelwise.cli.compare as command
    import pixelwise.data.builtin.fashion as fashion
    from pixelwise.classical import list_methods

    def missing(source: Any = None) -> Path:
        raise PixelwiseError("Fashion-MNIST files not found in /nowhere")

    monkeypatch.setattr(fashion, "fashion_source", missing)
    monkeypatch.setenv("PIXELWISE_CACHE", str(tmp_path / "cache"))
    # the demo's wiring with a budget of seconds
    monkeypatch.setattr(command, "FALLBACK_DATASET_OPTIONS", {"size": 32, "count": 4})
    monkeypatch.setattr(
        command, "FALLBACK_TRAIN_OPTIONS", {"epochs": 1, "batch_size": 2, "crop_size": 32, "tile_size": 32}
    )
    monkeypatch.setattr(command, "DEMO_TEST_LIMIT", 1)
    import torch

    # the demo's own default (one thread) would change torch's setting for the rest of the test session
    result = cli("demo", "--out", tmp_path / "demo", "--threads", str(torch.get_num_threads()))
    assert result.returncode == 0, result.stderr
    assert "note: running the demo on the built-in 'shapes' scenes instead" in result.stderr
    assert f"report: {(tmp_path / 'demo' / 'report.html').resolve()}" in result.stdout.splitlines()
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    from pixelwise.report.demo_table import demo_table
    from pixelwise.report.results import ComparisonResults

    # the table the README carries, printed last and rendered from the results.json the run wrote
    assert result.stdout.rstrip().endswith(demo_table(ComparisonResults.from_dict(results)).rstrip())
    classical = list_methods()
    # every classical method, the two networks, then the oracle bound of every classical method
    assert [method["name"] for method in results["methods"]] == [
        *classical,
        "cnn",
        "adversarial",
        *(f"{name}-oracle" for name in classical),
    ]
    assert all(method["family"] == "oracle" for method in results["methods"] if method["name"].endswith("-oracle"))


def test_a_dataset_without_val_is_compared(shapes: Path, tmp_path: Path) -> None:
    import shutil

    data = tmp_path / "no-val"
    for split in ("train", "test"):
        shutil.copytree(shapes / split, data / split)
    shutil.copy(shapes / "classes.yaml", data / "classes.yaml")
    results = compare(
        data, methods=[Constant(0)], out_dir=tmp_path / "out", noise=[], report=False, progress=False
    ).to_dict()
    assert results["dataset"]["splits"] == {"train": 8, "val": 0, "test": 2}
    assert [level["key"] for level in results["noise"]] == ["clean"]
    with pytest.raises(PixelwiseError, match="test limit 0"):
        compare(data, methods=[Constant(0)], out_dir=tmp_path / "out", test_limit=0, progress=False)
