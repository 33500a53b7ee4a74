"""kapsel: hybrid-encryption files (P-256 and ML-KEM-768 + P-256 recipients,
passphrases, optional sender signatures) from Python.

The package is a thin layer over the Rust codec (``kapsel._kapsel``, built
with PyO3): every byte is encrypted, decrypted and verified in Rust, with
the GIL released.

>>> import io, kapsel
>>> alice = kapsel.Identity.generate()
>>> ciphertext = kapsel.encrypt_bytes(b"hello", alice.to_recipient())
>>> kapsel.decrypt_bytes(ciphertext, alice)
b'hello'

- Keys: :class:`Identity` (private; ``str`` and ``repr`` never show the
  secret), :class:`Recipient` (public), :func:`identities_from_file`,
  :func:`recipients_from_file`.
- Whole streams: :func:`encrypt`, :func:`decrypt` (paths or binary file
  objects), :func:`encrypt_bytes`, :func:`decrypt_bytes`.
- Random access: :func:`open` in ``"rb"`` gives a seekable reader that
  decrypts only the chunks each read touches; in ``"wb"`` an encrypting
  writer that finishes the file on ``close``.
- Receiver policy: ``expect_sender=``, ``max_age=``, ``max_skew=`` on
  the readers refuse, with :class:`RefusedError` and before any plaintext
  is out, files from other senders or too old (no replay ledger).
- :func:`inspect`: the header without a key (unauthenticated).
- Errors: :mod:`kapsel.errors`, one class per decoder outcome class.
- fsspec: the ``kapsel`` protocol (:mod:`kapsel.fsspec`), so
  ``fsspec.open("kapsel::s3://bucket/x.csv.kap", kapsel={"identities": [...]})``,
  pandas and Dask read and write encrypted files.
"""

from __future__ import annotations

from . import errors
from ._files import (
    CHUNK_SIZE,
    Decrypted,
    Header,
    KapselReader,
    KapselWriter,
    decrypt,
    decrypt_bytes,
    encrypt,
    encrypt_bytes,
    identities_from_file,
    identity_from_file,
    inspect,
    open,
    recipients_from_file,
)
from ._kapsel import Identity, Recipient
from .errors import (
    ArmorError,
    AuthenticationError,
    EncryptionError,
    HeaderAuthenticationError,
    InvalidKeyError,
    KapselError,
    KapselIOError,
    MalformedHeaderError,
    NoMatchingRecipientError,
    NotKapselError,
    PayloadAuthenticationError,
    RefusedError,
    SenderAuthenticationError,
    UnsupportedError,
)

__all__ = [
    "CHUNK_SIZE",
    "Decrypted",
    "Header",
    "Identity",
    "KapselReader",
    "KapselWriter",
    "Recipient",
    "decrypt",
    "decrypt_bytes",
    "encrypt",
    "encrypt_bytes",
    "errors",
    "identities_from_file",
    "identity_from_file",
    "inspect",
    "open",
    "recipients_from_file",
    "ArmorError",
    "AuthenticationError",
    "EncryptionError",
    "HeaderAuthenticationError",
    "InvalidKeyError",
    "KapselError",
    "KapselIOError",
    "MalformedHeaderError",
    "NoMatchingRecipientError",
    "NotKapselError",
    "PayloadAuthenticationError",
    "RefusedError",
    "SenderAuthenticationError",
    "UnsupportedError",
]
