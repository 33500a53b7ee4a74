//! Building a kapsel file: a fresh file key, one HPKE stanza per recipient,
//! the header, then the Cobblestone-256 payload keyed by the file key with
//! the header bytes as context.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kapsel_format::{
    write, Extension, Header, Sender, Stanza, Suite, EXTENSION_CHALLENGE, MAX_RECIPIENTS,
    PASSPHRASE_SALT_LEN, WRAPPED_KEY_LEN,
};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::backend::{fill_random, SystemRng};
use crate::ec::SecretKey;
use crate::error::EncryptError;
use crate::exchange_wire::{Challenge, ReceiptKey};
use crate::hpke::{self, Mode};
use crate::hybrid::HybridRecipient;
use crate::identity::IdentityKey;
use crate::keys::{Identity, Recipient};
use crate::passphrase::{Cost, Passphrase};
use crate::payload::{ChunkCipher, PayloadWriter, SALT_LEN};
use crate::pq;
use crate::segment::{ExternalSigner, SegmentSigner};
use crate::{FILE_KEY_LEN, HPKE_INFO};

/// The items of `items` with later duplicates dropped, in order.
fn unique<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// The key that signs a file's segments.
#[derive(Clone)]
enum SenderKey {
    /// In memory: AWS-LC signs.
    Software(Identity),
    /// Elsewhere (a token): it signs, and the codec checks each signature.
    Device(Arc<dyn IdentityKey>),
}

impl SenderKey {
    fn recipient(&self) -> Recipient {
        match self {
            SenderKey::Software(id) => id.to_recipient(),
            SenderKey::Device(key) => key.recipient(),
        }
    }
}

impl std::fmt::Debug for SenderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SenderKey::Software(_) => f.write_str("SenderKey::Software(..)"),
            SenderKey::Device(_) => f.write_str("SenderKey::Device(..)"),
        }
    }
}

/// Configures and starts the encryption of one file.
#[derive(Debug)]
pub struct Encryptor {
    recipients: Vec<Recipient>,
    hybrid: Vec<HybridRecipient>,
    passphrase: Option<(Passphrase, Cost)>,
    allow_classical_with_pq: bool,
    sender: Option<SenderKey>,
    created_at: Option<u64>,
    serial: Option<u64>,
    hide_recipients: bool,
    challenge: Option<Challenge>,
}

impl Encryptor {
    /// Nothing to encrypt to yet, every option at its default.
    fn blank() -> Self {
        Encryptor {
            recipients: Vec::new(),
            hybrid: Vec::new(),
            passphrase: None,
            allow_classical_with_pq: false,
            sender: None,
            created_at: None,
            serial: None,
            hide_recipients: false,
            challenge: None,
        }
    }

    /// An encryptor to these recipients (duplicates are dropped).
    pub fn new(recipients: impl IntoIterator<Item = Recipient>) -> Result<Self, EncryptError> {
        Self::with_recipients(recipients, std::iter::empty())
    }

    /// An encryptor to P-256 and hybrid post-quantum recipients (duplicates
    /// dropped). A file with a post-quantum recipient is post-quantum only
    /// if every recipient is: mixing both kinds is refused
    /// ([`EncryptError::MixedPostQuantum`]) unless
    /// [`Encryptor::allow_classical_with_post_quantum`] says otherwise.
    pub fn with_recipients(
        p256: impl IntoIterator<Item = Recipient>,
        hybrid: impl IntoIterator<Item = HybridRecipient>,
    ) -> Result<Self, EncryptError> {
        let (recipients, hybrid) = (unique(p256), unique(hybrid));
        let count = recipients.len() + hybrid.len();
        if count == 0 {
            return Err(EncryptError::NoRecipients);
        }
        if count > usize::from(MAX_RECIPIENTS) {
            return Err(EncryptError::TooManyRecipients {
                count,
                max: MAX_RECIPIENTS,
            });
        }
        Ok(Encryptor {
            recipients,
            hybrid,
            ..Self::blank()
        })
    }

