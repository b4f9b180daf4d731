"""Render every service's settings into ``docs/configuration.md``; ``--check`` fails on drift.

The settings classes are the single source: each field's ``setting(doc=...)`` becomes a row.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mesh.settings import ServiceSettings  # noqa: E402
from voicebot.catalog import SERVICES  # noqa: E402

TARGET = ROOT / "docs" / "configuration.md"

HEADER = """# Configuration

Every service reads its settings from environment variables named `VOICEBOT_<SERVICE>_<SETTING>`
(`VOICEBOT_STT_PORT`). Settings marked *shared* also fall back to `VOICEBOT_<SETTING>`, so one
variable (`VOICEBOT_TLS_CERT_FILE`, `VOICEBOT_AUTH_TOKEN`) configures the whole mesh. Secrets come
only from the environment or mounted files (`*_FILE`). Tracing follows the standard
OpenTelemetry variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_TRACES_EXPORTER`, `OTEL_SERVICE_NAME`).

This file is generated from the settings classes by `python scripts/gen_settings_doc.py`; CI fails
when it is out of date.
"""


def _settings_class(package: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"{package}.config")
    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, ServiceSettings) and obj is not ServiceSettings
    ]
    if len(classes) != 1:
        raise SystemExit(f"{package}.config must define exactly one ServiceSettings subclass")
    return classes[0]


def _default(value: object) -> str:
    if isinstance(value, str):
        return f"`{value}`" if value else "(empty)"
    if isinstance(value, tuple):
        return f"`{','.join(map(str, value))}`" if value else "(empty)"
    return f"`{value}`"


def render() -> str:
    """The whole markdown document."""
    out = [HEADER]
    for info in SERVICES:
        cls = _settings_class(info.package)
        out.append(f"\n## {info.name} (`{info.package}`)\n")
        if cls.__doc__:
            out.append(cls.__doc__.strip().splitlines()[0] + "\n")
        out.append("| variable | default | shared | meaning |\n|---|---|---|---|")
        for field in dataclasses.fields(cls):
            doc = field.metadata.get("doc", "").replace("|", "\\|")
            shared = "yes" if field.metadata.get("shared") else ""
            out.append(f"| `{cls.env_name(field.name)}` | {_default(field.default)} | {shared} | {doc} |")
    return "\n".join(out) + "\n"


def main() -> None:
    """Write the document, or with ``--check`` fail when it differs from the settings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not TARGET.exists() or TARGET.read_text() != text:
            raise SystemExit("docs/configuration.md is out of date: run python scripts/gen_settings_doc.py")
        print("docs/configuration.md matches the settings")
        return
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
