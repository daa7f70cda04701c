"""Supply chain: a bundle is data. Loading and running one never imports code shipped in it,
and a user can pin a bundle to the manifest digest they trust."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from frugalml import runtime
from frugalml.cli import main
from frugalml.errors import BundleError
from tests.robustness import makers as mk

HOOK = "import pathlib; pathlib.Path(__file__).with_name('HOOK_RAN').write_text('ran')\n"


def test_code_shipped_inside_a_bundle_is_never_run(tmp_path: Path) -> None:
    """Even hashed into the manifest (a consistent, malicious bundle), .py files stay inert."""
    bundle = mk.tiny_bundle(tmp_path / "bundle")
    for name in ("sitecustomize.py", "__init__.py", "model_hooks.py"):
        mk.replace_file(bundle, name, HOOK.encode(), rehash=True)
    mk.edit_manifest(bundle, lambda m: m.update(hooks="model_hooks", plugin="model_hooks.py"))
    with runtime.load(bundle) as model:
        model.self_check()
        model.run(mk.MODEL_IO)
    with runtime.load(bundle, backend="openvino") as model:
        model.self_check()
    assert not (bundle / "HOOK_RAN").exists()
    assert "model_hooks" not in sys.modules and str(bundle) not in sys.path


def test_pinned_digest_accepts_the_same_bundle_and_refuses_a_rebuilt_one(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bundle = mk.tiny_bundle(tmp_path / "bundle")
    assert main(["verify", str(bundle)]) == 0
    digest = capsys.readouterr().out.split("manifest sha256 ")[1].split()[0]
    assert digest == runtime.manifest_digest(bundle)
    assert main(["verify", str(bundle), "--digest", digest.upper()]) == 0
    assert "(matches --digest)" in capsys.readouterr().out
    runtime.load(bundle, expected_digest=digest).close()
    # metrics are not in the file hashes, but the pinned manifest covers them
    mk.edit_manifest(bundle, lambda m: m["metrics"].update(top1=0.99))
    runtime.load(bundle).close()
    with pytest.raises(BundleError, match="not the one you pinned"):
        runtime.load(bundle, expected_digest=digest)