    /// An encryptor to a passphrase alone (the only stanza of its file),
    /// with Argon2id at [`Cost::DEFAULT`]. An empty passphrase is refused.
    pub fn with_passphrase(passphrase: Passphrase) -> Result<Self, EncryptError> {
        if passphrase.is_empty() {
            return Err(EncryptError::EmptyPassphrase);
        }
        if !crate::passphrase::AVAILABLE {
            return Err(EncryptError::PassphraseUnavailable);
        }
        Ok(Encryptor {
            passphrase: Some((passphrase, Cost::DEFAULT)),
            ..Self::blank()
        })
    }

    /// Sets the Argon2id cost of a passphrase file (default
    /// [`Cost::DEFAULT`]; no effect on a file to recipients). More memory
    /// or passes make each guess of a stolen file costlier, and each
    /// decryption too; a decoder refuses a cost above its [`WorkLimit`]
    /// (by default [`WorkLimit::DEFAULT`]), so a receiver of a costlier
    /// file must raise it ([`Keyring::with_work_limit`]). Below the default
    /// a stolen file is cheaper to attack than SPEC.md advises: for tests
    /// and benchmarks only.
    ///
    /// [`WorkLimit`]: crate::WorkLimit
    /// [`WorkLimit::DEFAULT`]: crate::WorkLimit::DEFAULT
    /// [`Keyring::with_work_limit`]: crate::Keyring::with_work_limit
    pub fn passphrase_cost(mut self, cost: Cost) -> Self {
        if let Some((_, c)) = &mut self.passphrase {
            *c = cost;
        }
        self
    }

    /// Allows P-256 recipients beside post-quantum ones. The file is then
    /// only as safe against a quantum computer as its P-256 stanzas: the
    /// weakest wrap decides.
    pub fn allow_classical_with_post_quantum(mut self, allow: bool) -> Self {
        self.allow_classical_with_pq = allow;
        self
    }

    /// Names the sender: its public key goes into the header, and every
    /// segment of 64 chunks ends with its ECDSA signature (SPEC.md section
    /// 6.5), so receivers release nothing it did not sign.
    pub fn sender(mut self, identity: Identity) -> Self {
        self.sender = Some(SenderKey::Software(identity));
        self
    }

    /// [`Encryptor::sender`] for a key that lives elsewhere, such as on a
    /// PKCS#11 token: it signs every segment (one signature per 64 chunks,
    /// 1 MiB), and each signature it returns is verified against its public
    /// key before it is written. A key that fails mid-file ends the
    /// encryption with [`CopyError::Signer`](crate::CopyError::Signer) (or
    /// an `io::Error` that [`EncryptError::from_io`] recovers), and the
    /// file is left unfinished, which no decoder accepts.
    pub fn sender_key(mut self, key: Arc<dyn IdentityKey>) -> Self {
        self.sender = Some(SenderKey::Device(key));
        self
    }

    /// Sets the creation time (Unix seconds); the default is now.
    pub fn created_at(mut self, unix_seconds: u64) -> Self {
        self.created_at = Some(unix_seconds);
        self
    }

    /// Sets the serial number; the default is a random 64-bit number.
    pub fn serial(mut self, serial: u64) -> Self {
        self.serial = Some(serial);
        self
    }

    /// Writes all-zero key hints, so the header does not reveal who can
    /// decrypt (decryptors then try every stanza).
    pub fn hide_recipients(mut self, hide: bool) -> Self {
        self.hide_recipients = hide;
        self
    }

