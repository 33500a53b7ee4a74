//! SSH keys as kapsel keys: an `ecdsa-sha2-nistp256` public key (one line
//! of an `authorized_keys` or `.pub` file) is a recipient, and the matching
//! OpenSSH private key file (`-----BEGIN OPENSSH PRIVATE KEY-----`, plain
//! or protected by a passphrase) is an identity. The P-256 key is used as
//! it is: the recipient of `ecdsa-sha2-nistp256 AAAA...` is the same as the
//! `kapsel1...` string of that point, so a file encrypted to one opens with
//! the other.
//!
//! Formats (OpenSSH's `PROTOCOL.key` and RFC 4251/5656 wire strings):
//! - public key blob: `string "ecdsa-sha2-nistp256"`, `string "nistp256"`,
//!   `string Q` (an uncompressed SEC1 point);
//! - private key file: Base64 of `"openssh-key-v1\0"`, `string cipher`,
//!   `string kdf`, `string kdf options`, `uint32 1` (one key),
//!   `string public key blob`, `string private section` (encrypted unless
//!   the cipher is `none`; for AES-GCM the 16-byte tag follows it); the
//!   private section is `uint32 check`, `uint32 check`, the key type and
//!   public fields again, `mpint d`, `string comment`, then padding bytes
//!   1, 2, 3, ... up to the cipher's block size.
//!
//! Invariants: only the composition is written here (bcrypt-pbkdf from the
//! `bcrypt-pbkdf` crate, AES-CTR and AES-GCM from AWS-LC); every length is
//! checked against what remains before it is used; the bcrypt work a
//! hostile file can ask for is bounded by [`MAX_BCRYPT_ROUNDS`]; a private
//! key whose scalar does not give the public point it claims is refused;
//! decrypted key material lives in zeroizing buffers.

use std::fmt;

use aws_lc_rs::aead::{self, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{DecryptingKey, DecryptionContext, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use base64::Engine;
use zeroize::Zeroizing;

use crate::ec::{PublicKey, SecretKey, SCALAR_LEN, UNCOMPRESSED_LEN};
use crate::keys::{Identity, Recipient};

/// The key type kapsel accepts.
const KEY_TYPE: &str = "ecdsa-sha2-nistp256";
const CURVE: &str = "nistp256";
const MAGIC: &[u8] = b"openssh-key-v1\0";
/// The PEM-style label of an OpenSSH private key file.
pub const PRIVATE_KEY_LABEL: &str = "OPENSSH PRIVATE KEY";
/// The most bcrypt rounds accepted from a key file: `ssh-keygen` writes 16
/// (its `-a` option sets more); each round costs about 10 ms here, so the
/// bound keeps a hostile file to about 10 s of work.
pub const MAX_BCRYPT_ROUNDS: u32 = 1024;
/// The largest private key file text accepted (a P-256 key is about 500
/// bytes; comments can make it longer).
const MAX_PRIVATE_KEY_TEXT: usize = 64 * 1024;

/// Why an SSH key was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SshKeyError {
    /// Another SSH key type; only `ecdsa-sha2-nistp256` is a P-256 key.
    #[error("SSH key type {0} is not supported (only ecdsa-sha2-nistp256 keys are P-256 keys)")]
    UnsupportedKeyType(String),
    /// The text is not an SSH public key line or private key file.
    #[error("not an SSH key: {0}")]
    NotSshKey(&'static str),
    /// The key's bytes do not follow the format.
    #[error("malformed SSH key: {0}")]
    Malformed(&'static str),
    /// The private key file is protected with a cipher kapsel does not read.
    #[error("the SSH private key is encrypted with {0}, which kapsel does not read (it reads aes128-ctr, aes192-ctr, aes256-ctr, aes128-gcm@openssh.com and aes256-gcm@openssh.com)")]
    UnsupportedCipher(String),
    /// The private key file uses a key derivation other than bcrypt.
    #[error("the SSH private key uses key derivation {0}; only bcrypt is supported")]
    UnsupportedKdf(String),
    /// More bcrypt rounds than [`MAX_BCRYPT_ROUNDS`].
    #[error("the SSH private key asks for {0} bcrypt rounds, more than the {MAX_BCRYPT_ROUNDS} accepted")]
    TooManyRounds(u32),
    /// The file is protected by a passphrase and none was given.
    #[error("the SSH private key is protected by a passphrase")]
    PassphraseRequired,
    /// The passphrase does not open the key (its check values differ, or
    /// the AES-GCM tag does not verify).
    #[error("wrong passphrase for the SSH private key")]
    WrongPassphrase,
    /// The scalar does not give the public point the file claims.
    #[error("the SSH private key does not match its public key")]
    KeyMismatch,
}

/// The result of reading an OpenSSH private key file.
pub enum PrivateKeyFile {
    /// The identity, and the key's comment.
    Identity(Identity, String),
    /// The file is passphrase-protected: call [`decrypt_private_key`] with
    /// the passphrase. Carries the key's public half (it is not encrypted),
    /// so a caller can tell whether the key is one it needs before asking.
    Encrypted(Recipient),
}

impl fmt::Debug for PrivateKeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrivateKeyFile::Identity(id, _) => f.debug_tuple("Identity").field(id).finish(),
            PrivateKeyFile::Encrypted(r) => f.debug_tuple("Encrypted").field(r).finish(),
        }
    }
}

