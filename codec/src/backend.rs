//! The cryptography backend: AWS-LC through `aws-lc-rs`, for every
//! primitive kapsel uses (P-256 key generation, validation, ECDH and ECDSA;
//! AES-256-GCM; HMAC and HKDF with SHA-256 and SHA-512; SHA-256; the random
//! generator). With the crate feature `fips`, aws-lc-rs links the AWS-LC
//! FIPS module (`aws-lc-fips-sys`) instead, and [`check`] refuses to run
//! unless the module reports FIPS mode.
//!
//! Also the two primitives the CLI needs directly, so that it links no other
//! implementation: [`sha256`] and [`fill_random`].

use aws_lc_rs::digest;

/// Which build this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Build {
    /// AWS-LC (`aws-lc-sys`), not in FIPS mode.
    Standard,
    /// The AWS-LC FIPS module (`aws-lc-fips-sys`), in FIPS mode.
    Fips,
}

/// The backend is not what the build promises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// A `fips` build whose module is not in FIPS mode (or failed its
    /// power-on self tests).
    #[error("the AWS-LC FIPS module is not in FIPS mode")]
    NotInFipsMode,
}

/// The build of this binary.
pub const BUILD: Build = if cfg!(feature = "fips") {
    Build::Fips
} else {
    Build::Standard
};

/// Checks, once at start-up, that the backend is what the build promises:
/// for the `fips` build, that the AWS-LC module is in FIPS mode (which it
/// enters after its power-on self tests pass).
pub fn check() -> Result<Build, BackendError> {
    match BUILD {
        Build::Fips => aws_lc_rs::try_fips_mode()
            .map(|()| Build::Fips)
            .map_err(|_| BackendError::NotInFipsMode),
        Build::Standard => Ok(Build::Standard),
    }
}

/// One line naming the backend, e.g. `AWS-LC 1.x (aws-lc-rs 1.19)` or, for
/// the `fips` build, `AWS-LC FIPS module 3.x (FIPS mode)`.
pub fn description() -> String {
    let version = aws_lc_rs::awslc_version();
    match BUILD {
        Build::Fips => {
            let mode = if aws_lc_rs::try_fips_mode().is_ok() {
                "FIPS mode"
            } else {
                "NOT in FIPS mode"
            };
            let module = aws_lc_rs::fips_version().unwrap_or(0);
            format!("AWS-LC FIPS module {version}, AWS-LC-FIPS {module} ({mode})")
        }
        Build::Standard => format!("AWS-LC {version} (not a FIPS build)"),
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    out
}

/// Fills `out` from the backend's generator (AWS-LC's `RAND_bytes`; in the
/// `fips` build, the module's DRBG).
pub fn fill_random(out: &mut [u8]) {
    // RAND_bytes aborts the process rather than return failure; aws-lc-rs
    // reports failure only for lengths it cannot pass to C.
    for piece in out.chunks_mut(1 << 20) {
        if aws_lc_rs::rand::fill(piece).is_err() {
            // Unreachable for 1 MiB pieces; never hand out zeros.
            std::process::abort();
        }
    }
}

/// The generator as a `rand_core` RNG, for code written against that trait.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SystemRng;

impl rand_core::RngCore for SystemRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        fill_random(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        fill_random(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        fill_random(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        fill_random(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for SystemRng {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc() {
        assert_eq!(
            sha256(b"abc")[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "FIPS 180-2 example"
        );
    }

    #[test]
    fn the_build_is_what_it_says() {
        assert_eq!(check(), Ok(BUILD));
        assert_eq!(BUILD == Build::Fips, cfg!(feature = "fips"));
        assert!(description().starts_with("AWS-LC"));
    }

    #[test]
    fn random_bytes_differ() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        fill_random(&mut a);
        fill_random(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }
}