    #[cfg(feature = "exchange")]
    /// Answers a receiver's challenge (SPEC.md section 13): the header gets
    /// a challenge record, and [`FileWriter::receipt_key`] the key that
    /// checks the receiver's receipt.
    pub fn challenge(mut self, challenge: Challenge) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// Builds the header for a fresh file key drawn from `rng`, with an
    /// ephemeral key per stanza (from `rng` if `seeded`, else from the
    /// backend's key generation) and the serial, if not set, from `rng` too;
    /// returns its encoding and the key.
    fn header(
        &self,
        rng: &mut impl CryptoRngCore,
        seeded: bool,
    ) -> Result<(Vec<u8>, Zeroizing<[u8; FILE_KEY_LEN]>), EncryptError> {
        let mut file_key = Zeroizing::new([0u8; FILE_KEY_LEN]);
        rng.fill_bytes(&mut file_key[..]);
        if !self.hybrid.is_empty() && !self.recipients.is_empty() && !self.allow_classical_with_pq {
            return Err(EncryptError::MixedPostQuantum);
        }
        let mut stanzas = Vec::with_capacity(self.recipients.len() + self.hybrid.len() + 1);
        for recipient in &self.recipients {
            let ephemeral = if seeded {
                SecretKey::from_rng(&mut *rng)
            } else {
                SecretKey::generate()
            };
            let encapsulation = hpke::encap(recipient.public_key(), None, &ephemeral);
            let mut ctx = hpke::Context::new(Mode::Base, &encapsulation.shared_secret, HPKE_INFO);
            // A fresh context has sequence number 0: sealing cannot hit the limit.
            #[allow(clippy::expect_used)]
            let sealed = ctx.seal(b"", &file_key[..]).expect("first HPKE seal");
            let mut wrapped_key = [0u8; WRAPPED_KEY_LEN];
            wrapped_key.copy_from_slice(&sealed);
            let hint = if self.hide_recipients {
                [0u8; 4]
            } else {
                recipient.stanza_hint(&encapsulation.enc)
            };
            stanzas.push(Stanza::P256Hpke {
                hint,
                enc: kapsel_format::P256Point(encapsulation.enc),
                wrapped_key,
            });
        }
        for recipient in &self.hybrid {
            let encapsulation = if seeded {
                let ephemeral = SecretKey::from_rng(&mut *rng);
                let mut m = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(&mut m[..]);
                pq::encap_derand(recipient.public_key(), &m, &ephemeral)
            } else {
                pq::encap(recipient.public_key(), &SecretKey::generate())
            }
            .map_err(|_| EncryptError::InvalidRecipient)?;
            let mut ctx = hpke::Context::for_kem(
                pq::KEM_ID,
                Mode::Base,
                &encapsulation.shared_secret,
                HPKE_INFO,
            );
            // A fresh context has sequence number 0: sealing cannot hit the limit.
            #[allow(clippy::expect_used)]
            let sealed = ctx.seal(b"", &file_key[..]).expect("first HPKE seal");
            let mut wrapped_key = [0u8; WRAPPED_KEY_LEN];
            wrapped_key.copy_from_slice(&sealed);
            let hint = if self.hide_recipients {
                [0u8; 4]
            } else {
                recipient.stanza_hint(&encapsulation.enc.0[..])
            };
            stanzas.push(Stanza::HybridPq {
                hint,
                enc: encapsulation.enc,
                wrapped_key,
            });
        }
        if let Some((passphrase, cost)) = &self.passphrase {
            let mut salt = [0u8; PASSPHRASE_SALT_LEN];
            rng.fill_bytes(&mut salt);
            let wrapped_key = crate::passphrase::wrap(passphrase, &salt, cost, &file_key)
                .map_err(|_| EncryptError::PassphraseUnavailable)?;
            stanzas.push(Stanza::Passphrase {
                salt,
                memory_kib: cost.memory_kib,
                passes: cost.passes,
                lanes: cost.lanes,
                wrapped_key,
            });
        }
        if self.hide_recipients {
            // With zero hints, the order of the stanzas would still tell
            // which recipient came first (SPEC.md section 4.4).
            shuffle(&mut stanzas, rng);
        }
        let header = Header {
            suite: Suite::P256HpkeCobblestone256,
            created_at: self.created_at.unwrap_or_else(now_unix_seconds),
            serial: self.serial.unwrap_or_else(|| rng.next_u64()),
            sender: match &self.sender {
                Some(key) => Sender::P256(key.recipient().to_wire()),
                None => Sender::Anonymous,
            },
            stanzas,
            extensions: self
                .challenge
                .iter()
                .map(|c| Extension {
                    kind: EXTENSION_CHALLENGE,
                    value: c.as_bytes().to_vec(),
                })
                .collect(),
        };
        Ok((write::header_to_vec(&header)?, file_key))
    }