/// Whether `line` looks like an SSH public key line: one of its fields
/// (after any `authorized_keys` options) names an SSH key type (`ssh-...`,
/// `ecdsa-sha2-...`, `sk-...`), so a caller can route it here instead of to
/// the `kapsel1...` parser.
pub fn looks_like_public_key(line: &str) -> bool {
    split_options_aware(line.trim())
        .iter()
        .any(|w| is_key_type_name(w))
}

fn is_key_type_name(word: &str) -> bool {
    word.starts_with("ssh-")
        || word.starts_with("ecdsa-sha2-")
        || word.starts_with("sk-")
        || word.starts_with("rsa-sha2-")
}

/// Parses one SSH public key line, `ecdsa-sha2-nistp256 BASE64 [comment]`
/// (the `.pub` and `authorized_keys` form; `authorized_keys` options before
/// the key type are skipped). Other key types are refused by name.
pub fn parse_public_key(line: &str) -> Result<Recipient, SshKeyError> {
    let words = split_options_aware(line.trim());
    let at = words
        .iter()
        .position(|w| is_key_type_name(w))
        .ok_or(SshKeyError::NotSshKey(
            "no key type such as ecdsa-sha2-nistp256",
        ))?;
    let key_type = words[at];
    if key_type != KEY_TYPE {
        return Err(SshKeyError::UnsupportedKeyType(key_type.to_string()));
    }
    let blob = words
        .get(at + 1)
        .ok_or(SshKeyError::Malformed("no Base64 key after the key type"))?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|_| SshKeyError::Malformed("the key is not Base64"))?;
    let mut r = Wire::new(&blob);
    let point = read_public_fields(&mut r)?;
    r.finish("bytes after the public key")?;
    Ok(point)
}

