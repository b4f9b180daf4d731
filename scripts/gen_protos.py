"""Generate the voicebot.v1 SDK (``voicebot/v1/``) from ``protos/``.

The one way the generated code is made: ``python scripts/gen_protos.py``. ``--check``
regenerates into a temporary folder and exits 1 when the committed files differ, which is
how CI catches drift. The output is committed and never edited by hand.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGE_DIR = Path("voicebot") / "v1"
INIT_TEXT = '"""voicebot.v1: generated gRPC stubs. Made by scripts/gen_protos.py; do not edit."""\n'


def _plugin(name: str) -> str:
    """Return the path of a protoc plugin installed beside this interpreter."""
    path = Path(sysconfig.get_path("scripts")) / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            sys.exit(f"{name} not found: install the dev extra (pip install -e '.[dev]')")
        return found
    return str(path)


def generate(out_dir: Path) -> None:
    """Run protoc over every proto, writing the package tree under ``out_dir``."""
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
    well_known = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    (out_dir / PACKAGE_DIR / "__init__.py").write_text(INIT_TEXT)
    (out_dir / PACKAGE_DIR / "py.typed").write_text("")


def _differences(expected: Path, actual: Path) -> list[str]:
    """List files that differ between two generated trees, by relative path."""
    names = {p.name for p in expected.iterdir()} | {p.name for p in actual.iterdir()}
    return sorted(
        name
        for name in names
        if not (expected / name).exists()
        or not (actual / name).exists()
        or not filecmp.cmp(expected / name, actual / name, shallow=False)
    )


def main() -> None:
    """Generate the SDK, or with ``--check`` fail when the committed SDK has drifted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if voicebot/v1 differs from protos/")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generate(out)
        target = ROOT / PACKAGE_DIR
        if args.check:
            if not target.exists():
                sys.exit("voicebot/v1 is missing: run python scripts/gen_protos.py")
            drift = _differences(out / PACKAGE_DIR, target)
            if drift:
                sys.exit(
                    f"voicebot/v1 is out of date with protos/ ({', '.join(drift)}): run python scripts/gen_protos.py"
                )
            print("voicebot/v1 matches protos/")
            return
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(out / PACKAGE_DIR, target)
        print(f"generated {len(list(target.iterdir()))} files in {PACKAGE_DIR}")


if __name__ == "__main__":
    main()
