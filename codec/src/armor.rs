//! ASCII armor (SPEC.md section 10): the binary file in standard Base64,
//! 64 columns, between `-----BEGIN KAPSEL ENCRYPTED FILE-----` and
//! `-----END KAPSEL ENCRYPTED FILE-----`.
//!
//! Invariants:
//! - There is one armored form per file apart from line endings (LF, or CRLF
//!   on every line) and whitespace around the armor: body lines are exactly
//!   64 characters but the last, padding is canonical, nothing else may
//!   appear.
//! - The reader works line by line in constant memory: no line longer than
//!   [`MAX_LINE`] bytes is ever buffered.
//! - Once the reader has failed it keeps failing.
//! - [`is_armored`] decides from the first [`DETECTION_WINDOW`] bytes alone,
//!   by the rule of SPEC.md section 10; the reader, told that its input is
//!   armor, accepts white space of any length around it.

use std::io::{self, BufRead, Write};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// First line of an armored file.
pub const BEGIN: &str = "-----BEGIN KAPSEL ENCRYPTED FILE-----";
/// Last line of an armored file.
pub const END: &str = "-----END KAPSEL ENCRYPTED FILE-----";
/// Base64 characters per body line.
pub const COLUMNS: usize = 64;
/// Binary bytes per full body line.
const BYTES_PER_LINE: usize = COLUMNS / 4 * 3;
/// Longest line the reader buffers, line ending included.
pub const MAX_LINE: usize = COLUMNS + 2;
/// Most bytes of white space before the BEGIN line that [`is_armored`]
/// skips (SPEC.md section 10). [`ArmoredReader`], told that its input is
/// armor, skips any amount.
pub const MAX_LEADING_WHITESPACE: usize = 1024;
/// How many first bytes of an input [`is_armored`] needs to decide: the
/// longest white space it skips, then the BEGIN line (without its ending,
/// which detection does not look at).
pub const DETECTION_WINDOW: usize = MAX_LEADING_WHITESPACE + BEGIN.len();
/// White space around the armor.
const WHITESPACE: &[u8] = b" \t\r\n";

/// Why armor was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArmorError {
    /// The input does not start (after whitespace) with the BEGIN line.
    #[error("armor: missing BEGIN line")]
    MissingBegin,
    /// A line is longer than 64 characters, or a body line before the last is shorter.
    #[error("armor: bad line length")]
    LineLength,
    /// Invalid or non-canonical Base64 (alphabet, padding, or nonzero padding bits).
    #[error("armor: invalid Base64")]
    Base64,
    /// Lines end sometimes in LF and sometimes in CRLF, or a lone CR.
    #[error("armor: inconsistent line endings")]
    LineEnding,
    /// The END line follows the BEGIN line directly.
    #[error("armor: no data between BEGIN and END")]
    EmptyBody,
    /// The input ended before the END line.
    #[error("armor: missing END line")]
    MissingEnd,
    /// Something other than whitespace after the END line.
    #[error("armor: data after the END line")]
    TrailingData,
}

impl From<ArmorError> for io::Error {
    fn from(e: ArmorError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Whether an input is armor, detected from `prefix`, its first
/// `ARMOR_DETECTION_WINDOW` bytes (or all of it, if shorter), as SPEC.md
/// section 10 says: after at most 1024 bytes of white
/// space (space, tab, CR, LF), the 37 characters of the BEGIN line.
///
/// Anything else is a binary file: a prefix that ends before the whole
/// BEGIN line, and 1025 or more bytes of white space before it. What
/// follows the 37 characters, line ending included, is for
/// [`ArmoredReader`] to judge.
pub fn is_armored(prefix: &[u8]) -> bool {
    let start = prefix
        .iter()
        .take(MAX_LEADING_WHITESPACE + 1)
        .position(|b| !WHITESPACE.contains(b));
    start.is_some_and(|i| prefix[i..].starts_with(BEGIN.as_bytes()))
}

/// Writes armor around everything written to it. Call [`ArmoredWriter::finish`].
///
/// ```
/// use std::io::{Read, Write};
/// use kapsel_codec::{is_armored, ArmoredReader, ArmoredWriter, Decryptor, Encryptor, Identity};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let alice = Identity::generate();
/// let armored = ArmoredWriter::new(Vec::new())?;
/// let mut w = Encryptor::new([alice.to_recipient()])?.wrap_output(armored)?;
/// w.write_all(b"for e-mail")?;
/// let text = w.finish()?.finish()?;                 // the file, then the armor
/// assert!(is_armored(&text));
///
/// let mut out = Vec::new();
/// Decryptor::new(ArmoredReader::new(&text[..]))?
///     .decrypt(std::slice::from_ref(&alice))?
///     .read_to_end(&mut out)?;
/// assert_eq!(out, b"for e-mail");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ArmoredWriter<W: Write> {
    inner: W,
    pending: Vec<u8>,
    line: String,
}

impl<W: Write> ArmoredWriter<W> {
    /// Writes the BEGIN line.
    pub fn new(mut inner: W) -> io::Result<Self> {
        inner.write_all(BEGIN.as_bytes())?;
        inner.write_all(b"\n")?;
        Ok(ArmoredWriter {
            inner,
            pending: Vec::with_capacity(BYTES_PER_LINE),
            line: String::with_capacity(COLUMNS + 1),
        })
    }