/// Splits an `authorized_keys` line at white space outside double quotes
/// (options such as `command="a b"` hold quoted spaces).
fn split_options_aware(line: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut start = None;
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => {
                quoted = !quoted;
                start.get_or_insert(i);
            }
            ' ' | '\t' if !quoted => {
                if let Some(s) = start.take() {
                    words.push(&line[s..i]);
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        words.push(&line[s..]);
    }
    words
}

/// The key type, curve and point of a public key blob.
fn read_public_fields(r: &mut Wire<'_>) -> Result<Recipient, SshKeyError> {
    let key_type = r.string()?;
    if key_type != KEY_TYPE.as_bytes() {
        return Err(SshKeyError::UnsupportedKeyType(
            String::from_utf8_lossy(key_type).into_owned(),
        ));
    }
    if r.string()? != CURVE.as_bytes() {
        return Err(SshKeyError::Malformed("the curve is not nistp256"));
    }
    let q = r.string()?;
    if q.len() != UNCOMPRESSED_LEN || q[0] != 0x04 {
        return Err(SshKeyError::Malformed(
            "the point is not an uncompressed P-256 point",
        ));
    }
    PublicKey::from_sec1_bytes(q)
        .map(Recipient::from_public_key)
        .map_err(|_| SshKeyError::Malformed("the point is not on P-256"))
}

/// The decoded, still possibly encrypted, contents of a private key file.
struct Parsed {
    cipher: String,
    kdf: String,
    kdf_options: Vec<u8>,
    public: Recipient,
    /// The private section, with the AES-GCM tag after it when there is one.
    private: Zeroizing<Vec<u8>>,
}

/// Reads an OpenSSH private key file's text. A plain key gives its
/// identity at once; a protected one gives its public key, for
/// [`decrypt_private_key`].
pub fn read_private_key(text: &str) -> Result<PrivateKeyFile, SshKeyError> {
    let parsed = parse_private_file(text)?;
    if parsed.cipher == "none" && parsed.kdf == "none" {
        let (identity, comment) = read_private_section(&parsed.private, &parsed.public, 8)?;
        return Ok(PrivateKeyFile::Identity(identity, comment));
    }
    check_protection(&parsed)?;
    Ok(PrivateKeyFile::Encrypted(parsed.public))
}

/// Opens a passphrase-protected OpenSSH private key file.
pub fn decrypt_private_key(
    text: &str,
    passphrase: &[u8],
) -> Result<(Identity, String), SshKeyError> {
    let parsed = parse_private_file(text)?;
    if parsed.cipher == "none" {
        return read_private_section(&parsed.private, &parsed.public, 8);
    }
    let cipher = check_protection(&parsed)?;
    let mut o = Wire::new(&parsed.kdf_options);
    let salt = o.string()?;
    let rounds = o.u32()?;
    o.finish("bytes after the bcrypt options")?;
    if rounds == 0 {
        return Err(SshKeyError::Malformed("zero bcrypt rounds"));
    }
    if rounds > MAX_BCRYPT_ROUNDS {
        return Err(SshKeyError::TooManyRounds(rounds));
    }
    if passphrase.is_empty() {
        return Err(SshKeyError::PassphraseRequired);
    }
    let mut key_iv = Zeroizing::new(vec![0u8; cipher.key_len + cipher.iv_len]);
    bcrypt_pbkdf::bcrypt_pbkdf(passphrase, salt, rounds, &mut key_iv)
        .map_err(|_| SshKeyError::Malformed("bad bcrypt parameters"))?;
    let (key, iv) = key_iv.split_at(cipher.key_len);
    let mut private = parsed.private.clone();
    let plain_len = cipher.decrypt(key, iv, &mut private)?;
    read_private_section(&private[..plain_len], &parsed.public, 16)
}

/// A cipher of the private section.
struct SectionCipher {
    key_len: usize,
    iv_len: usize,
    gcm: bool,
}

impl SectionCipher {
    fn named(name: &str) -> Option<Self> {
        let (key_len, gcm) = match name {
            "aes128-ctr" => (16, false),
            "aes192-ctr" => (24, false),
            "aes256-ctr" => (32, false),
            "aes128-gcm@openssh.com" => (16, true),
            "aes256-gcm@openssh.com" => (32, true),
            _ => return None,
        };
        Some(SectionCipher {
            key_len,
            iv_len: if gcm { 12 } else { 16 },
            gcm,
        })
    }

    /// Decrypts `section` in place; returns the length of the plaintext
    /// (without the GCM tag).
    fn decrypt(&self, key: &[u8], iv: &[u8], section: &mut [u8]) -> Result<usize, SshKeyError> {
        if self.gcm {
            let algorithm = if self.key_len == 16 {
                &aead::AES_128_GCM
            } else {
                &aead::AES_256_GCM
            };
            let key = UnboundKey::new(algorithm, key)
                .map(LessSafeKey::new)
                .map_err(|_| SshKeyError::Malformed("bad key length"))?;
            let nonce = Nonce::try_assume_unique_for_key(iv)
                .map_err(|_| SshKeyError::Malformed("bad nonce length"))?;
            let plain = key
                .open_in_place(nonce, aead::Aad::empty(), section)
                .map_err(|_| SshKeyError::WrongPassphrase)?;
            Ok(plain.len())
        } else {
            let algorithm = match self.key_len {
                16 => &aws_lc_rs::cipher::AES_128,
                24 => &aws_lc_rs::cipher::AES_192,
                _ => &aws_lc_rs::cipher::AES_256,
            };
            let iv: [u8; 16] = iv
                .try_into()
                .map_err(|_| SshKeyError::Malformed("bad IV length"))?;
            let key = UnboundCipherKey::new(algorithm, key)
                .and_then(DecryptingKey::ctr)
                .map_err(|_| SshKeyError::Malformed("bad key length"))?;
            let len = section.len();
            key.decrypt(section, DecryptionContext::Iv128(FixedLength::from(iv)))
                .map_err(|_| SshKeyError::Malformed("AES-CTR failed"))?;
            Ok(len)
        }
    }
}

/// The cipher of a protected file, once its names are known to be ones
/// kapsel reads.
fn check_protection(parsed: &Parsed) -> Result<SectionCipher, SshKeyError> {
    if parsed.kdf != "bcrypt" {
        return Err(SshKeyError::UnsupportedKdf(parsed.kdf.clone()));
    }
    let cipher = SectionCipher::named(&parsed.cipher)
        .ok_or_else(|| SshKeyError::UnsupportedCipher(parsed.cipher.clone()))?;
    let body = parsed.private.len() - if cipher.gcm { 16 } else { 0 };
    if body % 16 != 0 {
        return Err(SshKeyError::Malformed(
            "the private section is not whole AES blocks",
        ));
    }
    Ok(cipher)
}

fn parse_private_file(text: &str) -> Result<Parsed, SshKeyError> {
    if text.len() > MAX_PRIVATE_KEY_TEXT {
        return Err(SshKeyError::Malformed("the key file is too long"));
    }
    let der = decode_block(text)?;
    let mut r = Wire::new(&der);
    if r.take(MAGIC.len())? != MAGIC {
        return Err(SshKeyError::Malformed("no openssh-key-v1 magic"));
    }
    let cipher = r.utf8()?;
    let kdf = r.utf8()?;
    let kdf_options = r.string()?.to_vec();
    if r.u32()? != 1 {
        return Err(SshKeyError::Malformed("the file must hold exactly one key"));
    }
    let public = {
        let mut p = Wire::new(r.string()?);
        let public = read_public_fields(&mut p)?;
        p.finish("bytes after the public key")?;
        public
    };
    // A cipher kapsel cannot read may add bytes after the section (as
    // chacha20-poly1305's tag does), so it is named before those are read.
    let section_cipher = SectionCipher::named(&cipher);
    if cipher != "none" && section_cipher.is_none() {
        return Err(SshKeyError::UnsupportedCipher(cipher));
    }
    let mut private = r.string()?.to_vec();
    if section_cipher.is_some_and(|c| c.gcm) {
        private.extend_from_slice(r.take(16)?);
    }
    r.finish("bytes after the private key")?;
    Ok(Parsed {
        cipher,
        kdf,
        kdf_options,
        public,
        private: Zeroizing::new(private),
    })
}

/// The bytes of the one `OPENSSH PRIVATE KEY` block of `text`. OpenSSH
/// writes 70-column lines, so this is not RFC 7468's strict 64 columns:
/// any line length, no headers, nothing but blank lines around the block.
fn decode_block(text: &str) -> Result<Zeroizing<Vec<u8>>, SshKeyError> {
    let begin = format!("-----BEGIN {PRIVATE_KEY_LABEL}-----");
    let end = format!("-----END {PRIVATE_KEY_LABEL}-----");
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some(begin.as_str()) {
        return Err(SshKeyError::NotSshKey("not an OPENSSH PRIVATE KEY block"));
    }
    let mut body = Zeroizing::new(String::new());
    let mut ended = false;
    for line in lines {
        if ended {
            return Err(SshKeyError::Malformed("text after the END line"));
        }
        if line == end {
            ended = true;
        } else {
            body.push_str(line);
        }
    }
    if !ended {
        return Err(SshKeyError::Malformed("no END line"));
    }
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| SshKeyError::Malformed("the key block is not Base64"))
}

