"""Hugging Face tasks beyond the demo's encoder: image classification and causal LMs.

No pretrained image classifier or small causal LM ships as a wheel (DATA.md), so these build
tiny ones from real transformers configs (random weights); export must reproduce them
exactly all the same, on real photographs and on real text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from frugalml.errors import ExportError
from frugalml.export import export
from frugalml.export import exporters as exporters_module
from frugalml.export.huggingface import infer_task
from frugalml.export.samples import SAMPLE_TEXTS
from frugalml.export.simplify import run_onnx


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vit")
    config = ViTConfig(image_size=64, patch_size=16, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64, num_labels=5)
    ViTForImageClassification(config).save_pretrained(path)
    ViTImageProcessor(size={"height": 64, "width": 64}).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from frugalml.demo import default_model_dir

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("llama")
    config = LlamaConfig(vocab_size=30522, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=256)
    LlamaForCausalLM(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(default_model_dir()).save_pretrained(path)
    return path


def test_image_classifier_task_is_inferred_and_matches(vit_dir: Path, tmp_path: Path) -> None:
    from transformers import ViTForImageClassification

    assert infer_task(vit_dir) == "image-classification"
    record = export(vit_dir, tmp_path / "vit")
    assert record.exporter == "torch.onnx.dynamo" and record.output_names == ("logits",)
    from frugalml.export.samples import image_feeds

    feeds = image_feeds(vit_dir, None)
    model = ViTForImageClassification.from_pretrained(vit_dir).eval()
    with torch.no_grad():
        ref = model(pixel_values=torch.from_numpy(feeds[0]["pixel_values"])).logits.numpy()
    got = run_onnx(record.path, feeds[:1], ["logits"])[0]["logits"]
    assert got.shape == (2, 5) and np.abs(got - ref).max() <= 1e-5


def test_causal_lm_exports_logits_with_dynamic_sequence(llama_dir: Path, tmp_path: Path) -> None:
    assert infer_task(llama_dir) == "text-generation"
    record = export(llama_dir, tmp_path / "llm")
    assert record.input_names == ("input_ids", "attention_mask")
    assert all(c.passed for c in record.checks)
    # Validation ran the texts together and one by one: 3-word to ~110-token sequences.
    assert record.inputs_used == 2 * len(SAMPLE_TEXTS)


def test_optimum_is_the_last_fallback(vit_dir: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """With both torch exporters failing, Optimum's exporter produces the file, on record."""

    def broken(*_args: object) -> list[exporters_module.Exporter]:
        def fail(_path: Path) -> int:
            raise RuntimeError("simulated exporter crash")
        return [exporters_module.Exporter("torch.onnx.dynamo", fail),
                exporters_module.Exporter("torch.onnx.torchscript", fail)]

    monkeypatch.setattr("frugalml.export.torch_module.torch_exporters", broken)
    record = export(vit_dir, tmp_path / "vit")
    assert record.exporter == "optimum"
    assert [a.split(":")[0] for a in record.attempts] == ["torch.onnx.dynamo",
                                                          "torch.onnx.torchscript"]
    assert all(c.passed and c.max_abs_error <= 1e-4 for c in record.checks)


def test_unknown_task_is_refused(vit_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="Unknown task 'summarization'"):
        export(vit_dir, tmp_path / "x", task="summarization")
