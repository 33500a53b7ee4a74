//! The live exchange of SPEC.md section 13: challenge, message, receipt over
//! any reliable, ordered, bidirectional byte stream (TCP, a pipe pair, ssh).
//!
//! ```text
//! receiver -> sender   hello    = HELLO_MAGIC || challenge (32)
//! sender -> receiver   message  = frames: u32 len || bytes, ..., u32 0 (end)
//! receiver -> sender   reply    = 0x00 || receipt (32)   or   status (1..=255)
//! ```
//!
//! The message is an ordinary kapsel file whose header carries the challenge
//! in an [`EXTENSION_CHALLENGE`] record. The receipt is an HMAC under a key
//! derived from the file key and the challenge, over the header's hash, the
//! message length and the message's last [`TAIL_LEN`] bytes: only a holder
//! of the file key who read the whole message in this session can make it.
//!
//! An application speaks it through the `exchange` module: [`write_hello`]
//! and [`read_hello`], a [`MessageWriter`] or [`MessageReader`] for the
//! message, then [`write_receipt`] or [`write_refusal`] and [`read_reply`].
//! The framing parts under them ([`FrameWriter`], [`FrameReader`],
//! [`TailWriter`], [`TailReader`]) and the wire constants are public only
//! through `hazmat`, for the conformance vectors.
//!
//! Invariants:
//! - A [`FrameReader`] reports end of input (`Ok(0)`) only after the end
//!   marker. A transport that ends first, the abort marker or a length above
//!   [`MAX_FRAME_LEN`] is an error carrying an [`ExchangeError`], so a
//!   decoder behind it never takes a cut connection for the end of a
//!   message. It never reads past the end marker, and allocates nothing.
//! - A [`FrameWriter`] writes each frame header and its bytes in full
//!   before it reports them written.
//! - Receipts are compared in constant time; the receipt key is zeroized on
//!   drop and never printed.

use std::fmt;
use std::io::{self, BufWriter, IoSlice, Read, Write};
use std::str::FromStr;

use aws_lc_rs::{digest, hkdf, hmac};
use kapsel_format::{Header, EXTENSION_CHALLENGE};
use subtle::ConstantTimeEq;

use crate::parallel::write_all_slices;
use zeroize::Zeroizing;

/// Length of a challenge.
pub const CHALLENGE_LEN: usize = 32;
/// The first bytes the receiver sends: the protocol and its version 1.
pub const HELLO_MAGIC: [u8; 8] = *b"\x8bKXCHG1\n";
/// Length of the receiver's hello: magic and challenge.
pub const HELLO_LEN: usize = HELLO_MAGIC.len() + CHALLENGE_LEN;
/// Largest frame of the message, in bytes.
pub const MAX_FRAME_LEN: u32 = 1 << 20;
/// Segment length that ends the message.
pub const END_MARKER: u32 = 0;
/// Segment length by which the sender abandons the message.
pub const ABORT_MARKER: u32 = u32::MAX;
/// Reply status of an accepted message (a receipt follows).
pub const STATUS_ACCEPTED: u8 = 0;
/// Length of a receipt.
pub const RECEIPT_LEN: usize = 32;
/// Bytes at the end of the message that the receipt covers verbatim.
pub const TAIL_LEN: usize = 80;

const RECEIPT_KEY_INFO: &[u8] = b"kapsel/v1 receipt key";
const RECEIPT_LABEL: &[u8] = b"kapsel/v1 receipt\0";

/// Why an exchange failed on the wire. Travels inside the `io::Error`s of
/// [`read_hello`], [`MessageReader`] and [`read_reply`]; see
/// [`ExchangeError::from_io`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The peer closed the connection before the hello, the end of the
    /// message, or the reply.
    #[error("the peer closed the connection {0}")]
    Closed(Phase),
    /// The hello does not start with the magic `\x8bKXCHG1\n`.
    #[error("the peer is not a kapsel exchange receiver (its greeting is not kapsel exchange version 1)")]
    NotExchange,
    /// A frame length above the largest, 1 MiB (and not a marker).
    #[error("bad frame length {0} (at most {MAX_FRAME_LEN})")]
    FrameLength(u32),
    /// The sender sent the abort marker.
    #[error("the sender abandoned the message")]
    Aborted,
}

