"""Herald's exception tree.

Every error Herald raises on purpose derives from :class:`HeraldError` and carries a
stable ``code`` (used in API error objects) and an HTTP ``status``::

    HeraldError
    ├── ConfigurationError        bad settings, YAML rules or plugin files
    │   └── PluginLoadError       a plugin file/module failed to import
    ├── MessageError              a message was refused (nothing stored)
    │   ├── UnknownMessageType    type not in the catalog                 (422)
    │   ├── MessageValidationError payload does not match the schema      (422)
    │   └── PayloadTooLarge       payload over the 64 KiB limit           (413)
    ├── NotFound                  message, job, sensor or dead letter id  (404)
    ├── Conflict                  state does not allow the operation      (409)
    ├── AuthError                 missing or wrong API key                (401)
    ├── BackendError              an adapter failed (database, executor)  (503)
    │   └── BackendUnavailable    optional dependency missing / bad URL
    └── JobError                  job parameters invalid or job crashed
"""

from __future__ import annotations

from typing import Any


class HeraldError(Exception):
    """Base class of all Herald errors."""

    code = "herald_error"
    status = 500

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigurationError(HeraldError):
    code = "configuration_error"
    status = 400


class PluginLoadError(ConfigurationError):
    code = "plugin_load_error"


class MessageError(HeraldError):
    code = "invalid_message"
    status = 422


class UnknownMessageType(MessageError):
    code = "unknown_message_type"


class MessageValidationError(MessageError):
    code = "invalid_payload"


class PayloadTooLarge(MessageError):
    code = "payload_too_large"
    status = 413


class NotFound(HeraldError):
    code = "not_found"
    status = 404


class Conflict(HeraldError):
    code = "conflict"
    status = 409


class AuthError(HeraldError):
    code = "unauthorized"
    status = 401


class BackendError(HeraldError):
    code = "backend_error"
    status = 503


class BackendUnavailable(BackendError):
    code = "backend_unavailable"


class JobError(HeraldError):
    code = "job_error"
    status = 422
