//! The kapsel v1 wire format: header types, limits, a `nom` parser ([`read`](mod@read))
//! and a serializer ([`write`](mod@write)) side by side. `SPEC.md` in this crate is the
//! normative description; this crate is its executable form.
//!
//! Invariants:
//! - There is exactly one encoding of every [`Header`]: `write(parse(b)) == b`
//!   for every accepted `b`, and `parse(write(h)) == h` for every valid `h`.
//! - Every length read from the wire is checked against a named `MAX_*` limit
//!   before anything is allocated for it.
//! - The parser never looks past `header_len` bytes, so a stream reader driven
//!   by it never consumes payload bytes.
//! - No cryptography happens here: points are checked for their encoding
//!   (length and `0x04` prefix) only; curve membership is the codec's job.
#![forbid(unsafe_code)]

pub mod read;
pub mod write;

use std::fmt;

/// The first eight bytes of every kapsel file: `0x8B "KAPSEL" 0x0A`.
pub const MAGIC: [u8; 8] = *b"\x8bKAPSEL\n";
/// Format version 1: P-256 stanzas only (SPEC.md section 3).
pub const VERSION_1: u8 = 0x01;
/// Format version 2: version 1 plus the hybrid post-quantum and passphrase
/// stanzas and the larger limits they need (SPEC.md section 14). An encoder
/// writes it only for a header that holds one of those stanzas.
pub const VERSION_2: u8 = 0x02;
/// Length of the fixed prefix: magic, version, suite, chunk size, header length.
pub const PREFIX_LEN: usize = 16;
/// log2 of the plaintext chunk size; v1 fixes it at 14 (16 KiB).
pub const CHUNK_SIZE_LOG2: u8 = 14;
/// Plaintext bytes in every chunk but the last.
pub const CHUNK_SIZE: usize = 1 << CHUNK_SIZE_LOG2;

/// Largest version 1 header, in bytes, from the magic to the end of the extension area.
pub const MAX_HEADER_LEN: u32 = 65_536;
/// Largest version 2 header: 256 hybrid stanzas, a sender key and a full
/// extension area (317 798 bytes) always fit.
pub const MAX_HEADER_LEN_V2: u32 = 327_680;
/// Smallest possible header: an anonymous sender, one P-256 stanza, no extensions.
pub const MIN_HEADER_LEN: u32 = (PREFIX_LEN + 8 + 8 + 1 + 2 + 4 + P256_STANZA_BODY_LEN + 2) as u32;
/// Smallest version 2 header: an anonymous sender, one passphrase stanza,
/// no extensions.
pub const MIN_HEADER_LEN_V2: u32 =
    (PREFIX_LEN + 8 + 8 + 1 + 2 + 4 + PASSPHRASE_STANZA_BODY_LEN + 2) as u32;
/// Most recipient stanzas in one header.
pub const MAX_RECIPIENTS: u16 = 256;
/// Largest stanza body of any type in a version 1 header.
pub const MAX_STANZA_BODY_LEN: u16 = 1024;
/// Largest stanza body of any type in a version 2 header (room for a future
/// ML-KEM-1024 hybrid stanza, 1717 bytes).
pub const MAX_STANZA_BODY_LEN_V2: u16 = 2048;
/// Largest extension area (all records together).
pub const MAX_EXTENSIONS_LEN: u16 = 8192;
/// Latest representable creation time: 9999-12-31T23:59:59Z, in Unix seconds.
pub const MAX_CREATED_AT: u64 = 253_402_300_799;

