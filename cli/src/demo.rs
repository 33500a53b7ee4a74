//! `kapsel demo`: the main job end to end on a built-in sample, with no files
//! to prepare: a throwaway identity, encrypt, inspect, decrypt, compare, and
//! one tampered copy that must be refused.

use std::io::{Read, Write};

use kapsel_codec::backend::sha256;
use kapsel_codec::{Decryptor, Encryptor, Identity, Outcome};

use crate::error::CliError;

/// The built-in sample: a short text repeated past two chunk boundaries.
fn sample() -> Vec<u8> {
    let line = b"kapsel: hybrid encryption for streams and archives. P-256 HPKE key wrap, Cobblestone-256 payload.\n";
    line.iter().copied().cycle().take(40_000).collect()
}

fn fail(step: &str, e: impl std::fmt::Display) -> CliError {
    CliError::other(format!("demo failed at {step}: {e}"))
}

pub fn run() -> Result<(), CliError> {
    outln!("kapsel demo: a round trip on a built-in sample with a throwaway identity\n")?;
    let identity = Identity::generate();
    let recipient = identity.to_recipient();
    outln!("1. keygen    throwaway identity, recipient {recipient}")?;

    let plaintext = sample();
    let mut writer = Encryptor::new([recipient])
        .map_err(|e| fail("encrypt", e))?
        .wrap_output(Vec::new())
        .map_err(|e| fail("encrypt", e))?;
    writer
        .write_all(&plaintext)
        .map_err(|e| fail("encrypt", e))?;
    let file = writer.finish().map_err(|e| fail("encrypt", e))?;
    outln!(
        "2. encrypt   {} bytes of sample text -> {} bytes of kapsel file",
        plaintext.len(),
        file.len()
    )?;

    outln!("3. inspect")?;
    let decryptor = Decryptor::new(&file[..]).map_err(|e| fail("inspect", e))?;
    let h = decryptor.unverified_header();
    outln!(
        "     created {}, serial {}, {} recipient(s), header {} bytes",
        crate::time::iso8601_utc(h.created_at),
        h.serial,
        h.stanzas.len(),
        decryptor.unverified_header_bytes().len()
    )?;

    let mut decrypted = Vec::new();
    decryptor
        .decrypt(std::slice::from_ref(&identity))
        .map_err(|e| fail("decrypt", e))?
        .read_to_end(&mut decrypted)
        .map_err(|e| fail("decrypt", e))?;
    let (want, got) = (sha256(&plaintext), sha256(&decrypted));
    if want != got {
        return Err(fail("compare", "decrypted text differs from the sample"));
    }
    outln!(
        "4. decrypt   {} bytes, SHA-256 {} matches the sample",
        decrypted.len(),
        hex::encode(got)
    )?;

    let mut tampered = file.clone();
    tampered[20] ^= 0x01; // a bit of the creation time
    let outcome = match Decryptor::new(&tampered[..])
        .and_then(|d| d.decrypt(std::slice::from_ref(&identity)))
    {
        Ok(_) => return Err(fail("tamper check", "a modified header was accepted")),
        Err(e) => e.outcome(),
    };
    if outcome != Outcome::HeaderAuthFailed {
        return Err(fail(
            "tamper check",
            format!("unexpected outcome {outcome:?}"),
        ));
    }
    outln!("5. tamper    one flipped bit in the creation time: refused (header authentication failed)\n")?;
    outln!("ok")?;
    Ok(())
}
