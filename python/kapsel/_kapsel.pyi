"""Type hints of the extension module kapsel._kapsel (Rust, PyO3).

Applications use the package ``kapsel``; only ``Identity`` and
``Recipient`` are re-exported from here.
"""

from typing import Any, Callable, Optional, Sequence, Tuple, Union

CHUNK_SIZE: int
MAX_HEADER_LEN: int

class Identity:
    """A kapsel private key: P-256 (``KAPSEL-SECRET-KEY-1...``) or hybrid
    post-quantum (``KAPSEL-PQ-SECRET-KEY-1...``). ``str`` and ``repr`` show
    only the public recipient; pickles carry the secret.

    >>> import kapsel
    >>> me = kapsel.Identity.generate()
    >>> str(me.to_recipient()).startswith("kapsel1")
    True
    """

    @staticmethod
    def generate(post_quantum: bool = False) -> "Identity": ...
    @staticmethod
    def from_string(text: str) -> "Identity":
        """One identity string or PEM private key."""
    @staticmethod
    def from_file(path: Union[str, Any]) -> "Identity":
        """The one identity in an identity file (the CLI's ``-i`` formats)."""
    def to_recipient(self) -> "Recipient": ...
    def secret_string(self) -> str:
        """The identity string: the secret itself."""
    @property
    def kind(self) -> str:
        """``"p256"`` or ``"post-quantum"``."""
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class Recipient:
    """A kapsel public key: ``kapsel1...``, ``kapselpq1...``, an
    ``ecdsa-sha2-nistp256`` SSH line or PEM. ``str`` is its string."""

    @staticmethod
    def from_string(text: str) -> "Recipient": ...
    @staticmethod
    def from_pem(text: str) -> "Recipient": ...
    @staticmethod
    def list_from_file(path: Union[str, Any]) -> list["Recipient"]: ...
    @property
    def kind(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

def identities_from_file(path: Union[str, Any]) -> list[Identity]: ...
def recipients_from_file(path: Union[str, Any]) -> list[Recipient]: ...
def parse_identities(text: str) -> list[Identity]: ...
def parse_recipients(text: str) -> list[Recipient]: ...

class Encrypting:
    def __init__(
        self,
        recipients: Sequence[Recipient],
        sign_as: Optional[Identity] = None,
        armor: bool = False,
        passphrase: Optional[bytes] = None,
    ) -> None: ...
    def write(self, data: bytes) -> bytes: ...
    def finish(self) -> bytes: ...
    def abort(self) -> None: ...

def encrypt_file(
    src: str,
    dst: str,
    recipients: Sequence[Recipient],
    sign_as: Optional[Identity] = None,
    armor: bool = False,
    passphrase: Optional[bytes] = None,
) -> None: ...
def decrypt_stream(
    src: Any,
    dst: Any,
    identities: Sequence[Identity],
    passphrase: Optional[bytes] = None,
    armor: Optional[bool] = None,
    expect_sender: Sequence[Recipient] = (),
    max_age: Optional[int] = None,
    max_skew: int = 300,
) -> Tuple[int, Optional[str]]:
    """Raises ``RefusedError`` if the receiver policy (expected senders,
    maximum age and clock skew, in seconds) refuses the authenticated
    header; then nothing is written and a path ``dst`` is not created."""

class Seekable:
    @staticmethod
    def open_path(
        path: str,
        identities: Sequence[Identity],
        passphrase: Optional[bytes] = None,
        expect_sender: Sequence[Recipient] = (),
        max_age: Optional[int] = None,
        max_skew: int = 300,
    ) -> "Seekable":
        """Raises ``RefusedError`` if the receiver policy refuses the file."""
    @staticmethod
    def open_fetch(
        fetch: Callable[[int, int], bytes],
        size: int,
        first: bytes,
        identities: Sequence[Identity],
        passphrase: Optional[bytes] = None,
        expect_sender: Sequence[Recipient] = (),
        max_age: Optional[int] = None,
        max_skew: int = 300,
    ) -> "Seekable":
        """Raises ``RefusedError`` if the receiver policy refuses the file."""
    def read_at(self, offset: int, n: int) -> bytes: ...
    def source_range(self, offset: int, n: int) -> Optional[Tuple[int, int]]: ...
    def plaintext_len(self) -> int: ...
    def header(self) -> dict: ...
    @property
    def unverified_len(self) -> int: ...
    @property
    def length_verified(self) -> bool: ...
    @property
    def is_signed(self) -> bool: ...
    @property
    def verified_sender(self) -> Optional[Recipient]: ...
    @property
    def claimed_sender(self) -> Optional[str]: ...
    @property
    def chunks_decrypted(self) -> int: ...
    @property
    def segments_verified(self) -> int: ...
    @property
    def chunk_count(self) -> int: ...
    @property
    def header_len(self) -> int: ...
    @property
    def fetches(self) -> int: ...
    @property
    def bytes_fetched(self) -> int: ...

def inspect_header(data: bytes, file_len: Optional[int] = None) -> dict: ...
