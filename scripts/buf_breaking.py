"""Run ``buf breaking`` against the previous commit's protos (FILE rules).

The reference is ``$BUF_AGAINST`` (a git ref, default ``HEAD~1``). Skipped with a note when that
commit has no protos yet or git history is not available (a shallow or exported tree).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    """Compare protos/ with the reference commit; exit non-zero on a breaking change."""
    ref = os.environ.get("BUF_AGAINST", "HEAD~1")
    probe = subprocess.run(
        ["git", "cat-file", "-e", f"{ref}:protos/buf.yaml"], cwd=ROOT, capture_output=True, check=False
    )
    if probe.returncode != 0:
        print(f"buf breaking: skipped ({ref} has no protos/buf.yaml)")
        return
    buf = Path(sysconfig.get_path("scripts")) / "buf"
    command = [str(buf) if buf.exists() else (shutil.which("buf") or "buf")]
    command += ["breaking", "protos", "--against", f".git#ref={ref},subdir=protos"]
    result = subprocess.run(command, cwd=ROOT, check=False)
    if result.returncode == 0:
        print(f"buf breaking: no breaking change against {ref}")
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
