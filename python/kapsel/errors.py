"""The exceptions of kapsel, one class per decoder outcome class.

The classes mirror ``kapsel_codec::Outcome`` (SPEC.md section 7, "Decoder
outcomes"); every failure of the Rust codec is raised as the class of its
outcome, with the codec's message. Invariants:

- Every exception kapsel raises for a file is a :class:`KapselError`.
- The three authentication failures (header, payload, sender) share
  :class:`AuthenticationError`: the file was modified, truncated, extended,
  or was not made by the sender it names. A truncated file is a
  :class:`PayloadAuthenticationError`.
- Format problems are also :class:`ValueError`, I/O problems also
  :class:`OSError`, so code that catches the builtins keeps working.
- Exceptions pickle (they cross Dask's worker connections).

>>> import kapsel
>>> try:
...     kapsel.inspect(b"not a kapsel file")
... except kapsel.NotKapselError as e:
...     print(e.outcome)
not_kapsel
"""

from __future__ import annotations

__all__ = [
    "KapselError",
    "NotKapselError",
    "UnsupportedError",
    "MalformedHeaderError",
    "NoMatchingRecipientError",
    "AuthenticationError",
    "HeaderAuthenticationError",
    "PayloadAuthenticationError",
    "SenderAuthenticationError",
    "ArmorError",
    "RefusedError",
    "KapselIOError",
    "EncryptionError",
    "InvalidKeyError",
    "OUTCOME_CLASSES",
]


class KapselError(Exception):
    """Base class of every kapsel failure. ``outcome`` names its class as the
    conformance vectors do (``"payload_failure"``, ...)."""

    outcome = "error"


class NotKapselError(KapselError, ValueError):
    """The input does not start with the kapsel magic."""

    outcome = "not_kapsel"


class UnsupportedError(KapselError, ValueError):
    """Unknown version, suite or critical extension, or a passphrase stanza
    that asks for more Argon2id work than the decoder accepts."""

    outcome = "unsupported"


class MalformedHeaderError(KapselError, ValueError):
    """The header is truncated, not a valid encoding, or carries an invalid
    public key."""

    outcome = "malformed_header"


class NoMatchingRecipientError(KapselError, LookupError):
    """No identity (or passphrase) given opens any stanza of the file."""

    outcome = "no_match"


class AuthenticationError(KapselError, ValueError):
    """The file failed authentication: modified, truncated, extended, or not
    signed by the sender it names. Nothing unverified was released."""


class HeaderAuthenticationError(AuthenticationError):
    """A stanza for one of the identities did not open, or the key
    commitment over the header did not match: the header was modified."""

    outcome = "header_auth_failure"


class PayloadAuthenticationError(AuthenticationError):
    """A chunk did not verify, or the payload was truncated or extended."""

    outcome = "payload_failure"


class SenderAuthenticationError(AuthenticationError):
    """A segment signature of a signed file did not verify."""

    outcome = "sender_verification_failure"


class ArmorError(KapselError, ValueError):
    """The ASCII armor around the file is malformed."""

    outcome = "armor_failure"


class RefusedError(KapselError):
    """The file decodes, but the caller's policy refused it."""

    outcome = "refused"


class KapselIOError(KapselError, OSError):
    """Reading or writing failed for reasons outside the file."""

    outcome = "io"


class EncryptionError(KapselError, ValueError):
    """A file could not be encrypted as asked (no recipients, post-quantum
    and classical recipients mixed, a post-quantum sender, ...)."""


class InvalidKeyError(KapselError, ValueError):
    """A key string or key file did not parse. Messages never show the
    text of a key line."""


#: The exception class of each outcome class of the conformance vectors.
OUTCOME_CLASSES = {
    cls.outcome: cls
    for cls in (
        NotKapselError,
        UnsupportedError,
        MalformedHeaderError,
        NoMatchingRecipientError,
        HeaderAuthenticationError,
        PayloadAuthenticationError,
        SenderAuthenticationError,
        ArmorError,
        RefusedError,
        KapselIOError,
    )
}