    fn write_line(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.line.clear();
        STANDARD.encode_string(bytes, &mut self.line);
        self.line.push('\n');
        self.inner.write_all(self.line.as_bytes())
    }

    /// Writes the last body line and the END line; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.pending.is_empty() {
            let last = std::mem::take(&mut self.pending);
            self.write_line(&last)?;
        }
        self.inner.write_all(END.as_bytes())?;
        self.inner.write_all(b"\n")?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ArmoredWriter<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let total = data.len();
        if !self.pending.is_empty() {
            let take = (BYTES_PER_LINE - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() < BYTES_PER_LINE {
                return Ok(total);
            }
            let full = std::mem::take(&mut self.pending);
            self.write_line(&full)?;
            self.pending = full;
            self.pending.clear();
        }
        // Full lines straight from the input; the last full line is held
        // back only when nothing follows, because it may be the final line.
        let mut lines = data.chunks_exact(BYTES_PER_LINE);
        for line in lines.by_ref() {
            self.write_line(line)?;
        }
        self.pending.extend_from_slice(lines.remainder());
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Lf,
    CrLf,
}

#[derive(Clone, Copy, Debug)]
enum State {
    Begin,
    Body,
    Done,
    Failed(ArmorError),
}

/// Decodes armor from a buffered reader, line by line.
#[derive(Debug)]
pub struct ArmoredReader<R: BufRead> {
    inner: R,
    state: State,
    ending: Option<Ending>,
    line: Vec<u8>,
    decoded: Vec<u8>,
    pos: usize,
    /// The previous body line was shorter than 64 characters: only END may follow.
    short_line_seen: bool,
    /// At least one body line was read.
    any_body: bool,
}

impl<R: BufRead> ArmoredReader<R> {
    /// A reader over armored input.
    pub fn new(inner: R) -> Self {
        ArmoredReader {
            inner,
            state: State::Begin,
            ending: None,
            line: Vec::with_capacity(MAX_LINE),
            decoded: Vec::with_capacity(BYTES_PER_LINE),
            pos: 0,
            short_line_seen: false,
            any_body: false,
        }
    }