/// Reads a decrypted private section, padded to `block` bytes.
fn read_private_section(
    section: &[u8],
    public: &Recipient,
    block: usize,
) -> Result<(Identity, String), SshKeyError> {
    let mut r = Wire::new(section);
    let (check1, check2) = (r.u32()?, r.u32()?);
    if check1 != check2 {
        // The only sign of a wrong key for AES-CTR (and of damage in a
        // plain file, whose checks are equal as written).
        return Err(SshKeyError::WrongPassphrase);
    }
    let claimed = read_public_fields(&mut r)?;
    let d = r.string()?;
    let comment = String::from_utf8_lossy(r.string()?).into_owned();
    let padding = r.rest();
    let padded = padding.len() < block
        && padding
            .iter()
            .enumerate()
            .all(|(i, &b)| usize::from(b) == i + 1);
    if !padded || section.len() % block != 0 {
        return Err(SshKeyError::Malformed("bad padding after the private key"));
    }
    // mpint: big-endian, a leading zero byte when the top bit is set.
    let d = match d {
        [0, rest @ ..] if rest.first().is_some_and(|b| b & 0x80 != 0) => rest,
        [first, ..] if first & 0x80 != 0 => {
            return Err(SshKeyError::Malformed("negative private scalar"))
        }
        [0, ..] => return Err(SshKeyError::Malformed("non-minimal private scalar")),
        d => d,
    };
    if d.len() > SCALAR_LEN || d.is_empty() {
        return Err(SshKeyError::Malformed("the private scalar is not 32 bytes"));
    }
    let mut scalar = Zeroizing::new([0u8; SCALAR_LEN]);
    scalar[SCALAR_LEN - d.len()..].copy_from_slice(d);
    let secret = SecretKey::from_bytes(&scalar[..])
        .map_err(|_| SshKeyError::Malformed("the private scalar is out of range"))?;
    let identity = Identity::from_secret_key(secret);
    if &identity.to_recipient() != public || &claimed != public {
        return Err(SshKeyError::KeyMismatch);
    }
    Ok((identity, comment))
}