/// Length of an uncompressed SEC1 P-256 point: `0x04 || X || Y`.
pub const P256_POINT_LEN: usize = 65;
/// Length of a recipient key hint.
pub const KEY_HINT_LEN: usize = 4;
/// Length of a wrapped file key: 32-byte key plus 16-byte AES-GCM tag.
pub const WRAPPED_KEY_LEN: usize = 48;
/// Length of a P-256 HPKE stanza body: hint, encapsulated key, wrapped key.
pub const P256_STANZA_BODY_LEN: usize = KEY_HINT_LEN + P256_POINT_LEN + WRAPPED_KEY_LEN;
/// Length of an ML-KEM-768 ciphertext (FIPS 203).
pub const MLKEM768_CIPHERTEXT_LEN: usize = 1088;
/// Length of the MLKEM768-P256 encapsulated key: the ML-KEM-768 ciphertext
/// followed by an uncompressed P-256 point.
pub const HYBRID_ENC_LEN: usize = MLKEM768_CIPHERTEXT_LEN + P256_POINT_LEN;
/// Length of a hybrid post-quantum stanza body: hint, encapsulated key, wrapped key.
pub const HYBRID_STANZA_BODY_LEN: usize = KEY_HINT_LEN + HYBRID_ENC_LEN + WRAPPED_KEY_LEN;
/// Length of the random salt of a passphrase stanza.
pub const PASSPHRASE_SALT_LEN: usize = 16;
/// Length of a passphrase stanza body: salt, memory (KiB, u32), passes
/// (u32), lanes (u8), wrapped key.
pub const PASSPHRASE_STANZA_BODY_LEN: usize = PASSPHRASE_SALT_LEN + 4 + 4 + 1 + WRAPPED_KEY_LEN;

/// Bit that marks an extension a decoder must understand to continue.
pub const EXTENSION_CRITICAL: u16 = 0x8000;
/// Extension type of the exchange challenge (SPEC.md section 3.5): a
/// non-critical record whose value is the receiver's 32-byte challenge.
pub const EXTENSION_CHALLENGE: u16 = 0x0020;

/// A cipher suite: the key-wrap and payload algorithms of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Suite {
    /// `0x0001`: HPKE DHKEM(P-256, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM key
    /// wrap; Cobblestone-256 payload (AES-256-GCM, HKDF-SHA-512, 16 KiB chunks).
    P256HpkeCobblestone256,
}

impl Suite {
    /// The suite's identifier on the wire.
    pub fn id(self) -> u16 {
        match self {
            Suite::P256HpkeCobblestone256 => 0x0001,
        }
    }

    /// The suite for a wire identifier, if this version knows it.
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            0x0001 => Some(Suite::P256HpkeCobblestone256),
            _ => None,
        }
    }

    /// A human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            Suite::P256HpkeCobblestone256 => {
                "DHKEM(P-256, HKDF-SHA256)/HKDF-SHA256/AES-256-GCM + Cobblestone-256"
            }
        }
    }
}

/// An uncompressed SEC1 P-256 point, as carried on the wire. Only the
/// encoding has been checked; the codec checks curve membership.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct P256Point(pub [u8; P256_POINT_LEN]);

impl fmt::Debug for P256Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P256Point(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// The encapsulated key of a hybrid stanza: the ML-KEM-768 ciphertext
/// (1088 bytes) followed by an uncompressed P-256 point (65 bytes, first
/// byte `0x04`; curve membership is the codec's job).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HybridEnc(pub Box<[u8; HYBRID_ENC_LEN]>);

impl HybridEnc {
    /// The ML-KEM-768 ciphertext.
    pub fn mlkem_ciphertext(&self) -> &[u8] {
        &self.0[..MLKEM768_CIPHERTEXT_LEN]
    }

    /// The ephemeral P-256 point, uncompressed.
    pub fn p256_point(&self) -> &[u8] {
        &self.0[MLKEM768_CIPHERTEXT_LEN..]
    }
}

impl fmt::Debug for HybridEnc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HybridEnc({} bytes)", self.0.len())
    }
}

/// Who made the file, as far as the header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// Kind `0x00`: no sender key; recipient stanzas use HPKE base mode.
    Anonymous,
    /// Kind `0x01`: the sender's static P-256 public key; recipient stanzas
    /// use HPKE auth mode with it.
    P256(P256Point),
}