    /// Writes the header and the payload prefix to `output` and returns the
    /// writer for the plaintext. Call [`FileWriter::finish`] at the end.
    pub fn wrap_output<W: Write>(self, output: W) -> Result<FileWriter<W>, EncryptError> {
        let (header_bytes, file_key) = self.header(&mut SystemRng, false)?;
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt);
        self.start(output, header_bytes, file_key, salt, None)
    }

    hazmat_fn! {
        /// [`Encryptor::wrap_output`] with every random value drawn from `rng`,
        /// in this order: the file key, one ephemeral HPKE key per recipient (in
        /// recipient order), the stanza shuffle (with hidden recipients), the
        /// serial (unless set), the payload salt. With a seeded generator and a
        /// fixed [`Encryptor::created_at`] the output of an anonymous file is
        /// reproducible byte for byte: for conformance test vectors only. (A
        /// signed file is signed with randomized nonces; reproducible signed
        /// files need [`Encryptor::wrap_output_with_rng_and_signer`].) Real files
        /// must use [`Encryptor::wrap_output`], which draws from the backend's
        /// generator.
        fn wrap_output_with_rng<W: Write>(
            self,
            output: W,
            rng: &mut impl CryptoRngCore,
        ) -> Result<FileWriter<W>, EncryptError> {
            let (header_bytes, file_key) = self.header(rng, true)?;
            let mut salt = [0u8; SALT_LEN];
            rng.fill_bytes(&mut salt);
            self.start(output, header_bytes, file_key, salt, None)
        }
    }

    hazmat_fn! {
        /// [`Encryptor::wrap_output_with_rng`] with the segment signatures made
        /// by `signer` instead of the sender's key (for example RFC 6979
        /// deterministic ECDSA), so that signed conformance vectors are
        /// reproducible. Hazardous: nothing checks that `signer` signs as the
        /// sender the header names.
        fn wrap_output_with_rng_and_signer<W: Write>(
            self,
            output: W,
            rng: &mut impl CryptoRngCore,
            signer: ExternalSigner,
        ) -> Result<FileWriter<W>, EncryptError> {
            let (header_bytes, file_key) = self.header(rng, true)?;
            let mut salt = [0u8; SALT_LEN];
            rng.fill_bytes(&mut salt);
            self.start(output, header_bytes, file_key, salt, Some(signer))
        }
    }

    /// Writes the header and the payload prefix; a signed file is signed by
    /// the sender's key, or by `external` for conformance vectors.
    fn start<W: Write>(
        self,
        mut output: W,
        header_bytes: Vec<u8>,
        file_key: Zeroizing<[u8; FILE_KEY_LEN]>,
        salt: [u8; SALT_LEN],
        external: Option<ExternalSigner>,
    ) -> Result<FileWriter<W>, EncryptError> {
        output.write_all(&header_bytes)?;
        let (cipher, prefix) =
            ChunkCipher::for_encryption_with_salt(&file_key, &header_bytes, salt);
        output.write_all(&prefix)?;
        let signer = match (self.sender.as_ref(), external) {
            (None, _) => None,
            (Some(_), Some(external)) => Some(SegmentSigner::with_external(
                external,
                &header_bytes,
                &prefix,
            )),
            (Some(SenderKey::Software(id)), None) => {
                Some(SegmentSigner::new(id.secret_key(), &header_bytes, &prefix))
            }
            (Some(SenderKey::Device(key)), None) => Some(
                SegmentSigner::with_key(Arc::clone(key), &header_bytes, &prefix)
                    .map_err(EncryptError::Identity)?,
            ),
        };
        let receipt_key = self
            .challenge
            .map(|c| ReceiptKey::derive(&file_key[..], &header_bytes, &c));
        Ok(FileWriter {
            payload: PayloadWriter::from_parts_signed(output, cipher, signer),
            receipt_key,
        })
    }
}