/// Where in the exchange a connection closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before the receiver's hello was complete.
    Hello,
    /// Inside the message, before its end marker.
    Message,
    /// Before the receiver's reply was complete.
    Reply,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Hello => "before sending a challenge",
            Phase::Message => "before the end of the message",
            Phase::Reply => "without a reply (no receipt)",
        })
    }
}

impl From<ExchangeError> for io::Error {
    fn from(e: ExchangeError) -> Self {
        let kind = match e {
            ExchangeError::Closed(_) => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

impl ExchangeError {
    /// The exchange failure inside an `io::Error` returned by this module's
    /// readers, if it carries one (a transport error carries none).
    pub fn from_io(e: &io::Error) -> Option<ExchangeError> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<ExchangeError>())
            .copied()
    }
}

/// A receiver's fresh random challenge.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Challenge([u8; CHALLENGE_LEN]);

impl Challenge {
    /// A fresh challenge from the operating system's generator.
    pub fn generate() -> Self {
        let mut bytes = [0u8; CHALLENGE_LEN];
        crate::backend::fill_random(&mut bytes);
        Challenge(bytes)
    }

    /// A challenge with these bytes.
    pub fn from_bytes(bytes: [u8; CHALLENGE_LEN]) -> Self {
        Challenge(bytes)
    }

    /// The challenge's bytes.
    pub fn as_bytes(&self) -> &[u8; CHALLENGE_LEN] {
        &self.0
    }

    /// Checks that `header` carries exactly this challenge (in constant
    /// time). A header without a challenge record, or with a value of
    /// another length, does not match.
    pub fn check(&self, header: &Header) -> Result<(), ChallengeMismatch> {
        match header.extension(EXTENSION_CHALLENGE) {
            None => Err(ChallengeMismatch::Missing),
            Some(v) if bool::from(v.ct_eq(&self.0[..])) => Ok(()),
            Some(_) => Err(ChallengeMismatch::Different),
        }
    }
}

/// Why a header does not answer a challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeMismatch {
    /// The header has no challenge record.
    #[error("the message carries no challenge (it was not made for this exchange)")]
    Missing,
    /// The header answers another challenge.
    #[error("the message answers another challenge (a replayed or misdirected message)")]
    Different,
}

/// Lower-case hex, 64 digits.
impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Challenge({self})")
    }
}

/// A challenge's text form was not 64 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a challenge is 64 hex digits")]
pub struct ChallengeParseError;

impl FromStr for Challenge {
    type Err = ChallengeParseError;

    /// Parses 64 hex digits, either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() != 2 * CHALLENGE_LEN || !s.is_ascii() {
            return Err(ChallengeParseError);
        }
        let mut bytes = [0u8; CHALLENGE_LEN];
        for (byte, pair) in bytes.iter_mut().zip(s.as_bytes().chunks(2)) {
            let hex = std::str::from_utf8(pair).map_err(|_| ChallengeParseError)?;
            *byte = u8::from_str_radix(hex, 16).map_err(|_| ChallengeParseError)?;
        }
        Ok(Challenge(bytes))
    }
}

/// Writes the receiver's hello and flushes.
pub fn write_hello<W: Write + ?Sized>(w: &mut W, challenge: &Challenge) -> io::Result<()> {
    let mut hello = [0u8; HELLO_LEN];
    hello[..HELLO_MAGIC.len()].copy_from_slice(&HELLO_MAGIC);
    hello[HELLO_MAGIC.len()..].copy_from_slice(&challenge.0);
    w.write_all(&hello)?;
    w.flush()
}

