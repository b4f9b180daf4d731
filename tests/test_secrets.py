"""No secret is written into the repository; every secret setting can come from a mounted file.

Scans every file git tracks (code, Dockerfile, compose, Helm chart, deploy manifests, docs) for
private keys and well-known token formats, and the deployment files for a secret-named variable set
to a literal. Development certificates are made at run time by ``scripts/make_dev_certs.py`` into
an output folder that git ignores.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import subprocess
from pathlib import Path

import pytest

from mesh.settings import ServiceSettings
from voicebot.catalog import SERVICES

ROOT = Path(__file__).resolve().parent.parent

# Formats that are secrets wherever they appear.
KEY_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "OpenAI-style key": re.compile(r"\bsk-[A-Za-z0-9]{32,}\b"),
}
# In deployment files, a secret-named variable must be empty, a ${VAR} reference or a secret ref.
SECRET_NAME = r"[A-Z0-9_]*(?:TOKEN|PASSWORD|SECRET|API_KEY)"
ASSIGNED = re.compile(rf"^\s*-?\s*({SECRET_NAME})\s*[:=]\s*(.*)$", re.MULTILINE)
ALLOWED_VALUE = re.compile(r"^(?:|\"\"|''|\$\{[A-Z0-9_]+(?::-)?\}|\{\{.*\}\}|#.*)$")
DEPLOY_SUFFIXES = (".yml", ".yaml", ".env", ".tpl", ".toml")
DEPLOY_NAMES = ("Dockerfile",)


def tracked_files() -> list[Path]:
    """Every file git tracks, that exists in the work tree."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    paths = [ROOT / name for name in out.decode().split("\0") if name]
    return [path for path in paths if path.is_file()]


def test_no_private_keys_or_tokens_in_tracked_files() -> None:
    found = []
    for path in tracked_files():
        text = path.read_bytes().decode("utf-8", errors="replace")
        for kind, pattern in KEY_PATTERNS.items():
            for match in pattern.finditer(text):
                if path.name == "test_secrets.py":
                    continue
                found.append(f"{path.relative_to(ROOT)}: {kind} at offset {match.start()}")
    assert not found, "\n".join(found)


def test_deployment_files_set_no_secret_literals() -> None:
    found = []
    for path in tracked_files():
        if not (path.suffix in DEPLOY_SUFFIXES or path.name in DEPLOY_NAMES):
            continue
        for match in ASSIGNED.finditer(path.read_text(errors="replace")):
            value = match.group(2).strip()
            if not ALLOWED_VALUE.match(value):
                found.append(f"{path.relative_to(ROOT)}: {match.group(1)} = {value[:40]}")
    assert not found, "\n".join(found)


def test_dev_certificates_and_keys_are_not_tracked() -> None:
    pem = [p.relative_to(ROOT) for p in tracked_files() if p.suffix in (".pem", ".key", ".p12", ".pfx", ".crt")]
    assert not pem
    ignored = subprocess.run(["git", "check-ignore", "-q", ".voicebot/certs/ca-key.pem"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, "the dev-cert output folder .voicebot/certs must be git-ignored"


def _settings_classes() -> list[type[ServiceSettings]]:
    classes = []
    for info in SERVICES:
        module = importlib.import_module(f"{info.package}.config")
        classes += [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, ServiceSettings) and obj is not ServiceSettings
        ]
    return classes


@pytest.mark.parametrize("settings_class", _settings_classes(), ids=lambda cls: cls.__name__)
def test_every_secret_setting_has_a_file_variant(settings_class: type[ServiceSettings]) -> None:
    names = {f.name for f in dataclasses.fields(settings_class)}
    secrets = [n for n in names if re.search(r"(token|password|secret|api_key)$", n)]
    missing = [n for n in secrets if f"{n}_file" not in names]
    assert not missing, f"{settings_class.__name__}: no *_FILE variant for {missing}"
    assert {"auth_token_file", "admin_token_file"} <= names
