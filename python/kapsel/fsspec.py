"""The ``kapsel`` fsspec protocol: kapsel files on any fsspec filesystem.

Chain it in front of the filesystem that holds the ciphertext::

    import fsspec
    with fsspec.open("kapsel::s3://bucket/big.csv.kap",
                     kapsel={"identity_file": "/etc/keys/me.key"}) as f:
        f.seek(1_000_000)
        f.read(100)

or pass ``storage_options={"kapsel": {...}}`` (pandas, Dask, PyArrow
through fsspec). Only files signed by Alice, at most a day old::

    dask.bytes.read_bytes("kapsel::s3://bucket/*.csv.kap",
                          kapsel={"identity_file": "/etc/keys/me.key",
                                  "expect_sender": "kapsel1...alice",
                                  "max_age": 86400})
 The package registers the protocol through its
``fsspec.specs`` entry point; ``import kapsel`` is not needed.

Storage options (the same names for reading and writing):

- ``identities``: a list of :class:`kapsel.Identity` (or identity strings).
  They travel inside the pickled filesystem, for example through Dask's
  scheduler to its workers.
- ``identity_file``: a path (or list of paths) of identity files, read on
  first use by the process that decrypts: with Dask, only the path travels
  and each worker reads the key from its own disk.
- ``passphrase``: for passphrase-encrypted files.
- ``recipients``: a list of :class:`kapsel.Recipient` (or recipient
  strings) that written files are encrypted to; ``recipients_file``: a
  path (or list) of recipients files.
- ``sign_as`` (an Identity) or ``sign_as_file`` (a path): the sender that
  signs written files.
- ``armor``: write ASCII armor (such files cannot be read at random).
- ``expect_sender`` (a :class:`kapsel.Recipient`, a recipient string, or a
  list of them), ``max_age`` (seconds or a ``datetime.timedelta``) and
  ``max_skew`` (default 5 minutes): the receiver policy of
  :func:`kapsel.decrypt`, checked on every file opened for reading, on its
  authenticated header before any plaintext is returned; a refused file
  raises :class:`kapsel.RefusedError` at open (with Dask: in the task).
  There is no replay ledger (the CLI's is the CLI's).

Invariants:

- A read of plaintext bytes ``[a, b)`` fetches **one** contiguous
  ciphertext range from the underlying filesystem (one ``cat_file(path,
  start, end)``): the chunks the range touches, in a signed file the whole
  segments with their signatures, and the final chunk when the range
  reaches the end. Opening a file fetches its header once (``info()``
  shares that fetch).
- Every plaintext byte returned verified (and, signed, its segment's
  signature did); a damaged chunk fails exactly the reads that touch it,
  with :class:`kapsel.PayloadAuthenticationError`.
- ``info(path)["size"]`` is the plaintext length that the ciphertext length
  implies. It is **not authenticated** (``"size_authenticated": False``):
  only decrypting the final chunk authenticates it, which every read that
  reaches the end does; a file cut or extended elsewhere makes that read
  fail. ``"ciphertext_size"`` is the stored size.
- A file written through ``open(path, "wb")`` is committed only by a clean
  ``close()``: an exception while writing leaves no finished file (where
  the underlying filesystem can discard an upload, none at all). On the
  local filesystem it is written as :func:`kapsel.open` writes a path: to
  an unnamed file (Linux ``O_TMPFILE``) linked into place when complete,
  so not even a SIGKILL leaves a partial file.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Optional

import fsspec
from fsspec.implementations.chained import ChainedFileSystem
from fsspec.spec import AbstractBufferedFile

from . import _kapsel
from ._files import (
    MAX_PREFIX,
    KapselWriter,
    as_identities,
    as_recipients,
    as_sender,
    passphrase_bytes,
    policy_options,
    identities_from_file,
    identity_from_file,
    recipients_from_file,
    refuse_armor,
)
from ._outfile import Output
from .errors import PayloadAuthenticationError

__all__ = ["KapselFileSystem", "KapselFile"]

#: Bytes fetched first: the header of up to a few recipients, and the salt
#: and commitment.
HEADER_FETCH = 4096
#: Headers remembered per filesystem instance (path, size, version -> first bytes).
_HEADER_CACHE = 256


def _as_list(x: Any) -> list:
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


class KapselFileSystem(ChainedFileSystem):
    """An fsspec filesystem of kapsel files stored on another filesystem.

    ``KapselFileSystem(target_protocol="memory", identities=[me])``, or
    ``fs=`` an instance; chained URLs (``kapsel::file:///...``) build it.
    See the module documentation for the storage options.
    """

    protocol = "kapsel"

    def __init__(
        self,
        target_protocol: Optional[str] = None,
        target_options: Optional[dict] = None,
        fs: Any = None,
        identities: Any = None,
        identity_file: Any = None,
        passphrase: Optional[str] = None,
        recipients: Any = None,
        recipients_file: Any = None,
        sign_as: Any = None,
        sign_as_file: Any = None,
        armor: bool = False,
        expect_sender: Any = None,
        max_age: Any = None,
        max_skew: Any = None,
        fo: Optional[str] = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if fs is None:
            fs = fsspec.filesystem(target_protocol or "file", **(target_options or {}))
        self.fs = fs
        self._identities = identities
        self._identity_files = _as_list(identity_file)
        self._passphrase = passphrase_bytes(passphrase)
        self._recipients = recipients
        self._recipients_files = _as_list(recipients_file)
        self._sign_as = sign_as
        self._sign_as_file = sign_as_file
        self._armor = armor
        # Checked here, so that a bad option fails where it is given.
        self._policy = policy_options(expect_sender, max_age, max_skew)
        self._loaded_ids: Optional[list] = None
        self._headers: "OrderedDict[tuple, tuple]" = OrderedDict()
        self._lock = threading.Lock()

    # Keys, loaded where they are used (identity files: on the worker).

    def identity_list(self) -> list:
        """The identities (inline ones, then those of the identity files)."""
        with self._lock:
            if self._loaded_ids is None:
                ids = as_identities(self._identities)
                for path in self._identity_files:
                    ids += identities_from_file(path)
                self._loaded_ids = ids
            return self._loaded_ids

    def _encrypting(self) -> Any:
        recipients = as_recipients(self._recipients)
        for path in self._recipients_files:
            recipients += recipients_from_file(path)
        sender = as_sender(self._sign_as)
        if sender is None and self._sign_as_file is not None:
            sender = identity_from_file(self._sign_as_file)
        passphrase = self._passphrase if not recipients else None
        return _kapsel.Encrypting(recipients, sender, self._armor, passphrase)

    # The header of a stored file, fetched once.

    def _first_bytes(self, path: str, inner: dict) -> tuple:
        """The header dict and the first bytes of ``path`` (cached by path,
        ciphertext size and modification stamp)."""
        size = inner["size"]
        stamp = next(
            (inner[k] for k in ("mtime", "LastModified", "ETag", "etag", "created") if k in inner),
            None,
        )
        key = (path, size, str(stamp))
        with self._lock:
            hit = self._headers.get(key)
            if hit is not None:
                self._headers.move_to_end(key)
                return hit
        # The header's length is in its 16-byte prefix; most headers fit in
        # the first fetch, larger ones (many post-quantum stanzas) take one
        # more. No chunk is fetched here, so that every ranged read later
        # is exactly one request.
        first = self.fs.cat_file(path, 0, min(size, HEADER_FETCH))
        if len(first) >= 16 and first[:8] == b"\x8bKAPSEL\n":
            needed = min(int.from_bytes(first[12:16], "big"), MAX_PREFIX) + 56
            if needed > len(first) and size > len(first):
                first = self.fs.cat_file(path, 0, min(size, needed))
        refuse_armor(first, path)
        header = _kapsel.inspect_header(first, size)
        with self._lock:
            self._headers[key] = (header, first)
            while len(self._headers) > _HEADER_CACHE:
                self._headers.popitem(last=False)
        return header, first

    def _plain_entry(self, path: str, inner: dict) -> dict:
        header, _ = self._first_bytes(path, inner)
        if header["plaintext_len"] is None:
            raise PayloadAuthenticationError(f"{path}: {header['payload_error']}")
        out = dict(inner)
        out["size"] = header["plaintext_len"]
        out["ciphertext_size"] = inner["size"]
        out["size_authenticated"] = False
        out["signed"] = header["signed"]
        out["chunk_count"] = header["chunk_count"]
        return out

    # Metadata: plaintext sizes for files, the rest as stored.

    def info(self, path: str, **kwargs: Any) -> dict:
        """The stored file's info, with ``size`` the plaintext length its
        length implies (``size_authenticated`` is ``False``: see the module
        documentation) and ``ciphertext_size`` the stored length."""
        inner = self.fs.info(path, **kwargs)
        if inner.get("type") != "file":
            return inner
        return self._plain_entry(path, inner)

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> Any:
        entries = self.fs.ls(path, detail=detail, **kwargs)
        if not detail:
            return entries
        out = []
        for e in entries:
            if e.get("type") == "file":
                try:
                    e = self._plain_entry(e["name"], e)
                except Exception:
                    # Not a kapsel file (or unreadable): listed as stored.
                    pass
            out.append(e)
        return out

    def exists(self, path: str, **kwargs: Any) -> bool:
        return self.fs.exists(path, **kwargs)

    def isdir(self, path: str) -> bool:
        return self.fs.isdir(path)

    def isfile(self, path: str) -> bool:
        return self.fs.isfile(path)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        return self.fs.mkdir(path, create_parents=create_parents, **kwargs)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        return self.fs.makedirs(path, exist_ok=exist_ok)

    def rmdir(self, path: str) -> None:
        return self.fs.rmdir(path)

    def rm_file(self, path: str) -> None:
        return self.fs.rm_file(path)

    def rm(self, path: Any, recursive: bool = False, maxdepth: Optional[int] = None) -> None:
        return self.fs.rm(path, recursive=recursive, maxdepth=maxdepth)

    def mv(self, path1: str, path2: str, **kwargs: Any) -> None:
        return self.fs.mv(path1, path2, **kwargs)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        # A copy of the ciphertext decrypts to the same plaintext.
        return self.fs.cp_file(path1, path2, **kwargs)

    def modified(self, path: str) -> Any:
        return self.fs.modified(path)

    def created(self, path: str) -> Any:
        return self.fs.created(path)

    def ukey(self, path: str) -> str:
        return self.fs.ukey(path)

    def checksum(self, path: str) -> int:
        return self.fs.checksum(path)

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: Any = None,
        autocommit: bool = True,
        cache_options: Optional[dict] = None,
        **kwargs: Any,
    ) -> Any:
        if mode == "rb":
            return KapselFile(self, path, block_size=block_size, cache_options=cache_options, **kwargs)
        if mode in ("wb", "xb"):
            return self._open_writer(path, mode)
        raise ValueError(f"kapsel: mode must be 'rb' or 'wb', not {mode!r}")

    def _open_writer(self, path: str, mode: str) -> KapselWriter:
        enc = self._encrypting()
        from fsspec.implementations.local import LocalFileSystem
        from fsspec.implementations.memory import MemoryFileSystem

        if isinstance(self.fs, LocalFileSystem):
            # A local file is written as kapsel.open writes one (unnamed
            # until complete), not through fsspec's temporary file in the
            # system's temporary directory.
            local = self.fs._strip_protocol(path)
            if getattr(self.fs, "auto_mkdir", False):
                self.fs.makedirs(self.fs._parent(local), exist_ok=True)
            target = Output(local, exclusive=mode == "xb")
            return KapselWriter(target.file, enc, target.commit, target.discard, path)
        inner = None
        if not isinstance(self.fs, MemoryFileSystem):  # it commits at open
            try:
                # Where the filesystem supports it, nothing appears at the
                # path before commit (object stores: an upload completed
                # only then).
                inner = self.fs.open(path, mode, autocommit=False)
            except (TypeError, NotImplementedError, ValueError):
                inner = None
        deferred = inner is not None
        if inner is None:
            inner = self.fs.open(path, mode)

        def commit() -> None:
            inner.close()
            if deferred:
                inner.commit()

        def discard() -> None:
            if deferred:
                inner.discard()
                return
            # The file is already at the path: remove what was written.
            try:
                inner.close()
            finally:
                self.fs.rm_file(path)

        return KapselWriter(inner, enc, commit, discard, path)


class KapselFile(AbstractBufferedFile):
    """A kapsel file read through :class:`KapselFileSystem`: each cache miss
    (``_fetch_range``) fetches one ciphertext range and decrypts it in Rust
    with the GIL released.

    The default block size (the read-ahead of fsspec's cache) is 64 KiB,
    four chunks: a read of ``n`` bytes fetches about ``n + 64 KiB`` of
    ciphertext in one request, so that a Dask block decrypts little beyond
    its own range (``block_size=`` to change it).
    """

    DEFAULT_BLOCK_SIZE = 4 * _kapsel.CHUNK_SIZE

    def __init__(self, fs: KapselFileSystem, path: str, block_size: Any = None, **kwargs: Any):
        self.fs, self.path = fs, path  # for repr() if opening fails
        inner_fs = fs.fs
        inner = inner_fs.info(path)
        header, first = fs._first_bytes(path, inner)
        size = inner["size"]

        def fetch(start: int, end: int) -> bytes:
            return inner_fs.cat_file(path, start, end)

        self._reader = _kapsel.Seekable.open_fetch(
            fetch, size, first, fs.identity_list(), fs._passphrase, **fs._policy
        )
        kwargs.pop("size", None)
        super().__init__(
            fs,
            path,
            mode="rb",
            block_size=block_size,
            size=self._reader.unverified_len,
            **kwargs,
        )

    def _fetch_range(self, start: int, end: int) -> bytes:
        return self._reader.read_at(start, max(0, end - start))

    @property
    def length_verified(self) -> bool:
        """Whether the final chunk verified, which authenticates ``size``."""
        return self._reader.length_verified

    @property
    def verified_sender(self) -> Any:
        """The sender whose signatures verified (signed files, once a
        segment verified)."""
        return self._reader.verified_sender

    @property
    def claimed_sender(self) -> Optional[str]:
        """The sender the header names: unverified."""
        return self._reader.claimed_sender

    @property
    def fetches(self) -> int:
        """Ciphertext ranges fetched so far, the header not included."""
        return self._reader.fetches

    @property
    def bytes_fetched(self) -> int:
        """Ciphertext bytes those fetches returned."""
        return self._reader.bytes_fetched