/// Reads the receiver's hello. The magic is judged byte by byte as it
/// arrives, so a peer speaking another protocol is refused even if it then
/// waits.
pub fn read_hello<R: Read + ?Sized>(r: &mut R) -> io::Result<Challenge> {
    let mut hello = [0u8; HELLO_LEN];
    let mut filled = 0;
    while filled < HELLO_LEN {
        match r.read(&mut hello[filled..]) {
            Ok(0) => return Err(ExchangeError::Closed(Phase::Hello).into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let magic_seen = filled.min(HELLO_MAGIC.len());
        if hello[..magic_seen] != HELLO_MAGIC[..magic_seen] {
            return Err(ExchangeError::NotExchange.into());
        }
    }
    let mut challenge = [0u8; CHALLENGE_LEN];
    challenge.copy_from_slice(&hello[HELLO_MAGIC.len()..]);
    Ok(Challenge(challenge))
}

/// The sender's side of the message framing: every write becomes one or
/// more frames. Wrap it in a `BufWriter` if the caller makes small writes.
#[derive(Debug)]
pub struct FrameWriter<W: Write> {
    inner: W,
}

impl<W: Write> FrameWriter<W> {
    /// Frames what is written to `inner`.
    pub fn new(inner: W) -> Self {
        FrameWriter { inner }
    }

    /// Writes the end marker, flushes, and returns the transport.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(&END_MARKER.to_be_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// Writes the abort marker and flushes: the receiver discards the
    /// message.
    pub fn abort(mut self) -> io::Result<W> {
        self.inner.write_all(&ABORT_MARKER.to_be_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for FrameWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = buf.len().min(MAX_FRAME_LEN as usize);
        // `n` is at most MAX_FRAME_LEN, which fits in a u32.
        let len = (n as u32).to_be_bytes();
        write_all_slices(
            &mut self.inner,
            &mut [IoSlice::new(&len), IoSlice::new(&buf[..n])],
        )?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The receiver's side of the message framing: yields the message bytes and
/// reports end of input only at the end marker.
#[derive(Debug)]
pub struct FrameReader<R: Read> {
    inner: R,
    /// Bytes left in the current frame.
    remaining: u32,
    /// The end marker was read.
    ended: bool,
    /// The first failure, repeated by every later read.
    failed: Option<ExchangeError>,
}

impl<R: Read> FrameReader<R> {
    /// Unframes the message arriving on `inner`.
    pub fn new(inner: R) -> Self {
        FrameReader {
            inner,
            remaining: 0,
            ended: false,
            failed: None,
        }
    }

    /// Whether the end marker was read.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The framing failure or closed connection that stopped this reader,
    /// if any (transport errors are not kept).
    pub fn failure(&self) -> Option<ExchangeError> {
        self.failed
    }

    /// The transport.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn fail(&mut self, e: ExchangeError) -> io::Error {
        self.failed = Some(e);
        e.into()
    }

    /// Reads the next frame length; `Ok(false)` at the end marker.
    fn next_frame(&mut self) -> io::Result<bool> {
        let mut len = [0u8; 4];
        let mut filled = 0;
        while filled < len.len() {
            match self.inner.read(&mut len[filled..]) {
                Ok(0) => return Err(self.fail(ExchangeError::Closed(Phase::Message))),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        match u32::from_be_bytes(len) {
            END_MARKER => {
                self.ended = true;
                Ok(false)
            }
            ABORT_MARKER => Err(self.fail(ExchangeError::Aborted)),
            n if n > MAX_FRAME_LEN => Err(self.fail(ExchangeError::FrameLength(n))),
            n => {
                self.remaining = n;
                Ok(true)
            }
        }
    }
}

impl<R: Read> Read for FrameReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.failed {
            return Err(e.into());
        }
        if self.ended || buf.is_empty() {
            return Ok(0);
        }
        while self.remaining == 0 {
            if !self.next_frame()? {
                return Ok(0);
            }
        }
        let want = buf.len().min(self.remaining as usize);
        let n = loop {
            match self.inner.read(&mut buf[..want]) {
                Ok(0) => return Err(self.fail(ExchangeError::Closed(Phase::Message))),
                Ok(n) => break n.min(want),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        // `n <= want <= remaining`.
        self.remaining -= n as u32;
        Ok(n)
    }
}

/// The length and the last 80 bytes of a message, as the receipt
/// covers them; kept by [`MessageWriter`] and [`MessageReader`] as the bytes
/// pass.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MessageTail {
    len: u64,
    last: [u8; TAIL_LEN],
}

impl MessageTail {
    fn new() -> Self {
        MessageTail {
            len: 0,
            last: [0u8; TAIL_LEN],
        }
    }

    /// The message length so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no byte passed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn update(&mut self, data: &[u8]) {
        self.len += data.len() as u64;
        if data.len() >= TAIL_LEN {
            self.last.copy_from_slice(&data[data.len() - TAIL_LEN..]);
        } else {
            self.last.copy_within(data.len().., 0);
            self.last[TAIL_LEN - data.len()..].copy_from_slice(data);
        }
    }
}

/// Message bytes are not secret to the parties, but the tail of a payload is
/// ciphertext: printing its length is enough.
impl fmt::Debug for MessageTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageTail")
            .field("len", &self.len)
            .finish()
    }
}

/// Passes writes through and keeps the [`MessageTail`] of what was written.
#[derive(Debug)]
pub struct TailWriter<W: Write> {
    inner: W,
    tail: MessageTail,
}

impl<W: Write> TailWriter<W> {
    /// Watches what is written to `inner`.
    pub fn new(inner: W) -> Self {
        TailWriter {
            inner,
            tail: MessageTail::new(),
        }
    }

    /// The tail of what was written so far.
    pub fn tail(&self) -> MessageTail {
        self.tail
    }

    /// The inner writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for TailWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.tail.update(&buf[..n.min(buf.len())]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Passes reads through and keeps the [`MessageTail`] of what was read.
#[derive(Debug)]
pub struct TailReader<R: Read> {
    inner: R,
    tail: MessageTail,
}

impl<R: Read> TailReader<R> {
    /// Watches what is read from `inner`.
    pub fn new(inner: R) -> Self {
        TailReader {
            inner,
            tail: MessageTail::new(),
        }
    }

    /// The tail of what was read so far.
    pub fn tail(&self) -> MessageTail {
        self.tail
    }

    /// The inner reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The inner reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for TailReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.tail.update(&buf[..n.min(buf.len())]);
        Ok(n)
    }
}

/// Capacity of a [`MessageWriter`]'s buffer in front of the framing; a
/// larger write passes through it unbuffered.
const MESSAGE_BUFFER: usize = 64 << 10;

/// The sender's message on the wire: frames what is written (buffered, so
/// that small writes do not become small frames) and keeps the
/// [`MessageTail`] the receipt covers. Hand it to
/// `Encryptor::wrap_output`, then end the message with
/// [`MessageWriter::finish`] (or abandon it with [`MessageWriter::abort`]).
/// Dropping it without either leaves the receiver waiting for the end
/// marker, which it never takes a closed connection for.
#[derive(Debug)]
pub struct MessageWriter<W: Write> {
    inner: TailWriter<BufWriter<FrameWriter<W>>>,
}

impl<W: Write> MessageWriter<W> {
    /// Frames the message written to `transport`.
    pub fn new(transport: W) -> Self {
        MessageWriter {
            inner: TailWriter::new(BufWriter::with_capacity(
                MESSAGE_BUFFER,
                FrameWriter::new(transport),
            )),
        }
    }

    /// The length and tail of what was written so far.
    pub fn tail(&self) -> MessageTail {
        self.inner.tail()
    }

    /// Writes what is buffered and the end marker, flushes, and returns the
    /// transport (for [`read_reply`]) with the tail of the whole message
    /// (for [`ReceiptKey::verify`]).
    pub fn finish(self) -> io::Result<(W, MessageTail)> {
        let tail = self.inner.tail();
        let frames = self
            .inner
            .into_inner()
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        Ok((frames.finish()?, tail))
    }

    /// Abandons the message: writes what is buffered, then the abort
    /// marker, so that the receiver discards everything it has. Returns
    /// the transport.
    pub fn abort(self) -> io::Result<W> {
        let frames = self
            .inner
            .into_inner()
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        frames.abort()
    }
}

impl<W: Write> Write for MessageWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The receiver's message on the wire: yields the message bytes, reports
/// end of input only after the end marker (a cut, aborted or badly framed
/// message is an error carrying an [`ExchangeError`]), and keeps the
/// [`MessageTail`] the receipt covers. It never reads past the end marker.
#[derive(Debug)]
pub struct MessageReader<R: Read> {
    inner: TailReader<FrameReader<R>>,
}

impl<R: Read> MessageReader<R> {
    /// Unframes the message arriving on `transport`.
    pub fn new(transport: R) -> Self {
        MessageReader {
            inner: TailReader::new(FrameReader::new(transport)),
        }
    }

    /// Whether the end marker was read: the message is complete.
    pub fn ended(&self) -> bool {
        self.inner.get_ref().ended()
    }

    /// The framing failure or closed connection that stopped this reader,
    /// if any (transport errors are not kept).
    pub fn failure(&self) -> Option<ExchangeError> {
        self.inner.get_ref().failure()
    }

    /// The length and tail of what was read so far; once [`ended`], of the
    /// whole message (for [`ReceiptKey::receipt`]).
    ///
    /// [`ended`]: MessageReader::ended
    pub fn tail(&self) -> MessageTail {
        self.inner.tail()
    }

    /// The transport.
    pub fn into_inner(self) -> R {
        self.inner.into_inner().into_inner()
    }
}

impl<R: Read> Read for MessageReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

/// A receipt: proof, for the sender, that a holder of the file key read the
/// whole message in this session. Compared in constant time; check one with
/// [`ReceiptKey::verify`].
#[derive(Clone, Copy, Debug)]
pub struct Receipt([u8; RECEIPT_LEN]);

impl Receipt {
    /// A receipt from its 32 bytes as sent on the wire.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Receipt(bytes)
    }

    /// The 32 bytes as sent on the wire.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Constant time: a receipt is a MAC.
impl PartialEq for Receipt {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Receipt {}

/// The key and the fixed inputs of one message's receipt (SPEC.md section
/// 13.5). Made by the encryptor or the decryptor, which hold the file key.
#[derive(Clone)]
pub struct ReceiptKey {
    key: Zeroizing<[u8; 32]>,
    challenge: Challenge,
    header_hash: [u8; 32],
}

impl ReceiptKey {
    /// `HKDF-SHA256(salt = challenge, ikm = file key, info = "kapsel/v1
    /// receipt key", 32)`, with the SHA-256 of the header bytes.
    pub(crate) fn derive(file_key: &[u8], header_bytes: &[u8], challenge: &Challenge) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &challenge.0).extract(file_key);
        let mut key = Zeroizing::new([0u8; 32]);
        // HKDF-SHA256 can expand to 32 bytes for one info: never fails.
        #[allow(clippy::expect_used)]
        prk.expand(&[RECEIPT_KEY_INFO], hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut key[..]))
            .expect("HKDF-SHA256 to 32 bytes");
        let mut header_hash = [0u8; 32];
        header_hash.copy_from_slice(digest::digest(&digest::SHA256, header_bytes).as_ref());
        ReceiptKey {
            key,
            challenge: *challenge,
            header_hash,
        }
    }

    /// The challenge this key answers.
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// The receipt for the message whose length and tail are `tail`.
    pub fn receipt(&self, tail: &MessageTail) -> Receipt {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.key[..]);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(RECEIPT_LABEL);
        ctx.update(&self.challenge.0);
        ctx.update(&self.header_hash);
        ctx.update(&tail.len.to_be_bytes());
        ctx.update(&tail.last);
        let mut out = [0u8; RECEIPT_LEN];
        out.copy_from_slice(ctx.sign().as_ref());
        Receipt(out)
    }

    /// Whether `receipt` is the receipt for `tail` (constant time).
    pub fn verify(&self, tail: &MessageTail, receipt: &Receipt) -> bool {
        self.receipt(tail).0.ct_eq(&receipt.0).into()
    }
}