/// The plaintext side of a file being written: encrypts what is written,
/// and on [`FileWriter::finish`] writes the final chunk and, for a named
/// sender, the final segment's signature.
#[derive(Debug)]
pub struct FileWriter<W: Write> {
    payload: PayloadWriter<W>,
    #[cfg_attr(not(feature = "exchange"), allow(dead_code))]
    receipt_key: Option<ReceiptKey>,
}

impl<W: Write> FileWriter<W> {
    #[cfg(feature = "exchange")]
    /// The key that checks the receiver's receipt, if the file answers a
    /// challenge ([`Encryptor::challenge`]).
    pub fn receipt_key(&self) -> Option<&ReceiptKey> {
        self.receipt_key.as_ref()
    }

    /// Seals the final chunk, writes the final segment's signature of a
    /// signed file, flushes, and returns the output.
    pub fn finish(self) -> io::Result<W> {
        self.payload.finish()
    }

    /// Encrypts everything `reader` yields with the parallel encryptor
    /// (`threads`: 0 all cores, 1 sequential), then finishes the file and
    /// returns the output: the whole job in one call, signatures of a
    /// signed file included. Valid only before anything was written.
    ///
    /// ```
    /// use kapsel_codec::{Decryptor, Encryptor, Identity};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (alice, bob) = (Identity::generate(), Identity::generate());
    /// let plaintext = vec![1u8; 3_000_000];
    /// let file = Encryptor::new([bob.to_recipient()])?
    ///     .sender(alice.clone())                       // signed segments
    ///     .wrap_output(Vec::new())?
    ///     .encrypt_from(&mut &plaintext[..], 0)?;      // all cores, then finish
    ///
    /// let mut out = Vec::new();
    /// let reader = Decryptor::new(&file[..])?.decrypt(std::slice::from_ref(&bob))?;
    /// let n = reader.decrypt_to(&mut out, 0, &mut || Ok(()))?;
    /// assert_eq!((n, out), (3_000_000, plaintext));
    /// # Ok(())
    /// # }
    /// ```
    pub fn encrypt_from<R: Read>(
        self,
        reader: R,
        threads: usize,
    ) -> Result<W, crate::parallel::CopyError>
    where
        W: Send,
    {
        self.encrypt_body_from(reader, threads, None)
    }

    /// [`FileWriter::encrypt_from`] for a live input (a pipe, socket or
    /// terminal): whenever `ready` says the input paused, the complete
    /// chunks read so far (segments, in a signed file) are sealed, written
    /// and flushed at once instead of waiting for a full batch. The output
    /// bytes are the same as [`FileWriter::encrypt_from`]'s.
    pub fn encrypt_live_from<R: Read>(
        self,
        reader: R,
        threads: usize,
        ready: &mut crate::parallel::InputReady<'_>,
    ) -> Result<W, crate::parallel::CopyError>
    where
        W: Send,
    {
        self.encrypt_body_from(reader, threads, Some(ready))
    }

    fn encrypt_body_from<R: Read>(
        self,
        reader: R,
        threads: usize,
        ready: Option<&mut crate::parallel::InputReady<'_>>,
    ) -> Result<W, crate::parallel::CopyError>
    where
        W: Send,
    {
        let (output, cipher, signer) = self.payload.into_parts();
        let mut output = crate::parallel::encrypt_body(
            reader,
            output,
            &cipher,
            signer.as_ref(),
            threads,
            ready,
        )?;
        output.flush().map_err(crate::parallel::CopyError::Output)?;
        Ok(output)
    }
}

impl<W: Write> Write for FileWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.payload.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.payload.flush()
    }
}

fn now_unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Fisher-Yates shuffle with `rng` (uniform for a uniform `rng`).
fn shuffle<T>(items: &mut [T], rng: &mut impl CryptoRngCore) {
    for i in (1..items.len()).rev() {
        // Rejection sampling keeps every index equally likely.
        let bound = (i + 1) as u64;
        let zone = u64::MAX - u64::MAX % bound;
        let j = loop {
            let x = rng.next_u64();
            if x < zone {
                break (x % bound) as usize;
            }
        };
        items.swap(i, j);
    }
}
