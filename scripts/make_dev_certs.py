"""Make development certificates for TLS and mutual TLS across the mesh.

Writes into the output folder (default ``.voicebot/certs``): ``ca.pem``/``ca-key.pem`` (a
self-signed CA), ``server.pem``/``server-key.pem`` (valid for localhost, 127.0.0.1 and every
service's compose and Kubernetes names; good as server and as client, since services dial each
other) and ``client.pem``/``client-key.pem``. Then:

    export VOICEBOT_TLS_CERT_FILE=.voicebot/certs/server.pem VOICEBOT_TLS_KEY_FILE=.voicebot/certs/server-key.pem
    export VOICEBOT_TLS_CA_FILE=.voicebot/certs/ca.pem VOICEBOT_TLS_CLIENT_AUTH=true

For development only: the keys are unencrypted and the CA signs whatever this script asks.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICE_NAMES = ("orchestrator", "stt", "tts", "llm", "cache", "analytics")


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "voicebot dev"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write(folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    (folder / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = folder / f"{stem}-key.pem"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)


def _issue(
    subject: str,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    usages: Sequence[x509.ObjectIdentifier],
    sans: Sequence[x509.GeneralName],
    days: int,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def make_certs(folder: Path, days: int = 30, extra_hosts: Sequence[str] = ()) -> None:
    """Write a CA, a server and a client certificate with their keys into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    ca_name = _name("voicebot dev CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    hosts = ["localhost", *SERVICE_NAMES, *(f"voicebot-{s}" for s in SERVICE_NAMES), *extra_hosts]
    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
    sans += [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
    # Services serve and dial each other with the same certificate, so it is good for both ends.
    both = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
    server, server_key = _issue("voicebot server", ca_name, ca_key, both, sans, days)
    client, client_key = _issue("voicebot client", ca_name, ca_key, (ExtendedKeyUsageOID.CLIENT_AUTH,), [], days)
    _write(folder, "ca", ca, ca_key)
    _write(folder, "server", server, server_key)
    _write(folder, "client", client, client_key)


def main() -> None:
    """Parse arguments and write the certificates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(".voicebot/certs"), help="output folder")
    parser.add_argument("--days", type=int, default=30, help="validity in days")
    parser.add_argument("--host", action="append", default=[], help="extra DNS name for the server certificate")
    args = parser.parse_args()
    make_certs(args.out, args.days, args.host)
    print(f"wrote ca, server and client certificates to {args.out}")


if __name__ == "__main__":
    main()
