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
    ├── JobError                  job parameters invalid or job crashed
    └── (security policies, herald.security — docs/security.md)
        ├── PathNotAllowed        a server path outside security.files    (403)
        ├── EgressDenied          a URL the egress policy refuses         (403)
        ├── SecretUnavailable     unknown secret or not for that host     (422)
        ├── EnvReferenceRefused   a caller named a server env variable    (422)
        ├── OperatorSettingRequired  trust_remote_code & co. in a request (422)
        ├── UploadError           an upload over its limits or malformed  (422)
        └── PIIInPrompt           a prompt template with personal data    (400)

The data plane's errors (``herald.serving.errors``: OpenAI error objects, e.g. 413
``payload_too_large``, 400 ``context_length_exceeded``, 429 ``concurrency_limit_exceeded``)
and the JSON edge's refusals (``herald.security.json_edge``: non-finite numbers, 64-bit
overflow, lone surrogates, NUL, nesting depth → 422/400) are answered in the route's format.
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