/// A reader of SSH wire fields (RFC 4251 section 5).
struct Wire<'a> {
    bytes: &'a [u8],
}

impl<'a> Wire<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Wire { bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], SshKeyError> {
        if n > self.bytes.len() {
            return Err(SshKeyError::Malformed("a field runs past the end"));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, SshKeyError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<&'a [u8], SshKeyError> {
        let len = self.u32()?;
        self.take(usize::try_from(len).unwrap_or(usize::MAX))
    }

    fn utf8(&mut self) -> Result<String, SshKeyError> {
        std::str::from_utf8(self.string()?)
            .map(str::to_string)
            .map_err(|_| SshKeyError::Malformed("a name is not UTF-8"))
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    fn finish(&self, what: &'static str) -> Result<(), SshKeyError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(SshKeyError::Malformed(what))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s);
    }

    fn blob(point: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        string(&mut b, KEY_TYPE.as_bytes());
        string(&mut b, CURVE.as_bytes());
        string(&mut b, point);
        b
    }

    /// A plain (unencrypted) private key file for `id`, as `ssh-keygen -N ''`
    /// lays it out.
    fn plain_file(id: &Identity, check2: u32) -> String {
        let point = id.to_recipient().public_key().to_uncompressed();
        let mut section = Vec::new();
        section.extend_from_slice(&7u32.to_be_bytes());
        section.extend_from_slice(&check2.to_be_bytes());
        section.extend_from_slice(&blob(&point)[..]);
        let d = id.secret_key().to_bytes();
        let mut mpint = Vec::new();
        if d[0] & 0x80 != 0 {
            mpint.push(0);
        }
        let first = d.iter().position(|&b| b != 0).unwrap_or(31);
        mpint.extend_from_slice(&d[first..]);
        string(&mut section, &mpint);
        string(&mut section, b"me@host");
        let mut pad = 1u8;
        while section.len() % 8 != 0 {
            section.push(pad);
            pad += 1;
        }
        let mut file = MAGIC.to_vec();
        string(&mut file, b"none");
        string(&mut file, b"none");
        string(&mut file, b"");
        file.extend_from_slice(&1u32.to_be_bytes());
        string(&mut file, &blob(&point));
        string(&mut file, &section);
        armor(&file)
    }

    /// The file's text as OpenSSH writes it: Base64 in 70-column lines.
    fn armor(bytes: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut text = format!("-----BEGIN {PRIVATE_KEY_LABEL}-----\n");
        for line in b64.as_bytes().chunks(70) {
            text.push_str(std::str::from_utf8(line).expect("ASCII"));
            text.push('\n');
        }
        text.push_str(&format!("-----END {PRIVATE_KEY_LABEL}-----\n"));
        text
    }

    #[test]
    fn a_public_key_line_is_the_same_recipient() {
        let id = Identity::generate();
        let point = id.to_recipient().public_key().to_uncompressed();
        let b64 = base64::engine::general_purpose::STANDARD.encode(blob(&point));
        for line in [
            format!("{KEY_TYPE} {b64}"),
            format!("{KEY_TYPE} {b64} me@host"),
            format!("restrict,command=\"echo a b\" {KEY_TYPE} {b64} me@host"),
        ] {
            assert_eq!(parse_public_key(&line), Ok(id.to_recipient()), "{line}");
        }
    }

    #[test]
    fn other_key_types_are_named() {
        let e = parse_public_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA me").unwrap_err();
        assert_eq!(e, SshKeyError::UnsupportedKeyType("ssh-ed25519".into()));
        assert!(e.to_string().contains("ssh-ed25519"));
        let e = parse_public_key("ecdsa-sha2-nistp384 AAAA").unwrap_err();
        assert_eq!(
            e,
            SshKeyError::UnsupportedKeyType("ecdsa-sha2-nistp384".into())
        );
    }

    #[test]
    fn damaged_public_keys_are_malformed_not_panics() {
        let id = Identity::generate();
        let good = blob(&id.to_recipient().public_key().to_uncompressed());
        for cut in 0..good.len() {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&good[..cut]);
            assert!(parse_public_key(&format!("{KEY_TYPE} {b64}")).is_err());
        }
        let mut off_curve = good.clone();
        let last = off_curve.len() - 1;
        off_curve[last] ^= 1;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&off_curve);
        assert!(matches!(
            parse_public_key(&format!("{KEY_TYPE} {b64}")),
            Err(SshKeyError::Malformed(_))
        ));
    }

    #[test]
    fn a_plain_private_key_is_the_identity() {
        for _ in 0..8 {
            let id = Identity::generate();
            match read_private_key(&plain_file(&id, 7)).expect("reads") {
                PrivateKeyFile::Identity(got, comment) => {
                    assert_eq!(got.to_recipient(), id.to_recipient());
                    assert_eq!(comment, "me@host");
                }
                PrivateKeyFile::Encrypted(_) => panic!("not encrypted"),
            }
        }
    }

    #[test]
    fn unequal_checks_and_truncations_are_refused() {
        let id = Identity::generate();
        assert!(matches!(
            read_private_key(&plain_file(&id, 8)),
            Err(SshKeyError::WrongPassphrase)
        ));
        let der = decode_block(&plain_file(&id, 7)).expect("block");
        for cut in 0..der.len() {
            assert!(
                read_private_key(&armor(&der[..cut])).is_err(),
                "cut at {cut}"
            );
        }
    }
}
