"""Audit the installed Python packages for known vulnerabilities with pip-audit.

Runs ``pip-audit --local`` over this virtual environment (what ``make`` installed from
pyproject.toml) against the PyPI advisory database (or OSV with ``--service osv``) and fails when a
package has an advisory that is not in ``IGNORED``, each of which names why it cannot be fixed.

pip-audit needs the vulnerability service over the network. When no package could be checked
(the service is unreachable, or the index is a mirror without PyPI's per-version JSON API), the
audit is reported as SKIPPED and exits 0, so offline CI still passes; ``--strict`` (or
``VOICEBOT_AUDIT_STRICT=1``) makes that a failure.

    .venv/bin/python scripts/audit.py [--service pypi|osv] [--strict]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

# Advisories known and accepted, by id, with the reason. Keep it short and dated.
IGNORED: dict[str, str] = {}

# Packages of this repository itself: never on PyPI, so never audited.
OWN = {"voicebot-mesh"}


def _pip_audit() -> str:
    beside = Path(sys.executable).with_name("pip-audit")
    found = str(beside) if beside.exists() else shutil.which("pip-audit")
    if found is None:
        sys.exit("audit: pip-audit is not installed: `.venv/bin/pip install -e '.[dev]'`")
    return found


def run_audit(service: str) -> tuple[dict[str, Any] | None, str]:
    """Run pip-audit; its JSON report (None when it produced none) and its stderr."""
    command = [_pip_audit(), "--local", "--format", "json", "--progress-spinner", "off", "--vulnerability-service"]
    command.append(service)
    for vuln_id in IGNORED:
        command += ["--ignore-vuln", vuln_id]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    try:
        return json.loads(done.stdout), done.stderr
    except json.JSONDecodeError:
        return None, done.stderr or done.stdout


def main() -> int:
    """Audit and print a summary; the exit status CI reads."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", choices=("pypi", "osv"), default="pypi", help="vulnerability database")
    parser.add_argument(
        "--strict",
        action="store_true",
        default=os.environ.get("VOICEBOT_AUDIT_STRICT") == "1",
        help="fail (instead of skipping) when the vulnerability service cannot be reached",
    )
    args = parser.parse_args()
    report, errors = run_audit(args.service)
    skip_exit = 1 if args.strict else 0
    if report is None:
        last = errors.strip().splitlines()[-1:] or ["no output"]
        print(f"audit SKIPPED: pip-audit could not reach the {args.service} vulnerability service: {last[0]}")
        return skip_exit
    deps = [d for d in report.get("dependencies", []) if d.get("name") not in OWN]
    audited = [d for d in deps if "vulns" in d]
    skipped = [d for d in deps if "vulns" not in d]
    if not audited:
        reason = skipped[0].get("skip_reason", "") if skipped else "nothing installed"
        print(
            f"audit SKIPPED: none of {len(deps)} packages could be checked against the {args.service} "
            f"vulnerability service (first reason: {reason}); run where it is reachable"
        )
        return skip_exit
    found = [(d["name"], d["version"], v) for d in audited for v in d["vulns"] if v["id"] not in IGNORED]
    print(f"audit: {len(audited)} packages checked, {len(skipped)} not checkable, {len(IGNORED)} advisories ignored")
    for name in sorted(d["name"] for d in skipped):
        print(f"  not checked: {name}")
    for name, version, vuln in found:
        fixes = ", ".join(vuln.get("fix_versions", [])) or "no fix released"
        print(f"  VULNERABLE {name} {version}: {vuln['id']} (fixed in: {fixes})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