impl Sender {
    pub(crate) const KIND_ANONYMOUS: u8 = 0x00;
    pub(crate) const KIND_P256: u8 = 0x01;
}

/// One recipient stanza.
#[derive(Clone, PartialEq, Eq)]
pub enum Stanza {
    /// Type `0x0001`: the file key sealed with HPKE to a P-256 recipient.
    P256Hpke {
        /// The per-stanza hint (SPEC.md section 4.4: four bytes of SHA-256
        /// over a label, the recipient's compressed key and `enc`), or all
        /// zero when the encryptor hid the recipient.
        hint: [u8; KEY_HINT_LEN],
        /// HPKE `enc`: the ephemeral public key.
        enc: P256Point,
        /// HPKE ciphertext of the 32-byte file key.
        wrapped_key: [u8; WRAPPED_KEY_LEN],
    },
    /// Type `0x0002` (version 2 only): the file key sealed with HPKE to a
    /// hybrid MLKEM768-P256 recipient (KEM `0x0050`).
    HybridPq {
        /// The per-stanza hint (SPEC.md section 14.4), or all zero.
        hint: [u8; KEY_HINT_LEN],
        /// HPKE `enc`: ML-KEM-768 ciphertext || ephemeral P-256 point.
        enc: HybridEnc,
        /// HPKE ciphertext of the 32-byte file key.
        wrapped_key: [u8; WRAPPED_KEY_LEN],
    },
    /// Type `0x0003` (version 2 only, and then the only stanza of its
    /// header): the file key sealed under a key derived from a passphrase
    /// with Argon2id.
    Passphrase {
        /// Random Argon2id salt.
        salt: [u8; PASSPHRASE_SALT_LEN],
        /// Argon2id memory size in KiB, at least `8 * lanes`.
        memory_kib: u32,
        /// Argon2id passes, at least 1.
        passes: u32,
        /// Argon2id lanes (parallelism), at least 1.
        lanes: u8,
        /// AES-256-GCM ciphertext of the 32-byte file key.
        wrapped_key: [u8; WRAPPED_KEY_LEN],
    },
    /// A stanza type this version does not know. Decoders skip it.
    Unknown {
        /// The stanza type, never `0x0001` (nor, in a version 2 header,
        /// `0x0002` or `0x0003`).
        kind: u16,
        /// The opaque body, at most [`MAX_STANZA_BODY_LEN`] bytes.
        body: Vec<u8>,
    },
}

impl Stanza {
    /// Wire type of a P-256 HPKE stanza.
    pub const TYPE_P256_HPKE: u16 = 0x0001;
    /// Wire type of a hybrid MLKEM768-P256 HPKE stanza (version 2).
    pub const TYPE_HYBRID_PQ: u16 = 0x0002;
    /// Wire type of an Argon2id passphrase stanza (version 2).
    pub const TYPE_PASSPHRASE: u16 = 0x0003;

    /// The stanza's wire type.
    pub fn kind(&self) -> u16 {
        match self {
            Stanza::P256Hpke { .. } => Self::TYPE_P256_HPKE,
            Stanza::HybridPq { .. } => Self::TYPE_HYBRID_PQ,
            Stanza::Passphrase { .. } => Self::TYPE_PASSPHRASE,
            Stanza::Unknown { kind, .. } => *kind,
        }
    }

    /// Length of the stanza's body on the wire.
    pub fn body_len(&self) -> usize {
        match self {
            Stanza::P256Hpke { .. } => P256_STANZA_BODY_LEN,
            Stanza::HybridPq { .. } => HYBRID_STANZA_BODY_LEN,
            Stanza::Passphrase { .. } => PASSPHRASE_STANZA_BODY_LEN,
            Stanza::Unknown { body, .. } => body.len(),
        }
    }

