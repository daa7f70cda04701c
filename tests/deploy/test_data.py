"""deploy's DATA: the reader options `frugal calibrate` takes come through `frugal deploy`, and
each kind of data gets only the options it takes, plus what the model decides."""

from __future__ import annotations

import json
from pathlib import Path

from frugalml.cli import _parser
from frugalml.cli.deploy import options_from
from frugalml.deploy.data import open_data, reader_options
from tests.robustness import makers as mk


def test_image_options_from_the_deploy_command_reach_the_descriptor(tmp_path: Path) -> None:
    images = mk.image_folder(tmp_path / "imgs", count=8)
    args = _parser().parse_args([
        "deploy", "model.onnx", str(images), "--mean", "0,0,0", "--std", "1,1,1",
        "--scale", "1/255", "--color", "bgr", "--letterbox", "64", "--input-name", "images",
        "--num", "4"])
    options = options_from(args)
    assert options.calibration_items == 4
    given = dict(options.data_options)
    assert {k: given[k] for k in ("mean", "std", "scale", "color", "letterbox", "input_name")} \
        == {"mean": "0,0,0", "std": "1,1,1", "scale": "1/255", "color": "bgr", "letterbox": 64,
            "input_name": "images"}
    data, descriptor = open_data(images, ["images"], given, tokenizer=None,
                                 language_model=False, calibration_items=4,
                                 out_dir=tmp_path / "cal")
    feeds, _ = next(data.batches("evaluation", batch_size=4))
    assert feeds["images"].shape == (4, 3, 64, 64)  # letterboxed to 64 x 64, NCHW
    recorded = json.loads(descriptor.read_text())["options"]
    assert recorded["letterbox"] == 64 and recorded["color"] == "bgr"
    assert "column" not in recorded and "tokenizer" not in recorded  # text flags left out


def test_each_kind_of_data_gets_its_own_options() -> None:
    given = {"preset": "tflite", "column": "review", "window": None, "input_name": None}
    folder = reader_options(Path("."), ["pixel_values"], given, tokenizer=None,
                            language_model=False)
    assert folder == {"preset": "tflite", "input_name": "pixel_values"}
    text = reader_options(Path("t.csv"), ["input_ids", "attention_mask"], given,
                          tokenizer=Path("tok"), language_model=False)
    assert text == {"column": "review", "tokenizer": "tok", "label_column": "auto",
                    "input_names": ["input_ids", "attention_mask"]}
    windows = reader_options(Path("t.txt"), ["input_ids", "attention_mask"], given,
                             tokenizer=Path("tok"), language_model=True)
    assert windows == {"tokenizer": "tok", "window": 128}
