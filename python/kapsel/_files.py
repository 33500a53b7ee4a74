"""Files and streams: ``encrypt``, ``decrypt``, ``open`` and ``inspect``.

Invariants:

- Readers return only plaintext from chunks that verified (in a signed
  file, from segments whose signature verified); the end of the plaintext
  (a short read, ``seek(0, SEEK_END)``) is reported only after the final
  chunk verified, which authenticates the length.
- Every path output (writers, ``encrypt`` and ``decrypt`` to a path) is
  an :class:`~kapsel._outfile.Output`: written to an unnamed file in the
  target's directory (Linux ``O_TMPFILE``) and linked into place only when
  the file is finished and synced, so an exception inside a ``with`` block,
  a writer dropped without ``close()``, a failed decryption and even a
  SIGKILL leave no file, visible or hidden. Elsewhere a hidden
  ``.NAME.PID.XXXXXXXX.kapsel-partial`` beside the target, removed on any
  exception (see :mod:`kapsel._outfile`). Written to a file object, an
  unfinished file fails to decrypt (the format is truncation-proof).
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import os
import sys
from typing import Any, BinaryIO, Callable, Optional, Union

from . import _kapsel
from ._kapsel import Identity, Recipient
from ._outfile import Output
from .errors import InvalidKeyError, NotKapselError

PathLike = Union[str, "os.PathLike[str]"]
Source = Union[PathLike, BinaryIO]

#: Plaintext bytes per chunk.
CHUNK_SIZE: int = _kapsel.CHUNK_SIZE
#: Bytes read per call from a Python file object.
BLOCK = 1 << 20
#: Bytes fetched first from a file of unknown header length: every header
#: of one P-256 recipient and most others, and the salt and commitment.
FIRST_FETCH = 64 * 1024 + 56
#: The largest header (format version 2) plus the salt and commitment.
MAX_PREFIX = _kapsel.MAX_HEADER_LEN + 56


def passphrase_bytes(p: Union[str, bytes, None]) -> Optional[bytes]:
    """A passphrase as the codec takes it: ``str`` as UTF-8, or bytes."""
    if p is None or isinstance(p, bytes):
        return p
    if isinstance(p, str):
        return p.encode("utf-8")
    raise TypeError(f"a passphrase must be str or bytes, not {type(p).__name__}")


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def as_recipients(recipients: Any) -> list:
    """A list of :class:`Recipient` from one recipient, a recipient string,
    or an iterable of either."""
    if recipients is None:
        return []
    if isinstance(recipients, (str, Recipient)):
        recipients = [recipients]
    out = []
    for r in recipients:
        if isinstance(r, Recipient):
            out.append(r)
        elif isinstance(r, str):
            out.append(Recipient.from_string(r))
        else:
            raise TypeError(f"a recipient must be a kapsel.Recipient or a string, not {type(r).__name__}")
    return out


def as_identities(identities: Any) -> list:
    """A list of :class:`Identity` from one identity, an identity string, or
    an iterable of either."""
    if identities is None:
        return []
    if isinstance(identities, (str, Identity)):
        identities = [identities]
    out = []
    for i in identities:
        if isinstance(i, Identity):
            out.append(i)
        elif isinstance(i, str):
            out.extend(_kapsel.parse_identities(i))
        else:
            raise TypeError(f"an identity must be a kapsel.Identity or a string, not {type(i).__name__}")
    return out


def as_sender(sign_as: Any) -> Optional[Identity]:
    """The signing identity: an :class:`Identity`, an identity string, or
    ``None``."""
    if sign_as is None or isinstance(sign_as, Identity):
        return sign_as
    if isinstance(sign_as, str):
        return Identity.from_string(sign_as)
    raise TypeError(f"sign_as must be a kapsel.Identity, not {type(sign_as).__name__}")


#: The clock skew allowed for files from the future by default, as the
#: CLI's ``--max-skew``: 5 minutes.
DEFAULT_MAX_SKEW = 300

Seconds = Union[int, float, datetime.timedelta]


def _seconds(value: Any, what: str) -> int:
    """A duration in whole seconds (rounded down: never more lenient than
    asked) from an int, a float or a :class:`datetime.timedelta`."""
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be seconds (int or float) or a datetime.timedelta, not {type(value).__name__}")
    if value != value or value < 0:
        raise ValueError(f"{what} must be a non-negative duration, not {value!r}")
    if value == float("inf"):
        raise ValueError(f"{what} must be finite (leave it out for no limit)")
    return int(value)


def policy_options(expect_sender: Any = None, max_age: Any = None, max_skew: Any = None) -> dict:
    """The receiver policy as the extension's readers take it: expected
    senders (a :class:`Recipient`, a recipient string, or a list of them),
    a maximum age and the allowed clock skew, in seconds."""
    return {
        "expect_sender": as_recipients(expect_sender),
        "max_age": None if max_age is None else _seconds(max_age, "max_age"),
        "max_skew": DEFAULT_MAX_SKEW if max_skew is None else _seconds(max_skew, "max_skew"),
    }


def identities_from_file(path: PathLike) -> list:
    """Every identity in an identity file (``KAPSEL-SECRET-KEY-1...``,
    ``KAPSEL-PQ-SECRET-KEY-1...``, PEM and unencrypted OpenSSH private keys,
    ``#`` comments)."""
    _warn_if_readable_by_others(path)
    return _kapsel.identities_from_file(os.fspath(path))


def recipients_from_file(path: PathLike) -> list:
    """Every recipient in a recipients file (``kapsel1...``,
    ``kapselpq1...``, ``ecdsa-sha2-nistp256`` SSH lines, PEM public keys,
    ``#`` comments)."""
    return _kapsel.recipients_from_file(os.fspath(path))


def identity_from_file(path: PathLike) -> Identity:
    """The one identity in an identity file (an error if it holds several:
    use :func:`identities_from_file`)."""
    found = identities_from_file(path)
    if len(found) != 1:
        raise InvalidKeyError(f"{os.fspath(path)}: {len(found)} identities, not one (use identities_from_file)")
    return found[0]


ARMOR_BEGIN = b"-----BEGIN KAPSEL ENCRYPTED FILE-----"


def refuse_armor(first: bytes, what: str) -> None:
    """Raises a clear error for ASCII armor where random access is asked."""
    if first.lstrip()[: len(ARMOR_BEGIN)] == ARMOR_BEGIN:
        # To a binary decoder, armor is not a kapsel file (bad magic).
        raise NotKapselError(
            f"not a kapsel file (bad magic): {what} is ASCII-armored, and random "
            "access needs the binary form; decrypt it whole with kapsel.decrypt"
        )


def _warn_if_readable_by_others(path: PathLike) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if mode & 0o077:
        import warnings

        warnings.warn(
            f"{os.fspath(path)}: the identity file is readable by other users (chmod 600 it)",
            stacklevel=3,
        )


def encrypt(
    src: Source,
    dst: Source,
    recipients: Any = None,
    *,
    sign_as: Any = None,
    armor: bool = False,
    passphrase: Union[str, bytes, None] = None,
) -> None:
    """Encrypts ``src`` (a path or a binary file object) into ``dst`` (a path
    or a binary file object) for ``recipients`` (a :class:`Recipient`, a
    recipient string, or a list of them), or for a ``passphrase`` instead.

    ``sign_as`` (a P-256 :class:`Identity`) signs the file as its sender;
    ``armor=True`` writes ASCII armor. A path ``dst`` appears only once the
    file is complete. Path to path runs entirely in Rust, in parallel, with
    the GIL released.

    >>> import io, kapsel
    >>> me = kapsel.Identity.generate()
    >>> out = io.BytesIO()
    >>> kapsel.encrypt(io.BytesIO(b"hello"), out, me.to_recipient())
    >>> kapsel.decrypt_bytes(out.getvalue(), me)
    b'hello'
    """
    recipients = as_recipients(recipients)
    sender = as_sender(sign_as)
    if _is_path(src) and _is_path(dst):
        target = Output(dst)
        try:
            # Rust opens the output file anew by this path (the unnamed
            # file's /proc/self/fd link, or the named fallback).
            _kapsel.encrypt_file(
                os.fspath(src), target.write_path, recipients, sender, armor, passphrase_bytes(passphrase)
            )
            target.commit()
        except BaseException:
            target.discard()
            raise
        return
    with open(dst, "wb", recipients=recipients, sign_as=sender, armor=armor, passphrase=passphrase) as writer:
        source = builtins_open(src, "rb") if _is_path(src) else src
        try:
            while True:
                block = source.read(BLOCK)
                if not block:
                    break
                writer.write(block)
        finally:
            if source is not src:
                source.close()


@dataclasses.dataclass(frozen=True)
class Decrypted:
    """What :func:`decrypt` verified."""

    #: Plaintext bytes written.
    plaintext_len: int
    #: The sender whose signature covers every byte, or ``None`` (anonymous).
    verified_sender: Optional[Recipient]


def decrypt(
    src: Source,
    dst: Source,
    identities: Any = None,
    *,
    passphrase: Union[str, bytes, None] = None,
    armor: Optional[bool] = None,
    expect_sender: Any = None,
    max_age: Optional[Seconds] = None,
    max_skew: Optional[Seconds] = None,
) -> Decrypted:
    """Decrypts a whole file or stream ``src`` (a path or a binary file
    object) into ``dst`` (a path or a binary file object) with
    ``identities`` (an :class:`Identity`, a list of them) or a
    ``passphrase``. ASCII armor is detected unless ``armor`` says.

    Plaintext is written as it verifies, chunk by chunk (signed: segment by
    segment). If decryption fails, a file object ``dst`` holds the verified
    plaintext before the failure (never a byte that did not verify), and a
    path ``dst`` is not created.

    The receiver policy (SPEC.md section 12, as the CLI's ``decrypt``):

    - ``expect_sender``: a :class:`Recipient`, a recipient string, or a
      list of them; the file must be signed by one of them. A file that
      names another sender, or none, is refused; the named sender's
      signatures are then verified segment by segment
      (:class:`SenderAuthenticationError` if they do not).
    - ``max_age``: seconds (int or float) or a :class:`datetime.timedelta`;
      files created longer ago are refused, and so are files created more
      than ``max_skew`` (default 5 minutes) in the future.

    The policy is checked on the authenticated header, before anything is
    written; a refusal raises :class:`RefusedError` (``dst`` untouched, a
    path ``dst`` not created). There is no replay ledger here (the CLI's
    ``--replay-db`` is the CLI's): a file accepted once is accepted again.

    >>> import io, kapsel
    >>> alice, bob = kapsel.Identity.generate(), kapsel.Identity.generate()
    >>> data = kapsel.encrypt_bytes(b"hi", bob.to_recipient(), sign_as=alice)
    >>> out = io.BytesIO()
    >>> kapsel.decrypt(io.BytesIO(data), out, bob, expect_sender=alice.to_recipient(), max_age=86400).verified_sender == alice.to_recipient()
    True
    >>> kapsel.decrypt(io.BytesIO(data), io.BytesIO(), bob, expect_sender=bob.to_recipient())
    Traceback (most recent call last):
    ...
    kapsel.errors.RefusedError: the file names sender kapsel1..., which is not an expected sender
    """
    ids = as_identities(identities)
    policy = policy_options(expect_sender, max_age, max_skew)
    if _is_path(dst):
        target = Output(dst)
        try:
            result = _kapsel.decrypt_stream(
                os.fspath(src) if _is_path(src) else src,
                target.file,
                ids,
                passphrase_bytes(passphrase),
                armor,
                **policy,
            )
            target.commit()
        except BaseException:
            target.discard()
            raise
    else:
        result = _kapsel.decrypt_stream(
            os.fspath(src) if _is_path(src) else src, dst, ids, passphrase_bytes(passphrase), armor, **policy
        )
    length, sender = result
    return Decrypted(length, Recipient.from_string(sender) if sender else None)


def encrypt_bytes(data: bytes, recipients: Any = None, **options: Any) -> bytes:
    """``data`` encrypted (see :func:`encrypt` for the options)."""
    out = io.BytesIO()
    encrypt(io.BytesIO(data), out, recipients, **options)
    return out.getvalue()


def decrypt_bytes(
    data: bytes,
    identities: Any = None,
    *,
    passphrase: Union[str, bytes, None] = None,
    armor: Optional[bool] = None,
    expect_sender: Any = None,
    max_age: Optional[Seconds] = None,
    max_skew: Optional[Seconds] = None,
) -> bytes:
    """The plaintext of the kapsel file ``data`` (see :func:`decrypt`, whose
    options it takes, the receiver policy included: ``expect_sender``,
    ``max_age``, ``max_skew``; a refusal raises :class:`RefusedError` and
    returns nothing).

    >>> import kapsel
    >>> alice, bob = kapsel.Identity.generate(), kapsel.Identity.generate()
    >>> data = kapsel.encrypt_bytes(b"hi", bob.to_recipient(), sign_as=alice)
    >>> kapsel.decrypt_bytes(data, bob, expect_sender=[str(alice.to_recipient())], max_age=86400)
    b'hi'
    """
    out = io.BytesIO()
    decrypt(
        io.BytesIO(data),
        out,
        identities,
        passphrase=passphrase,
        armor=armor,
        expect_sender=expect_sender,
        max_age=max_age,
        max_skew=max_skew,
    )
    return out.getvalue()


class _RawReader(io.RawIOBase):
    """The raw, seekable plaintext stream of a :class:`KapselReader`."""

    def __init__(self, seekable: Any, name: str, on_close: Optional[Callable[[], None]] = None):
        super().__init__()
        self._s = seekable
        self._pos = 0
        self.name = name
        self._on_close = on_close

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        data = self._s.read_at(self._pos, len(view))
        n = len(data)
        view[:n] = data
        self._pos += n
        return n

    def readall(self) -> bytes:
        parts = []
        while True:
            data = self._s.read_at(self._pos, BLOCK)
            if not data:
                break
            parts.append(data)
            self._pos += len(data)
        return b"".join(parts)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            target = self._s.plaintext_len() + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if target < 0:
            raise ValueError("negative seek position")
        self._pos = target
        return target

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        if not self.closed and self._on_close is not None:
            self._on_close()
        super().close()


class KapselReader(io.BufferedReader):
    """A kapsel file open for reading: binary, seekable, read-only.

    Each read decrypts only the chunks it touches (a signed file: verifies
    each segment it touches first), so ``seek`` and ranged reads cost what
    they read, not the file. ``size`` is the plaintext length the file's
    length implies, **authenticated only once** ``length_verified`` (after a
    read reached the end, ``seek(0, SEEK_END)`` or ``plaintext_len()``).

    >>> import io, kapsel
    >>> me = kapsel.Identity.generate()
    >>> data = kapsel.encrypt_bytes(bytes(range(256)) * 1000, me.to_recipient())
    >>> with kapsel.open(io.BytesIO(data), identities=[me]) as f:
    ...     _ = f.seek(100_000)
    ...     f.read(4)
    b'\\xa0\\xa1\\xa2\\xa3'
    """

    def __init__(self, raw: _RawReader):
        super().__init__(raw, buffer_size=4 * CHUNK_SIZE)
        self._seekable = raw._s

    @property
    def size(self) -> int:
        """The plaintext length the file's length implies (unauthenticated
        until ``length_verified``)."""
        return self._seekable.unverified_len

    @property
    def length_verified(self) -> bool:
        """Whether the final chunk verified, which authenticates ``size``."""
        return self._seekable.length_verified

    def plaintext_len(self) -> int:
        """The plaintext length, authenticated (verifies the final chunk)."""
        return self._seekable.plaintext_len()

    @property
    def is_signed(self) -> bool:
        return self._seekable.is_signed

    @property
    def verified_sender(self) -> Optional[Recipient]:
        """The sender whose signature covers every byte read so far: set once
        a segment of a signed file verified, ``None`` before and for
        anonymous files."""
        return self._seekable.verified_sender

    @property
    def claimed_sender(self) -> Optional[str]:
        """The sender the header names: a claim, not verified (see
        ``verified_sender``)."""
        return self._seekable.claimed_sender

    @property
    def chunks_decrypted(self) -> int:
        return self._seekable.chunks_decrypted

    @property
    def segments_verified(self) -> int:
        return self._seekable.segments_verified

    def read_range(self, offset: int, length: int) -> bytes:
        """``length`` plaintext bytes from ``offset`` (fewer at the end),
        without moving the position; safe from several threads."""
        return self._seekable.read_at(offset, length)

    def header(self) -> "Header":
        """The header, authenticated by the key commitment."""
        return Header._from_dict(self._seekable.header(), authenticated=True)


class KapselWriter(io.BufferedIOBase):
    """An encrypting, write-only binary file object: ``close()`` (or the end
    of a ``with`` block) finishes the file.

    An exception in the ``with`` block, ``abort()``, or dropping the writer
    unclosed, does not finish it: a path target is not created, and bytes
    already written to a file object fail to decrypt.

    >>> import io, kapsel
    >>> me = kapsel.Identity.generate()
    >>> out = io.BytesIO()
    >>> with kapsel.open(out, "wb", recipients=[me.to_recipient()]) as f:
    ...     _ = f.write(b"hello")
    >>> kapsel.decrypt_bytes(out.getvalue(), me)
    b'hello'
    """

    def __init__(
        self,
        dst: Any,
        encrypting: Any,
        commit: Callable[[], None],
        discard: Callable[[], None],
        name: str = "",
    ):
        super().__init__()
        self._dst = dst
        self._enc = encrypting
        self._commit = commit
        self._discard = discard
        self._done = False
        self.name = name

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed kapsel writer")
        data = b if isinstance(b, bytes) else bytes(memoryview(b).cast("B"))
        out = self._enc.write(data)
        if out:
            self._dst.write(out)
        return len(data)

    def abort(self) -> None:
        """Ends without finishing the file."""
        if self._done:
            return
        self._done = True
        try:
            self._enc.abort()
        finally:
            self._discard()
            super().close()

    def close(self) -> None:
        """Finishes the file, unless an exception is being handled (then it
        aborts, as in a ``with`` block that raised)."""
        if self._done:
            return
        if sys.exc_info()[1] is not None:
            self.abort()
            return
        self._done = True
        try:
            tail = self._enc.finish()
            if tail:
                self._dst.write(tail)
            self._commit()
        except BaseException:
            self._discard()
            raise
        finally:
            super().close()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __del__(self) -> None:
        # Never finish a file nobody closed: it could be incomplete.
        try:
            self.abort()
        except Exception:
            pass


builtins_open = open


def open(
    file: Source,
    mode: Any = "rb",
    *,
    identities: Any = None,
    identity_file: Optional[PathLike] = None,
    passphrase: Union[str, bytes, None] = None,
    recipients: Any = None,
    sign_as: Any = None,
    armor: bool = False,
    expect_sender: Any = None,
    max_age: Optional[Seconds] = None,
    max_skew: Optional[Seconds] = None,
) -> Any:
    """Opens a kapsel file.

    ``mode="rb"``: ``file`` is a path or a seekable binary file object;
    returns a :class:`KapselReader` (decrypting with ``identities``, the
    identities in ``identity_file``, or ``passphrase``). ASCII-armored files
    cannot be read at random: use :func:`decrypt`. ``expect_sender``,
    ``max_age`` and ``max_skew`` are the receiver policy of :func:`decrypt`,
    checked on the authenticated header before ``open`` returns: a refused
    file raises :class:`RefusedError` and no reader is made (no replay
    ledger: see :func:`decrypt`).

    >>> import io, kapsel
    >>> alice, bob = kapsel.Identity.generate(), kapsel.Identity.generate()
    >>> data = kapsel.encrypt_bytes(b"hi", bob.to_recipient(), sign_as=alice)
    >>> with kapsel.open(io.BytesIO(data), identities=[bob], expect_sender=[alice.to_recipient()], max_age=3600) as f:
    ...     f.read()
    b'hi'

    ``mode="wb"``: ``file`` is a path or a binary file object; returns a
    :class:`KapselWriter` encrypting to ``recipients`` (or ``passphrase``),
    signed by ``sign_as`` if given, armored if ``armor``.

    ``kapsel.open(file, identities)`` (identities in place of the mode)
    opens for reading.
    """
    if not isinstance(mode, str):
        if identities is not None:
            raise TypeError("kapsel.open: identities given twice")
        mode, identities = "rb", mode
    if mode in ("rb", "r"):
        policy = policy_options(expect_sender, max_age, max_skew)
        ids = as_identities(identities)
        if identity_file is not None:
            ids += identities_from_file(identity_file)
        if _is_path(file):
            path = os.fspath(file)
            try:
                seekable = _kapsel.Seekable.open_path(path, ids, passphrase_bytes(passphrase), **policy)
            except NotKapselError:
                with builtins_open(path, "rb") as f:
                    refuse_armor(f.read(256), path)
                raise
            return KapselReader(_RawReader(seekable, path))
        f = file
        size = f.seek(0, io.SEEK_END)
        f.seek(0)
        first = f.read(min(size, FIRST_FETCH))
        refuse_armor(first, "the file")

        def fetch(start: int, end: int) -> bytes:
            f.seek(start)
            return f.read(end - start)

        seekable = _kapsel.Seekable.open_fetch(fetch, size, first, ids, passphrase_bytes(passphrase), **policy)
        return KapselReader(_RawReader(seekable, getattr(f, "name", "")))
    if mode in ("wb", "w", "xb"):
        if expect_sender is not None or max_age is not None or max_skew is not None:
            raise TypeError("kapsel.open: expect_sender, max_age and max_skew are for reading ('rb')")
        enc = _kapsel.Encrypting(as_recipients(recipients), as_sender(sign_as), armor, passphrase_bytes(passphrase))
        if _is_path(file):
            target = Output(file, exclusive=mode == "xb")
            return KapselWriter(target.file, enc, target.commit, target.discard, target.path)
        return KapselWriter(file, enc, lambda: None, lambda: None, getattr(file, "name", ""))
    raise ValueError(f"kapsel.open: mode must be 'rb' or 'wb', not {mode!r}")


@dataclasses.dataclass(frozen=True)
class Header:
    """A kapsel header as :func:`inspect` reads it: **not authenticated**
    (anyone can write any header; only decryption authenticates it), unless
    ``authenticated``."""

    #: Format version (1, or 2 for post-quantum and passphrase stanzas).
    version: int
    #: The cipher suite's name.
    suite: str
    #: The stanza types, in order: ``"p256"``, ``"mlkem768-p256"``,
    #: ``"passphrase"``, ``"unknown-0x...."``.
    stanzas: tuple
    #: Whether the header names a sender who signed the payload.
    signed: bool
    #: The sender the header names (``kapsel1...``), **unverified**.
    claimed_sender_unverified: Optional[str]
    #: Creation time, seconds since the epoch (see ``created``).
    created_at: int
    #: The sender's serial number (0 when the encoder set none).
    serial: int
    #: Extension record types.
    extensions: tuple
    #: Header bytes.
    header_len: int
    #: File bytes, if known.
    file_len: Optional[int] = None
    #: Plaintext bytes the file length implies (authenticated only by
    #: decrypting the final chunk), if the file length is known and valid.
    plaintext_len: Optional[int] = None
    #: Chunks (16 KiB of plaintext each, the last shorter), likewise.
    chunk_count: Optional[int] = None
    #: Why the file length is impossible (truncated or extended), if it is.
    payload_error: Optional[str] = None
    #: Whether a key commitment authenticated this header.
    authenticated: bool = False

    @property
    def created(self) -> datetime.datetime:
        """``created_at`` as an aware UTC datetime."""
        return datetime.datetime.fromtimestamp(self.created_at, datetime.timezone.utc)

    @classmethod
    def _from_dict(cls, d: dict, authenticated: bool = False) -> "Header":
        return cls(
            version=d["version"],
            suite=d["suite"],
            stanzas=tuple(d["stanzas"]),
            signed=d["signed"],
            claimed_sender_unverified=d["claimed_sender"],
            created_at=d["created_at"],
            serial=d["serial"],
            extensions=tuple(d["extensions"]),
            header_len=d["header_len"],
            file_len=d.get("file_len"),
            plaintext_len=d.get("plaintext_len"),
            chunk_count=d.get("chunk_count"),
            payload_error=d.get("payload_error"),
            authenticated=authenticated,
        )


def inspect(src: Union[Source, bytes]) -> Header:
    """The header of a kapsel file (a path, bytes, or a seekable binary file
    object), without any key: **unauthenticated**. Raises
    :class:`NotKapselError`, :class:`MalformedHeaderError` or
    :class:`UnsupportedError` for headers no decoder accepts.

    >>> import kapsel
    >>> me = kapsel.Identity.generate()
    >>> h = kapsel.inspect(kapsel.encrypt_bytes(b"x" * 20000, me.to_recipient()))
    >>> (h.version, h.stanzas, h.signed, h.plaintext_len, h.chunk_count)
    (1, ('p256',), False, 20000, 2)
    """
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        return Header._from_dict(_kapsel.inspect_header(data[:MAX_PREFIX], len(data)))
    if _is_path(src):
        with builtins_open(src, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            return Header._from_dict(_kapsel.inspect_header(f.read(MAX_PREFIX), size))
    size = src.seek(0, io.SEEK_END)
    src.seek(0)
    return Header._from_dict(_kapsel.inspect_header(src.read(MAX_PREFIX), size))