impl fmt::Debug for ReceiptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiptKey")
            .field("challenge", &self.challenge)
            .finish_non_exhaustive()
    }
}

/// The receiver's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The message was accepted; the receipt is to be verified.
    Accepted(Receipt),
    /// The receiver refused the message with this status (1 to 255).
    Refused(u8),
}

/// Writes an accepting reply and flushes.
pub fn write_receipt<W: Write + ?Sized>(w: &mut W, receipt: &Receipt) -> io::Result<()> {
    let mut reply = [0u8; 1 + RECEIPT_LEN];
    reply[0] = STATUS_ACCEPTED;
    reply[1..].copy_from_slice(&receipt.0);
    w.write_all(&reply)?;
    w.flush()
}

/// Writes a refusing reply (a non-zero status) and flushes.
pub fn write_refusal<W: Write + ?Sized>(w: &mut W, status: u8) -> io::Result<()> {
    debug_assert!(status != STATUS_ACCEPTED);
    w.write_all(&[status.max(1)])?;
    w.flush()
}

/// Reads the receiver's reply.
pub fn read_reply<R: Read + ?Sized>(r: &mut R) -> io::Result<Reply> {
    let mut status = [0u8; 1];
    read_exactly(r, &mut status)?;
    if status[0] != STATUS_ACCEPTED {
        return Ok(Reply::Refused(status[0]));
    }
    let mut receipt = [0u8; RECEIPT_LEN];
    read_exactly(r, &mut receipt)?;
    Ok(Reply::Accepted(Receipt(receipt)))
}