    /// Reads one line into `self.line` without its ending. `Ok(false)` at end
    /// of input with nothing read; a final line without ending is an error.
    fn next_line(&mut self) -> Result<bool, io::Error> {
        self.line.clear();
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                return if self.line.is_empty() {
                    Ok(false)
                } else {
                    Err(ArmorError::MissingEnd.into())
                };
            }
            let room = MAX_LINE + 1 - self.line.len();
            match buf.iter().take(room).position(|&b| b == b'\n') {
                Some(i) => {
                    self.line.extend_from_slice(&buf[..i]);
                    self.inner.consume(i + 1);
                    break;
                }
                None if buf.len() >= room => return Err(ArmorError::LineLength.into()),
                None => {
                    let n = buf.len();
                    self.line.extend_from_slice(buf);
                    self.inner.consume(n);
                }
            }
        }
        let ending = if self.line.last() == Some(&b'\r') {
            self.line.pop();
            Ending::CrLf
        } else {
            Ending::Lf
        };
        if self.line.contains(&b'\r') || self.ending.is_some_and(|e| e != ending) {
            return Err(ArmorError::LineEnding.into());
        }
        self.ending = Some(ending);
        Ok(true)
    }

    fn step(&mut self) -> Result<(), io::Error> {
        match self.state {
            State::Begin => {
                // Skip whitespace, then require the BEGIN line.
                loop {
                    let buf = self.inner.fill_buf()?;
                    let Some(&b) = buf.first() else {
                        return Err(ArmorError::MissingBegin.into());
                    };
                    if WHITESPACE.contains(&b) {
                        self.inner.consume(1);
                    } else {
                        break;
                    }
                }
                if !self.next_line()? || self.line != BEGIN.as_bytes() {
                    return Err(ArmorError::MissingBegin.into());
                }
                self.state = State::Body;
            }
            State::Body => {
                if !self.next_line()? {
                    return Err(ArmorError::MissingEnd.into());
                }
                if self.line == END.as_bytes() {
                    if !self.any_body {
                        return Err(ArmorError::EmptyBody.into());
                    }
                    self.finish_trailer()?;
                    self.state = State::Done;
                    return Ok(());
                }
                if self.short_line_seen || self.line.is_empty() || self.line.len() > COLUMNS {
                    return Err(ArmorError::LineLength.into());
                }
                if self.line.len() < COLUMNS {
                    self.short_line_seen = true;
                } else if self.line.contains(&b'=') {
                    // Padding is allowed on the last line only; a full line
                    // with padding must be followed by END.
                    self.short_line_seen = true;
                }
                self.any_body = true;
                self.decoded.clear();
                STANDARD
                    .decode_vec(&self.line, &mut self.decoded)
                    .map_err(|_| ArmorError::Base64)?;
                self.pos = 0;
            }
            State::Done | State::Failed(_) => {}
        }
        Ok(())
    }

    /// After END: only whitespace until the end of input.
    fn finish_trailer(&mut self) -> Result<(), io::Error> {
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                return Ok(());
            }
            if !buf.iter().all(|b| WHITESPACE.contains(b)) {
                return Err(ArmorError::TrailingData.into());
            }
            let n = buf.len();
            self.inner.consume(n);
        }
    }
}

