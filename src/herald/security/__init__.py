"""Security policies shared by every edge: files, egress, secrets, limits, sessions, PII.

Each module is one policy, configured by a sub-section of ``Settings.security``
(docs/security.md gives the threat model and the settings).
"""
