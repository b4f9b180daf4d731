"""The runtime every voicebot service stands on: serve(), dial(), settings, errors, audio."""

from mesh.client import DialOptions, dial
from mesh.errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    MeshError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from mesh.server import HealthControl, MeshServer, Service, ServicerApp, serve
from mesh.settings import ServiceSettings, SettingsError, setting
from mesh.workers import WorkerBridge

__all__ = [
    "AlreadyExists",
    "DeadlineExceeded",
    "DialOptions",
    "FailedPrecondition",
    "HealthControl",
    "InvalidArgument",
    "MeshError",
    "MeshServer",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Service",
    "ServiceSettings",
    "ServicerApp",
    "SettingsError",
    "Unauthenticated",
    "Unavailable",
    "WorkerBridge",
    "dial",
    "serve",
    "setting",
]