impl<R: BufRead> io::Read for ArmoredReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.decoded.len() {
                let n = (self.decoded.len() - self.pos).min(out.len());
                out[..n].copy_from_slice(&self.decoded[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            match self.state {
                State::Done => return Ok(0),
                State::Failed(e) => return Err(e.into()),
                _ => {}
            }
            if out.is_empty() {
                return Ok(0);
            }
            if let Err(e) = self.step() {
                let armor = e
                    .get_ref()
                    .and_then(|i| i.downcast_ref::<ArmorError>())
                    .copied();
                self.state = State::Failed(armor.unwrap_or(ArmorError::MissingEnd));
                self.decoded.clear();
                self.pos = 0;
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn armor(data: &[u8], pieces: usize) -> String {
        let mut w = ArmoredWriter::new(Vec::new()).unwrap();
        for part in data.chunks(pieces.max(1)) {
            w.write_all(part).unwrap();
        }
        String::from_utf8(w.finish().unwrap()).unwrap()
    }

    fn dearmor(text: &[u8]) -> Result<Vec<u8>, ArmorError> {
        let mut out = Vec::new();
        ArmoredReader::new(text)
            .read_to_end(&mut out)
            .map_err(|e| *e.get_ref().unwrap().downcast_ref::<ArmorError>().unwrap())?;
        Ok(out)
    }

    #[test]
    fn round_trips_at_line_edges_and_in_any_pieces() {
        for len in [1, 47, 48, 49, 96, 1000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            for pieces in [1, 5, 48, 1000] {
                let text = armor(&data, pieces);
                assert!(text.lines().all(|l| l.len() <= 64 || l == BEGIN));
                assert_eq!(dearmor(text.as_bytes()).unwrap(), data);
            }
        }
    }

    #[test]
    fn accepts_crlf_and_surrounding_whitespace() {
        let text = armor(&[1u8; 100], 7).replace('\n', "\r\n");
        assert_eq!(
            dearmor(format!("\n  {text}\r\n\t ").as_bytes()).unwrap(),
            vec![1u8; 100]
        );
    }

    #[test]
    fn rejects_malformations() {
        let good = armor(&[9u8; 100], 100);
        let lines: Vec<&str> = good.lines().collect();
        let cases: Vec<(String, ArmorError)> = vec![
            (format!("garbage\n{good}"), ArmorError::MissingBegin),
            (format!("{good}garbage\n"), ArmorError::TrailingData),
            (good.replacen('\n', "\r\n", 1), ArmorError::LineEnding),
            (
                format!(
                    "{}\n{}\n{}\n{}\n",
                    lines[0],
                    &lines[1][..60],
                    lines[2],
                    lines[3]
                ),
                ArmorError::LineLength,
            ),
            (
                format!("{}\n{}A\n{}\n{}\n", lines[0], lines[1], lines[2], lines[3]),
                ArmorError::LineLength,
            ),
            (good.replace("CQkJCQ==", "CQkJCR=="), ArmorError::Base64),
            (good.replace("CQkJCQ==", "CQkJ*Q=="), ArmorError::Base64),
            (
                good.replace(&format!("{END}\n"), ""),
                ArmorError::MissingEnd,
            ),
            (good.replace(END, ""), ArmorError::LineLength),
            (good.trim_end().to_string(), ArmorError::MissingEnd),
            (format!("{BEGIN}\n{END}\n"), ArmorError::EmptyBody),
        ];
        for (text, want) in cases {
            assert_eq!(dearmor(text.as_bytes()), Err(want), "{text:?}");
        }
    }

    #[test]
    fn keeps_failing_after_an_error() {
        let mut r = ArmoredReader::new(&b"nope\n"[..]);
        let mut buf = [0u8; 10];
        assert!(r.read(&mut buf).is_err());
        assert!(r.read(&mut buf).is_err());
    }

    #[test]
    fn detects_armor_after_whitespace_only() {
        assert!(is_armored(b"  \n-----BEGIN KAPSEL ENCRYPTED FILE-----\n"));
        assert!(is_armored(
            b"\r\n\t -----BEGIN KAPSEL ENCRYPTED FILE-----\r\n"
        ));
        assert!(!is_armored(b"x-----BEGIN KAPSEL ENCRYPTED FILE-----\n"));
        assert!(!is_armored(b"\x0c-----BEGIN KAPSEL ENCRYPTED FILE-----\n"));
        assert!(!is_armored(b"-----BEGIN KAPSEL ENCRYPTED FILe-----\n"));
        assert!(!is_armored(b"\x8bKAPSEL\n"));
        assert!(!is_armored(b""));
        assert!(!is_armored(b" \n\t"));
    }

    #[test]
    fn detection_needs_the_whole_begin_line_and_nothing_after_it() {
        // A BEGIN line cut short at the end of the input is not armor.
        for n in 0..BEGIN.len() {
            assert!(!is_armored(&BEGIN.as_bytes()[..n]), "{n} characters");
            assert!(!is_armored(format!("  {}", &BEGIN[..n]).as_bytes()));
        }
        // The 37 characters suffice; what follows is the reader's to judge.
        assert!(is_armored(BEGIN.as_bytes()));
        assert_eq!(dearmor(BEGIN.as_bytes()), Err(ArmorError::MissingEnd));
        assert!(is_armored(format!("{BEGIN} \n").as_bytes()));
        assert_eq!(
            dearmor(format!("{BEGIN} \n").as_bytes()),
            Err(ArmorError::MissingBegin)
        );
    }

    #[test]
    fn detects_armor_after_1024_bytes_of_whitespace_but_not_1025() {
        let text = armor(&[5u8; 100], 100);
        for (n, detected) in [(1023, true), (1024, true), (1025, false)] {
            let input = format!("{}{text}", " \t\r\n".repeat(n / 4) + &" ".repeat(n % 4));
            assert_eq!(input.len(), n + text.len());
            let window = &input.as_bytes()[..DETECTION_WINDOW];
            assert_eq!(is_armored(window), detected, "{n} bytes");
            assert_eq!(is_armored(input.as_bytes()), detected, "{n} bytes");
            // Told that the input is armor, the reader skips any amount.
            assert_eq!(dearmor(input.as_bytes()), Ok(vec![5u8; 100]), "{n} bytes");
        }
        // The window is exactly enough: after 1024 bytes of white space,
        // one byte fewer cuts the BEGIN line short.
        assert_eq!(DETECTION_WINDOW, 1024 + 37);
        let input = format!("{}{text}", " ".repeat(1024));
        assert!(!is_armored(&input.as_bytes()[..DETECTION_WINDOW - 1]));
    }
}