    /// Whether this stanza exists only in version 2 headers.
    pub fn needs_version_2(&self) -> bool {
        matches!(self, Stanza::HybridPq { .. } | Stanza::Passphrase { .. })
    }
}

impl fmt::Debug for Stanza {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stanza::P256Hpke { hint, enc, .. } => f
                .debug_struct("P256Hpke")
                .field("hint", &format_args!("{:02x?}", hint))
                .field("enc", enc)
                .finish_non_exhaustive(),
            Stanza::HybridPq { hint, .. } => f
                .debug_struct("HybridPq")
                .field("hint", &format_args!("{:02x?}", hint))
                .finish_non_exhaustive(),
            Stanza::Passphrase {
                memory_kib,
                passes,
                lanes,
                ..
            } => f
                .debug_struct("Passphrase")
                .field("memory_kib", memory_kib)
                .field("passes", passes)
                .field("lanes", lanes)
                .finish_non_exhaustive(),
            Stanza::Unknown { kind, body } => f
                .debug_struct("Unknown")
                .field("kind", kind)
                .field("body_len", &body.len())
                .finish(),
        }
    }
}

/// One record of the extension area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// Record type; [`EXTENSION_CRITICAL`] set means "refuse if unknown".
    pub kind: u16,
    /// Record value.
    pub value: Vec<u8>,
}

/// A kapsel v1 header. Everything in it is authenticated by the payload's key
/// commitment, which takes the header bytes as its context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Cipher suite.
    pub suite: Suite,
    /// Creation time, seconds since 1970-01-01T00:00:00Z, at most [`MAX_CREATED_AT`].
    pub created_at: u64,
    /// Serial number chosen by the sender.
    pub serial: u64,
    /// The sender field.
    pub sender: Sender,
    /// Recipient stanzas, 1 to [`MAX_RECIPIENTS`], no two identical.
    pub stanzas: Vec<Stanza>,
    /// Extension records, types strictly ascending, no unknown critical type.
    pub extensions: Vec<Extension>,
}

/// Why a header was refused. Every variant maps to one decoder outcome
/// class of SPEC.md: see [`HeaderError::class`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The input does not start with the kapsel magic.
    #[error("not a kapsel file (bad magic)")]
    NotKapsel,
    /// A format version this implementation does not read.
    #[error("unsupported format version {found}")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
    },
    /// A suite identifier this implementation does not know.
    #[error("unsupported suite 0x{found:04x}")]
    UnsupportedSuite {
        /// The suite identifier found.
        found: u16,
    },
    /// A critical extension this implementation does not understand.
    #[error("unsupported critical extension 0x{kind:04x}")]
    UnsupportedExtension {
        /// The extension type found.
        kind: u16,
    },
    /// The input ended inside the header.
    #[error("header truncated")]
    Truncated,
    /// The header is not a valid v1 encoding.
    #[error("malformed header: {0}")]
    Malformed(Malformation),
}

