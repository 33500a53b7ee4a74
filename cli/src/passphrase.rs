//! Where a passphrase comes from: the terminal (no echo, asked twice on
//! encrypt; an empty entry offers a generated passphrase), a file
//! (`--passphrase-file`, its first line), or an inherited file descriptor
//! (`--passphrase-fd`). Never from a command-line argument, which other
//! users can read in the process list.

use std::io::Read;
use std::path::{Path, PathBuf};

use kapsel_codec::Passphrase;
use zeroize::Zeroizing;

use crate::error::CliError;

/// Most bytes read from a passphrase file or descriptor.
const MAX_PASSPHRASE_FILE: u64 = 64 * 1024;

/// The passphrase flags of `encrypt` and `decrypt`.
#[derive(Clone, Debug, Default)]
pub struct Source {
    /// `--passphrase-file FILE`.
    pub file: Option<PathBuf>,
    /// `--passphrase-fd N`.
    pub fd: Option<u32>,
    /// The passphrase once read: several inputs in one run (clones of this
    /// source share it) read the file or descriptor, or ask, only once.
    pub remembered: std::sync::Arc<std::sync::OnceLock<Passphrase>>,
}

/// Parses an Argon2id memory size, `512MiB`, `2GiB`, `65536KiB` (binary
/// units; a plain number is MiB), into KiB.
pub fn parse_memory(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid size {s:?} (examples: 512MiB, 2GiB)"))?;
    let kib_per_unit: u64 = match unit.trim() {
        "KiB" | "K" | "k" => 1,
        "" | "MiB" | "M" | "m" => 1024,
        "GiB" | "G" | "g" => 1024 * 1024,
        _ => return Err(format!("invalid size unit in {s:?} (use KiB, MiB or GiB)")),
    };
    n.checked_mul(kib_per_unit)
        .and_then(|kib| u32::try_from(kib).ok())
        .filter(|&kib| kib > 0)
        .ok_or_else(|| format!("size {s:?} is out of range (1 KiB to 4 TiB)"))
}

/// The Argon2id cost of `encrypt -p`: the default, or more, never less
/// (below it a stolen file is cheaper to attack than SPEC.md advises).
pub fn encrypt_cost(
    memory_kib: Option<u32>,
    passes: Option<u32>,
) -> Result<kapsel_codec::Cost, CliError> {
    let default = kapsel_codec::Cost::DEFAULT;
    let cost = kapsel_codec::Cost {
        memory_kib: memory_kib.unwrap_or(default.memory_kib),
        passes: passes.unwrap_or(default.passes),
        lanes: default.lanes,
    };
    if cost.memory_kib < default.memory_kib || cost.passes < default.passes {
        return Err(CliError::usage(format!(
            "the passphrase cost is below the default ({} MiB, {} passes): a stolen file would be cheaper to attack",
            default.memory_kib / 1024,
            default.passes
        ))
        .with_hint("leave --passphrase-memory and --passphrase-passes at their defaults or raise them"));
    }
    let limit = kapsel_codec::WorkLimit::DEFAULT;
    if !limit.allows(&cost) {
        errln!(
            "kapsel: warning: this file asks for more than {} MiB or {} passes: receivers need decrypt --max-passphrase-memory / --max-passphrase-passes to open it",
            limit.max_memory_kib / 1024,
            limit.max_passes
        );
    }
    Ok(cost)
}

/// The most work `decrypt` spends on a passphrase stanza: the default
/// limit, or what the flags raise (or lower) it to.
pub fn work_limit(max_memory_kib: Option<u32>, max_passes: Option<u32>) -> kapsel_codec::WorkLimit {
    let default = kapsel_codec::WorkLimit::DEFAULT;
    kapsel_codec::WorkLimit {
        max_memory_kib: max_memory_kib.unwrap_or(default.max_memory_kib),
        max_passes: max_passes.unwrap_or(default.max_passes),
    }
}

/// The first line of `bytes` (without its LF or CRLF), as a passphrase.
fn first_line(bytes: &[u8], name: &str) -> Result<Passphrase, CliError> {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(CliError::usage(format!("{name}: the passphrase is empty"))
            .with_hint("put the passphrase on the first line"));
    }
    Ok(Passphrase::from_bytes(line))
}

