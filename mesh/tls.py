"""TLS and mutual TLS credentials from PEM file paths."""

from __future__ import annotations

from pathlib import Path

import grpc

from mesh.settings import ServiceSettings, SettingsError


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SettingsError(f"cannot read {what} {path}: {exc.strerror}") from None


def server_credentials(settings: ServiceSettings) -> grpc.ServerCredentials | None:
    """Server credentials when TLS is configured, else None (plaintext).

    Raises:
        SettingsError: only one of cert and key is set, a file is unreadable, or client auth
            is asked for without a CA to check client certificates against.
    """
    if not (settings.tls_cert_file or settings.tls_key_file):
        return None
    if not (settings.tls_cert_file and settings.tls_key_file):
        raise SettingsError("TLS needs both TLS_CERT_FILE and TLS_KEY_FILE")
    if settings.tls_client_auth and not settings.tls_ca_file:
        raise SettingsError("TLS_CLIENT_AUTH needs TLS_CA_FILE to verify client certificates")
    key = _read(settings.tls_key_file, "TLS key")
    cert = _read(settings.tls_cert_file, "TLS certificate")
    ca = _read(settings.tls_ca_file, "TLS CA bundle") if settings.tls_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=settings.tls_client_auth
    )


def channel_credentials(ca_file: str, cert_file: str = "", key_file: str = "") -> grpc.ChannelCredentials:
    """Client credentials verifying the server with ``ca_file`` (system roots when empty).

    A client certificate is presented when ``cert_file`` and ``key_file`` are given (mTLS).
    """
    ca = _read(ca_file, "TLS CA bundle") if ca_file else None
    cert = _read(cert_file, "TLS client certificate") if cert_file else None
    key = _read(key_file, "TLS client key") if key_file else None
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
