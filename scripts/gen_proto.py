"""Generate the Python code for proto/ into ykt/v1/, reproducibly.

`--check` regenerates into a temporary folder and fails when the result
differs from the checked-in files, so a stale generated module cannot land.
The generator versions are pinned in pyproject.toml.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE = Path("ykt") / "v1"
INIT_TEXT = '"""Generated from proto/ykt/v1 by scripts/gen_proto.py. Do not edit."""\n'


def generate(out_root: Path) -> Path:
    sources = sorted(
        str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto")
    )
    out_root.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        *sources,
    ]
    subprocess.run(cmd, check=True, cwd=ROOT)
    package_dir = out_root / PACKAGE
    (out_root / "ykt" / "__init__.py").write_text(INIT_TEXT)
    (package_dir / "__init__.py").write_text(INIT_TEXT)
    (package_dir / "py.typed").write_text("")
    return package_dir


def differences(left: Path, right: Path) -> list[str]:
    names = sorted({p.name for p in left.iterdir()} | {p.name for p in right.iterdir()})
    changed = []
    for name in names:
        if name == "__pycache__":
            continue
        a, b = left / name, right / name
        if not (a.exists() and b.exists()) or not filecmp.cmp(a, b, shallow=False):
            changed.append(name)
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", help="the package folder, e.g. ykt/v1")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    target = ROOT / args.target

    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        if args.check:
            changed = differences(fresh, target) if target.exists() else ["(missing)"]
            if changed:
                print("generated code is stale; run `make proto`:", ", ".join(changed))
                return 1
            print("generated code is up to date")
            return 0
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(fresh, target, ignore=shutil.ignore_patterns("__pycache__"))
        (ROOT / "ykt" / "__init__.py").write_text(INIT_TEXT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
