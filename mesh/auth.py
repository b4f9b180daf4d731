"""Bearer-token authentication for RPCs and the admin RPC list."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from mesh.settings import ServiceSettings, read_secret

AUTHORIZATION = "authorization"


@dataclass(frozen=True)
class TokenPolicy:
    """Which token an RPC needs.

    ``token`` guards every RPC except health and reflection; ``admin_token`` guards the
    methods in ``admin_methods`` (full method names, ``/voicebot.v1.CacheService/Clear``).
    An empty token means that check is off.
    """

    token: str
    admin_token: str
    admin_methods: frozenset[str]

    @classmethod
    def from_settings(cls, settings: ServiceSettings, admin_methods: frozenset[str]) -> TokenPolicy:
        """Read the tokens (files win over values); the admin token defaults to the token."""
        token = read_secret(settings.auth_token, settings.auth_token_file)
        admin = read_secret(settings.admin_token, settings.admin_token_file) or token
        return cls(token=token, admin_token=admin, admin_methods=admin_methods)

    def required(self, method: str) -> str:
        """The token ``method`` needs, or empty when it is open."""
        if method.startswith(("/grpc.health.v1.", "/grpc.reflection.")):
            return ""
        if method in self.admin_methods:
            return self.admin_token
        return self.token

    @staticmethod
    def matches(presented: str, expected: str) -> bool:
        """Compare in constant time, so timing does not leak the token."""
        return hmac.compare_digest(presented.encode(), expected.encode())


def bearer(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str:
    """Extract the bearer token from invocation metadata, or empty."""
    for key, value in metadata or ():
        if key == AUTHORIZATION and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer ") :]
    return ""
