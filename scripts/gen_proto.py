"""Regenerate the Python code for proto/*.proto into engine_proto/.

    python scripts/gen_proto.py            # rewrite engine_proto/
    python scripts/gen_proto.py --check    # exit 1 and name the files if engine_proto/ is stale

The .proto files are mapped to the virtual path `engine_proto/` so that the generated gRPC
modules import their messages as `from engine_proto import ..._pb2` (a package import) rather
than as top-level modules.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PACKAGE = "engine_proto"
OUT_DIR = ROOT / PACKAGE
# Lines that carry the generator's version, not the content of the .proto files.
_VERSION_LINE = re.compile(r"^(# Protobuf Python Version:.*|GRPC_GENERATED_VERSION = .*)$", re.M)
_INIT = '"""Generated protocol code: do not edit; run `python scripts/gen_proto.py`."""\n'


def generate(out_root: Path) -> Path:
    """Run protoc over proto/*.proto; return the generated package directory under out_root."""
    import grpc_tools
    from grpc_tools import protoc  # a build-time tool: imported only when generating

    include = Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(p.name for p in PROTO_DIR.glob("*.proto"))
    args = [
        "protoc",
        f"--proto_path={PACKAGE}={PROTO_DIR}",
        f"--proto_path={include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *(f"{PACKAGE}/{name}" for name in protos),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {protos}")
    package = out_root / PACKAGE
    (package / "__init__.py").write_text(_INIT)
    return package


def _normalized(text: str) -> str:
    return _VERSION_LINE.sub("", text)


def stale_files(generated: Path, committed: Path) -> list[str]:
    """Names of files that differ between a fresh generation and the committed package."""
    names = {p.name for p in generated.iterdir() if p.is_file()}
    names |= {p.name for p in committed.glob("*.py*") if p.is_file()}
    stale = []
    for name in sorted(names):
        fresh, old = generated / name, committed / name
        if not fresh.exists() or not old.exists() or _normalized(fresh.read_text()) != _normalized(old.read_text()):
            stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        stale = stale_files(fresh, OUT_DIR)
        if args.check:
            if stale:
                print(f"{PACKAGE}/ is stale: {', '.join(stale)}; run python scripts/gen_proto.py")
                return 1
            return 0
        OUT_DIR.mkdir(exist_ok=True)
        for old in OUT_DIR.glob("*.py*"):
            old.unlink()
        for path in fresh.iterdir():
            if path.is_file():
                (OUT_DIR / path.name).write_text(path.read_text())
    print(f"regenerated {PACKAGE}/ ({len(stale)} file(s) changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
