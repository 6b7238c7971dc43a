"""The committed protocol code matches what scripts/gen_proto.py generates from proto/."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import ROOT


def _gen_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "scripts" / "gen_proto.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gen = _gen_module()
    return gen.generate(tmp_path_factory.mktemp("proto"))  # type: ignore[no-any-return]


class TestGeneratedCode:
    def test_committed_code_is_fresh(self, fresh: Path) -> None:
        """engine_proto/ is what protoc makes of proto/ today (run scripts/gen_proto.py if not)."""
        assert _gen_module().stale_files(fresh, ROOT / "engine_proto") == []

    def test_an_edit_is_detected(self, fresh: Path, tmp_path: Path) -> None:
        """A generated file that differs from the .proto source is named as stale."""
        committed = tmp_path / "engine_proto"
        shutil.copytree(ROOT / "engine_proto", committed)
        target = committed / "strategy_pb2.pyi"
        target.write_text(target.read_text() + "\nclass Extra: ...\n")
        assert _gen_module().stale_files(fresh, committed) == ["strategy_pb2.pyi"]

    def test_a_missing_file_is_detected(self, fresh: Path, tmp_path: Path) -> None:
        """A generated module missing from the committed package is named as stale."""
        committed = tmp_path / "engine_proto"
        shutil.copytree(ROOT / "engine_proto", committed)
        (committed / "order_execution_pb2_grpc.py").unlink()
        assert _gen_module().stale_files(fresh, committed) == ["order_execution_pb2_grpc.py"]