/// The specific rule a malformed header breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformation {
    /// The chunk-size field is not 14.
    #[error("chunk size field must be 14, found {0}")]
    ChunkSize(u8),
    /// `header_len` is outside `MIN_HEADER_LEN..=MAX_HEADER_LEN`.
    #[error("header length {0} out of range")]
    HeaderLength(u32),
    /// `created_at` is later than `MAX_CREATED_AT`.
    #[error("creation time out of range")]
    CreatedAt,
    /// Unknown sender kind byte.
    #[error("unknown sender kind 0x{0:02x}")]
    SenderKind(u8),
    /// A P-256 point not in uncompressed SEC1 form.
    #[error("public key is not an uncompressed P-256 point")]
    PointEncoding,
    /// Recipient count of zero or above `MAX_RECIPIENTS`.
    #[error("recipient count {0} out of range")]
    RecipientCount(u16),
    /// A stanza body of the wrong length for its type, or above `MAX_STANZA_BODY_LEN`.
    #[error("stanza body length {0} invalid")]
    StanzaLength(u16),
    /// Two identical stanzas.
    #[error("duplicate recipient stanza")]
    DuplicateStanza,
    /// Extension area longer than `MAX_EXTENSIONS_LEN`.
    #[error("extension area length {0} out of range")]
    ExtensionsLength(u16),
    /// Extension types not strictly ascending.
    #[error("extension types not strictly ascending")]
    ExtensionOrder,
    /// A field runs past the end of its enclosing length.
    #[error("field overruns its enclosing length")]
    Overrun,
    /// Bytes left over inside a length-delimited area.
    #[error("trailing bytes inside the header")]
    TrailingBytes,
    /// Argon2id parameters no implementation can run: zero passes or
    /// lanes, or less than 8 KiB of memory per lane.
    #[error("invalid passphrase stanza parameters")]
    PassphraseParams,
    /// A passphrase stanza in a header with more than one stanza.
    #[error("a passphrase stanza must be the only stanza")]
    PassphraseNotAlone,
    /// A version 2 header without any version 2 stanza (it must be written as version 1).
    #[error("version 2 header without a post-quantum or passphrase stanza")]
    NeedlessVersion2,
}

/// Decoder outcome classes of SPEC.md that a header alone can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderClass {
    /// Not a kapsel file.
    NotKapsel,
    /// A version, suite or critical extension this decoder does not support.
    Unsupported,
    /// Anything else wrong with the header's encoding, truncation included.
    Malformed,
}

impl HeaderError {
    /// The outcome class of SPEC.md this error belongs to.
    pub fn class(&self) -> HeaderClass {
        match self {
            HeaderError::NotKapsel => HeaderClass::NotKapsel,
            HeaderError::UnsupportedVersion { .. }
            | HeaderError::UnsupportedSuite { .. }
            | HeaderError::UnsupportedExtension { .. } => HeaderClass::Unsupported,
            HeaderError::Truncated | HeaderError::Malformed(_) => HeaderClass::Malformed,
        }
    }
}

impl From<Malformation> for HeaderError {
    fn from(m: Malformation) -> Self {
        HeaderError::Malformed(m)
    }
}

impl Header {
    /// Checks the rules that do not depend on the byte layout; the parser
    /// and the serializer both call it, so neither can accept what the other
    /// would refuse.
    pub fn check(&self) -> Result<(), HeaderError> {
        if self.created_at > MAX_CREATED_AT {
            return Err(Malformation::CreatedAt.into());
        }
        if let Sender::P256(point) = &self.sender {
            check_point(point)?;
        }
        let count = self.stanzas.len();
        if count == 0 || count > usize::from(MAX_RECIPIENTS) {
            return Err(
                Malformation::RecipientCount(u16::try_from(count).unwrap_or(u16::MAX)).into(),
            );
        }
        let v2 = self.version() == VERSION_2;
        let max_body = if v2 {
            MAX_STANZA_BODY_LEN_V2
        } else {
            MAX_STANZA_BODY_LEN
        };
        for (i, stanza) in self.stanzas.iter().enumerate() {
            match stanza {
                Stanza::P256Hpke { enc, .. } => check_point(enc)?,
                Stanza::HybridPq { enc, .. } => {
                    if enc.p256_point()[0] != 0x04 {
                        return Err(Malformation::PointEncoding.into());
                    }
                }
                Stanza::Passphrase {
                    memory_kib,
                    passes,
                    lanes,
                    ..
                } => {
                    if count != 1 {
                        return Err(Malformation::PassphraseNotAlone.into());
                    }
                    check_passphrase_params(*memory_kib, *passes, *lanes)?;
                }
                Stanza::Unknown { kind, body } => {
                    let known = *kind == Stanza::TYPE_P256_HPKE
                        || (v2
                            && matches!(*kind, Stanza::TYPE_HYBRID_PQ | Stanza::TYPE_PASSPHRASE));
                    if known {
                        return Err(Malformation::StanzaLength(body.len() as u16).into());
                    }
                    if body.len() > usize::from(max_body) {
                        return Err(Malformation::StanzaLength(u16::MAX).into());
                    }
                }
            }
            if self.stanzas[..i].contains(stanza) {
                return Err(Malformation::DuplicateStanza.into());
            }
        }
        let mut previous: Option<u16> = None;
        for ext in &self.extensions {
            if previous.is_some_and(|p| p >= ext.kind) {
                return Err(Malformation::ExtensionOrder.into());
            }
            previous = Some(ext.kind);
            if ext.kind & EXTENSION_CRITICAL != 0 {
                return Err(HeaderError::UnsupportedExtension { kind: ext.kind });
            }
        }
        let ext_len = write::extensions_len(&self.extensions);
        if ext_len > usize::from(MAX_EXTENSIONS_LEN) {
            return Err(
                Malformation::ExtensionsLength(u16::try_from(ext_len).unwrap_or(u16::MAX)).into(),
            );
        }
        let len = self.encoded_len();
        // A few small unknown stanzas can make a header shorter than the
        // parser's lower bound on `header_len`.
        if len < min_header_len(self.version()) as usize
            || len > max_header_len(self.version()) as usize
        {
            return Err(Malformation::HeaderLength(u32::try_from(len).unwrap_or(u32::MAX)).into());
        }
        Ok(())
    }

