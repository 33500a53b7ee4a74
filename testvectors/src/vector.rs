//! The kapsel conformance vector file format (`testvectors/README.md`):
//! a text header of `key: value` lines, a blank line, then the raw bytes of
//! the kapsel file (or of its ASCII armor).

use sha2::{Digest, Sha256};

/// The outcome class a vector expects: SPEC.md section 7, one for each
/// `kapsel_codec::Outcome` variant except `Io`, plus success.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Expect {
    /// The whole payload decrypted (and, for a signed file, the signature verified).
    Success,
    /// Wrong magic (`Outcome::NotKapsel`).
    NotKapsel,
    /// Unknown version, suite or critical extension (`Outcome::Unsupported`).
    Unsupported,
    /// Any rule of SPEC 3.7, a truncated header, an invalid point (`Outcome::MalformedHeader`).
    MalformedHeader,
    /// No identity opened a stanza and no hint matched (`Outcome::NoMatchingRecipient`).
    NoMatch,
    /// A hinted stanza did not open, or the commitment did not match (`Outcome::HeaderAuthFailed`).
    HeaderAuthFailure,
    /// Truncation, a chunk that does not open, trailing data (`Outcome::PayloadFailed`).
    PayloadFailure,
    /// Malformed ASCII armor (`Outcome::ArmorFailed`).
    ArmorFailure,
    /// The sender signature does not verify (`Outcome::SenderAuthFailed`).
    SenderVerificationFailure,
}

impl Expect {
    /// Every class, in the order the README lists them.
    pub const ALL: [Expect; 9] = [
        Expect::Success,
        Expect::NotKapsel,
        Expect::Unsupported,
        Expect::MalformedHeader,
        Expect::NoMatch,
        Expect::HeaderAuthFailure,
        Expect::PayloadFailure,
        Expect::ArmorFailure,
        Expect::SenderVerificationFailure,
    ];

    /// The name used in the `expect:` line.
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Success => "success",
            Expect::NotKapsel => "not_kapsel",
            Expect::Unsupported => "unsupported",
            Expect::MalformedHeader => "malformed_header",
            Expect::NoMatch => "no_match",
            Expect::HeaderAuthFailure => "header_auth_failure",
            Expect::PayloadFailure => "payload_failure",
            Expect::ArmorFailure => "armor_failure",
            Expect::SenderVerificationFailure => "sender_verification_failure",
        }
    }

    /// The class named by an `expect:` value.
    pub fn parse(s: &str) -> Option<Expect> {
        Expect::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// A vector as the generator builds it.
#[derive(Clone, Debug)]
pub struct Vector {
    /// File name (also the vector's name).
    pub name: String,
    /// Expected outcome class.
    pub expect: Expect,
    /// Whether `data` is ASCII armor.
    pub armor: bool,
    /// Identity strings (P-256 and hybrid), in the order the decoder tries them.
    pub identities: Vec<String>,
    /// The passphrase the decoder has, if any (`passphrase_hex:` line).
    pub passphrase: Option<Vec<u8>>,
    /// The file key the stanzas wrap, where there is one (informative).
    pub file_key: Option<[u8; 32]>,
    /// The plaintext a correct streaming decoder releases.
    pub released: Vec<u8>,
    /// The sender recipient string the header names, if any (informative).
    pub sender: Option<String>,
    /// What the vector tests, one line.
    pub comment: String,
    /// The input bytes.
    pub data: Vec<u8>,
}

impl Vector {
    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut head = String::new();
        let mut line = |k: &str, v: &str| {
            assert!(
                !v.contains('\n') && v.is_ascii(),
                "header value must be one ASCII line: {k}: {v:?}"
            );
            head.push_str(k);
            head.push_str(": ");
            head.push_str(v);
            head.push('\n');
        };
        line("expect", self.expect.as_str());
        line("armor", if self.armor { "yes" } else { "no" });
        for id in &self.identities {
            line("identity", id);
        }
        if let Some(p) = &self.passphrase {
            line("passphrase_hex", &hex::encode(p));
        }
        if let Some(k) = &self.file_key {
            line("file_key", &hex::encode(k));
        }
        line("released_len", &self.released.len().to_string());
        line(
            "released_sha256",
            &hex::encode(Sha256::digest(&self.released)),
        );
        if let Some(s) = &self.sender {
            line("sender", s);
        }
        line("comment", &self.comment);
        head.push('\n');
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.data);
        out
    }
}

/// A vector file as read back: its header fields in order, and the data.
#[derive(Clone, Debug)]
pub struct VectorFile {
    /// `(key, value)` pairs in file order.
    pub fields: Vec<(String, String)>,
    /// The bytes after the blank line.
    pub data: Vec<u8>,
}

impl VectorFile {
    /// Parses a vector file.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let split = bytes
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or("no blank line after the header")?;
        let head = std::str::from_utf8(&bytes[..split + 1]).map_err(|_| "header is not UTF-8")?;
        let mut fields = Vec::new();
        for line in head.lines() {
            let (k, v) = line
                .split_once(": ")
                .ok_or_else(|| format!("header line without \": \": {line:?}"))?;
            fields.push((k.to_string(), v.to_string()));
        }
        Ok(VectorFile {
            fields,
            data: bytes[split + 2..].to_vec(),
        })
    }

    /// The value of the single field `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of the field `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}