fn read_limited(mut r: impl Read, name: &str) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let mut bytes = Zeroizing::new(Vec::new());
    r.by_ref()
        .take(MAX_PASSPHRASE_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::io(format!("cannot read {name}"), e))?;
    if bytes.len() as u64 > MAX_PASSPHRASE_FILE {
        return Err(CliError::usage(format!(
            "{name}: larger than 64 KiB, too large for a passphrase"
        )));
    }
    Ok(bytes)
}

/// The passphrase from `--passphrase-file` or `--passphrase-fd`.
fn from_source(source: &Source) -> Result<Option<Passphrase>, CliError> {
    if let Some(path) = &source.file {
        let name = path.display().to_string();
        let f = std::fs::File::open(path)
            .map_err(|e| CliError::io(format!("cannot open passphrase file {name}"), e))?;
        return first_line(&read_limited(f, &name)?, &name).map(Some);
    }
    if let Some(fd) = source.fd {
        // The descriptor is opened through /dev/fd, which needs no unsafe code.
        let path = Path::new("/dev/fd").join(fd.to_string());
        let name = format!("passphrase descriptor {fd}");
        let f = std::fs::File::open(&path)
            .map_err(|e| CliError::io(format!("cannot read {name}"), e))?;
        return first_line(&read_limited(f, &name)?, &name).map(Some);
    }
    Ok(None)
}

fn prompt(text: &str) -> Result<Zeroizing<String>, CliError> {
    crate::output::erase_progress();
    crate::tty::read_secret(text, "a passphrase").map_err(|e| {
        e.with_hint("without a terminal, pass --passphrase-file FILE or --passphrase-fd N")
    })
}

/// A generated passphrase: 20 symbols of the Bech32 alphabet in four
/// groups (100 bits), easy to read out and to type.
pub fn generate() -> Zeroizing<String> {
    const ALPHABET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let mut raw = Zeroizing::new([0u8; 20]);
    kapsel_codec::backend::fill_random(&mut raw[..]);
    let mut out = Zeroizing::new(String::with_capacity(23));
    for (i, b) in raw.iter().enumerate() {
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[usize::from(b & 31)]));
    }
    out
}

/// The passphrase to encrypt with: from the source, else asked twice on the
/// terminal; an empty first entry gives a generated passphrase, shown once
/// on standard error.
pub fn for_encrypt(source: &Source) -> Result<Passphrase, CliError> {
    if let Some(p) = from_source(source)? {
        return Ok(p);
    }
    let first = prompt("Enter passphrase (leave empty for a generated one): ")?;
    if first.is_empty() {
        let generated = generate();
        errln!("kapsel: using the generated passphrase: {}", &*generated);
        errln!("kapsel: keep it safe: the file cannot be decrypted without it");
        return Ok(Passphrase::new(&generated));
    }
    let second = prompt("Confirm passphrase: ")?;
    if *first != *second {
        return Err(CliError::usage("the passphrases do not match")
            .with_hint("type the same passphrase twice"));
    }
    Ok(Passphrase::new(&first))
}

/// The passphrase to decrypt with: from the source, else asked once.
pub fn for_decrypt(source: &Source) -> Result<Passphrase, CliError> {
    if let Some(p) = source.remembered.get() {
        return Ok(p.clone());
    }
    let p = match from_source(source)? {
        Some(p) => p,
        None => {
            let p = prompt("Enter passphrase: ")?;
            if p.is_empty() {
                return Err(CliError::usage("empty passphrase")
                    .with_hint("type the passphrase the file was encrypted with"));
            }
            Passphrase::new(&p)
        }
    };
    let _ = source.remembered.set(p.clone());
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::{encrypt_cost, parse_memory};

    #[test]
    fn memory_sizes_parse_in_binary_units() {
        assert_eq!(parse_memory("512MiB"), Ok(512 * 1024));
        assert_eq!(parse_memory("2GiB"), Ok(2 * 1024 * 1024));
        assert_eq!(parse_memory("65536KiB"), Ok(65536));
        assert_eq!(parse_memory("300"), Ok(300 * 1024));
        for bad in ["", "0", "GiB", "4096GiB", "1.5GiB", "-1MiB", "5TB"] {
            assert!(parse_memory(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn encrypt_never_goes_below_the_default_cost() {
        let default = kapsel_codec::Cost::DEFAULT;
        assert_eq!(encrypt_cost(None, None).unwrap(), default);
        assert_eq!(encrypt_cost(Some(512 * 1024), Some(4)).unwrap().passes, 4);
        assert!(encrypt_cost(Some(64 * 1024), None).is_err());
        assert!(encrypt_cost(None, Some(1)).is_err());
    }
}