fn read_exactly<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<()> {
    if crate::payload::read_full(r, buf)? < buf.len() {
        return Err(ExchangeError::Closed(Phase::Reply).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_hex_round_trip_and_rejections() {
        let c = Challenge::generate();
        let text = c.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<Challenge>().unwrap(), c);
        assert_eq!(text.to_uppercase().parse::<Challenge>().unwrap(), c);
        for bad in [
            "",
            &text[..62],
            &format!("{text}00"),
            &text.replacen(&text[..1], "g", 1),
            "é".repeat(32).as_str(),
        ] {
            assert_eq!(
                bad.parse::<Challenge>(),
                Err(ChallengeParseError),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn hello_round_trip_and_foreign_greetings() {
        let c = Challenge::generate();
        let mut wire = Vec::new();
        write_hello(&mut wire, &c).unwrap();
        assert_eq!(wire.len(), HELLO_LEN);
        assert_eq!(read_hello(&mut &wire[..]).unwrap(), c);
        let err = read_hello(&mut &b"SSH-2.0-OpenSSH_9.2\r\n"[..]).unwrap_err();
        assert_eq!(
            ExchangeError::from_io(&err),
            Some(ExchangeError::NotExchange)
        );
        let err = read_hello(&mut &wire[..20]).unwrap_err();
        assert_eq!(
            ExchangeError::from_io(&err),
            Some(ExchangeError::Closed(Phase::Hello))
        );
        let err = read_hello(&mut &b""[..]).unwrap_err();
        assert_eq!(
            ExchangeError::from_io(&err),
            Some(ExchangeError::Closed(Phase::Hello))
        );
    }

    /// A reader that returns at most `step` bytes per call.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.step).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn framed(message: &[u8], writes: usize) -> Vec<u8> {
        let mut w = FrameWriter::new(Vec::new());
        for piece in message.chunks(writes.max(1)) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn frames_round_trip_at_any_split() {
        let message: Vec<u8> = (0..(3 * MAX_FRAME_LEN as usize + 12_345))
            .map(|i| (i * 7 + i / 251) as u8)
            .collect();
        for (write_size, read_step) in [
            (1, 1_000_003),
            (4096, 3),
            (usize::MAX, 65_536),
            (999_999, 1),
        ] {
            let wire = framed(&message, write_size.min(message.len()));
            let mut trailing = wire.clone();
            trailing.extend_from_slice(b"after the end marker");
            let mut r = FrameReader::new(Trickle {
                data: &trailing,
                step: read_step,
            });
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            assert_eq!(got, message);
            assert!(r.ended());
            // Nothing after the end marker was consumed.
            let mut rest = Vec::new();
            r.into_inner().read_to_end(&mut rest).unwrap();
            assert_eq!(rest, b"after the end marker");
        }
    }

    #[test]
    fn frame_reader_refuses_cut_aborted_and_oversized_streams() {
        let wire = framed(&[7u8; 5000], 1000);
        // Cut anywhere before the end marker is complete: never Ok(0).
        for cut in [0, 2, 4, 500, 1004, wire.len() - 1] {
            let mut r = FrameReader::new(&wire[..cut]);
            let err = r.read_to_end(&mut Vec::new()).unwrap_err();
            assert_eq!(
                ExchangeError::from_io(&err),
                Some(ExchangeError::Closed(Phase::Message)),
                "cut {cut}"
            );
            // The failure sticks.
            assert!(r.read(&mut [0u8; 8]).is_err());
        }
        let mut aborted = wire[..1004].to_vec();
        aborted.extend_from_slice(&ABORT_MARKER.to_be_bytes());
        let err = FrameReader::new(&aborted[..])
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(ExchangeError::from_io(&err), Some(ExchangeError::Aborted));
        let oversized = (MAX_FRAME_LEN + 1).to_be_bytes();
        let err = FrameReader::new(&oversized[..])
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(
            ExchangeError::from_io(&err),
            Some(ExchangeError::FrameLength(MAX_FRAME_LEN + 1))
        );
        let mut w = FrameWriter::new(Vec::new());
        w.write_all(b"x").unwrap();
        assert_eq!(
            w.abort().unwrap(),
            [0, 0, 0, 1, b'x', 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn tails_match_whatever_the_write_sizes() {
        let message: Vec<u8> = (0..1000u32).map(|i| (i % 253) as u8).collect();
        let mut expected = MessageTail::new();
        expected.update(&message);
        assert_eq!(expected.len(), 1000);
        assert_eq!(&expected.last[..], &message[1000 - TAIL_LEN..]);
        for step in [1, 3, 79, 80, 81, 999] {
            let mut w = TailWriter::new(Vec::new());
            for piece in message.chunks(step) {
                w.write_all(piece).unwrap();
            }
            assert_eq!(w.tail(), expected, "write size {step}");
            let mut r = TailReader::new(Trickle {
                data: &message,
                step,
            });
            io::copy(&mut r, &mut io::sink()).unwrap();
            assert_eq!(r.tail(), expected, "read size {step}");
        }
    }

    #[test]
    fn receipts_bind_key_challenge_header_length_and_tail() {
        let file_key = [9u8; 32];
        let header = b"header bytes".to_vec();
        let challenge = Challenge::from_bytes([1u8; 32]);
        let key = ReceiptKey::derive(&file_key, &header, &challenge);
        let mut tail = MessageTail::new();
        tail.update(&[5u8; 300]);
        let receipt = key.receipt(&tail);
        assert!(key.verify(&tail, &receipt));

        let mut other_tail = tail;
        other_tail.update(b"");
        assert!(key.verify(&other_tail, &receipt));
        other_tail.update(&[5u8]);
        assert!(!key.verify(&other_tail, &receipt), "length");
        let mut flipped = tail;
        flipped.last[0] ^= 1;
        assert!(!key.verify(&flipped, &receipt), "tail");
        for other_key in [
            ReceiptKey::derive(&[8u8; 32], &header, &challenge),
            ReceiptKey::derive(&file_key, b"header bytez", &challenge),
            ReceiptKey::derive(&file_key, &header, &Challenge::from_bytes([2u8; 32])),
        ] {
            assert!(!other_key.verify(&tail, &receipt));
        }
        let mut bad = receipt;
        bad.0[31] ^= 0x80;
        assert!(!key.verify(&tail, &bad));
        assert!(!format!("{key:?}").contains("key:"));
    }

    #[test]
    fn replies_round_trip() {
        let receipt = Receipt([3u8; RECEIPT_LEN]);
        let mut wire = Vec::new();
        write_receipt(&mut wire, &receipt).unwrap();
        assert_eq!(
            read_reply(&mut &wire[..]).unwrap(),
            Reply::Accepted(receipt)
        );
        let err = read_reply(&mut &wire[..10]).unwrap_err();
        assert_eq!(
            ExchangeError::from_io(&err),
            Some(ExchangeError::Closed(Phase::Reply))
        );
        let mut wire = Vec::new();
        write_refusal(&mut wire, 6).unwrap();
        assert_eq!(read_reply(&mut &wire[..]).unwrap(), Reply::Refused(6));
        let err = read_reply(&mut &b""[..]).unwrap_err();
        assert_eq!(
            ExchangeError::from_io(&err),
            Some(ExchangeError::Closed(Phase::Reply))
        );
    }
}