    /// The format version this header is written in: [`VERSION_2`] exactly
    /// when it holds a stanza that only version 2 defines, else [`VERSION_1`]
    /// (so the one encoding of a header also fixes its version).
    pub fn version(&self) -> u8 {
        if self.stanzas.iter().any(Stanza::needs_version_2) {
            VERSION_2
        } else {
            VERSION_1
        }
    }

    /// The value of the extension record of type `kind`, if the header has one.
    pub fn extension(&self, kind: u16) -> Option<&[u8]> {
        self.extensions
            .iter()
            .find(|e| e.kind == kind)
            .map(|e| e.value.as_slice())
    }

    /// Length of this header's encoding, in bytes.
    pub fn encoded_len(&self) -> usize {
        let sender = match self.sender {
            Sender::Anonymous => 1,
            Sender::P256(_) => 1 + P256_POINT_LEN,
        };
        let stanzas: usize = self.stanzas.iter().map(|s| 4 + s.body_len()).sum();
        PREFIX_LEN + 8 + 8 + sender + 2 + stanzas + 2 + write::extensions_len(&self.extensions)
    }
}

/// Smallest `header_len` of a format version (1 or 2).
pub fn min_header_len(version: u8) -> u32 {
    if version == VERSION_2 {
        MIN_HEADER_LEN_V2
    } else {
        MIN_HEADER_LEN
    }
}

/// Largest `header_len` of a format version (1 or 2).
pub fn max_header_len(version: u8) -> u32 {
    if version == VERSION_2 {
        MAX_HEADER_LEN_V2
    } else {
        MAX_HEADER_LEN
    }
}

/// The structural rule on Argon2id parameters (SPEC.md section 14.5): at
/// least one pass and one lane, and at least 8 KiB of memory per lane. How
/// much work a decoder accepts is its own limit, not a rule of the format.
pub fn check_passphrase_params(memory_kib: u32, passes: u32, lanes: u8) -> Result<(), HeaderError> {
    if passes == 0 || lanes == 0 || u64::from(memory_kib) < 8 * u64::from(lanes) {
        return Err(Malformation::PassphraseParams.into());
    }
    Ok(())
}

fn check_point(point: &P256Point) -> Result<(), HeaderError> {
    if point.0[0] == 0x04 {
        Ok(())
    } else {
        Err(Malformation::PointEncoding.into())
    }
}
