//! Token identities against a real PKCS#11 module: SoftHSM2 with tokens
//! initialized in a temporary directory for this run. Without SoftHSM2
//! (Debian's `softhsm2`) the tests skip, and fail when `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use kapsel_codec::hazmat::ec::SecretKey;
use kapsel_pkcs11::{Module, Pkcs11Uri, TokenError, TokenSummary};
use zeroize::Zeroizing;

const PIN: &str = "1234";
const TOKENS: &[&str] = &["dh", "sign", "pin", "list"];

fn softhsm_library() -> Option<PathBuf> {
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// The module, with one fresh token per label of [`TOKENS`], or `None`
/// (skip) where SoftHSM2 is not installed.
fn module() -> Option<&'static Module> {
    static MODULE: OnceLock<Option<Module>> = OnceLock::new();
    MODULE
        .get_or_init(|| {
            let Some(library) = softhsm_library() else {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "SoftHSM2 is missing under CI (install softhsm2)"
                );
                eprintln!("skipped: SoftHSM2 not installed (apt-get install softhsm2)");
                return None;
            };
            let dir = tempfile::tempdir().expect("tempdir").keep();
            std::fs::create_dir(dir.join("tokens")).expect("token dir");
            let conf = dir.join("softhsm2.conf");
            std::fs::write(
                &conf,
                format!(
                    "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                    dir.join("tokens").display()
                ),
            )
            .expect("conf");
            // Set before the module is loaded, once, for every test thread.
            std::env::set_var("SOFTHSM2_CONF", &conf);
            for label in TOKENS {
                let out = Command::new("softhsm2-util")
                    .args(["--init-token", "--free", "--label", label])
                    .args(["--pin", PIN, "--so-pin", "5678"])
                    .env("SOFTHSM2_CONF", &conf)
                    .output()
                    .expect("softhsm2-util");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Some(Module::load(&library).expect("SoftHSM2 loads"))
        })
        .as_ref()
}

fn uri(text: &str) -> Pkcs11Uri {
    Pkcs11Uri::parse(text).expect("URI")
}

fn pin_once() -> impl FnMut(&TokenSummary) -> Result<Zeroizing<String>, TokenError> {
    move |_| Ok(Zeroizing::new(PIN.to_string()))
}

#[test]
fn a_token_key_agrees_with_software_and_never_leaves() {
    let Some(m) = module() else { return };
    let key = m
        .generate_key(&uri("pkcs11:token=dh;object=kapsel"), &mut pin_once())
        .expect("generates");
    assert!(key.never_leaves_the_token().expect("attributes"));
    for _ in 0..4 {
        let ephemeral = SecretKey::generate();
        let on_token = key
            .diffie_hellman(ephemeral.public_key().as_uncompressed())
            .expect("derives on the token");
        assert_eq!(
            on_token,
            ephemeral.diffie_hellman(key.recipient().public_key())
        );
    }
    // Opening it again by label finds the same key, and the public key on
    // the token is the one generation reported.
    let again = m
        .open_key(&uri("pkcs11:token=dh;object=kapsel"), &mut pin_once())
        .expect("opens");
    assert_eq!(again.recipient(), key.recipient());
    // A second key with the same label is refused.
    assert!(m
        .generate_key(&uri("pkcs11:token=dh;object=kapsel"), &mut pin_once())
        .is_err());
}

#[test]
fn a_token_signature_verifies_with_the_public_key() {
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
    let Some(m) = module() else { return };
    let key = m
        .generate_key(&uri("pkcs11:token=sign;object=signer"), &mut pin_once())
        .expect("generates");
    let message = b"segment transcript";
    let digest = kapsel_codec::backend::sha256(message);
    let signature = key.sign_digest(&digest).expect("signs");
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.recipient().to_wire().0)
        .verify(message, &signature)
        .expect("verifies");
}

#[test]
fn the_pin_is_asked_once_and_a_wrong_pin_says_so() {
    let Some(m) = module() else { return };
    // A wrong PIN first: refused, with the token's name.
    let err = m
        .open_key(
            &uri("pkcs11:token=pin;object=k"),
            &mut |_: &TokenSummary| Ok(Zeroizing::new("0000".to_string())),
        )
        .expect_err("wrong PIN");
    assert!(
        matches!(&err, TokenError::WrongPin { token, .. } if token == "pin"),
        "{err}"
    );
    let mut asked = 0;
    let mut counting = |_: &TokenSummary| {
        asked += 1;
        Ok(Zeroizing::new(PIN.to_string()))
    };
    m.generate_key(&uri("pkcs11:token=pin;object=k"), &mut counting)
        .expect("generates");
    for _ in 0..3 {
        m.open_key(&uri("pkcs11:token=pin;object=k"), &mut counting)
            .expect("opens");
    }
    assert_eq!(asked, 1, "one PIN prompt per token and process");
}

#[test]
fn every_missing_thing_has_its_own_error() {
    let Some(m) = module() else { return };
    assert!(matches!(
        m.open_key(&uri("pkcs11:token=absent;object=k"), &mut pin_once()),
        Err(TokenError::NoToken(_))
    ));
    assert!(matches!(
        m.open_key(&uri("pkcs11:token=list;object=nothing"), &mut pin_once()),
        Err(TokenError::NoKey(_))
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        Module::load(&dir.path().join("missing.so")),
        Err(TokenError::NoSuchModule(_))
    ));
    let not_a_module = dir.path().join("fake.so");
    std::fs::write(&not_a_module, b"not a shared object").expect("write");
    assert!(matches!(
        Module::load(&not_a_module),
        Err(TokenError::ModuleLoad { .. })
    ));
    assert!(matches!(
        Module::load(Path::new("/bin/true")),
        Err(TokenError::ModuleLoad { .. })
    ));
}

#[test]
fn listing_shows_tokens_and_their_p256_keys() {
    let Some(m) = module() else { return };
    let tokens = m.tokens().expect("lists");
    for label in TOKENS {
        assert!(
            tokens.iter().any(|t| t.label == *label),
            "{label}: {tokens:?}"
        );
    }
    let a = m
        .generate_key(&uri("pkcs11:token=list;object=a"), &mut pin_once())
        .expect("a");
    let b = m
        .generate_key(&uri("pkcs11:token=list;object=b"), &mut pin_once())
        .expect("b");
    let keys = m
        .list_keys(&uri("pkcs11:token=list"), &mut pin_once())
        .expect("keys");
    assert_eq!(keys.len(), 2);
    for (key, name) in [(&a, "a"), (&b, "b")] {
        let listed = keys
            .iter()
            .find(|k| k.uri.object.as_deref() == Some(name))
            .expect("listed");
        assert_eq!(&listed.public, key.recipient());
        // The listed URI opens the same key.
        let opened = m.open_key(&listed.uri, &mut pin_once()).expect("opens");
        assert_eq!(opened.recipient(), key.recipient());
    }
    // A URI that matches both is ambiguous, not a guess.
    assert!(matches!(
        m.open_key(&uri("pkcs11:token=list"), &mut pin_once()),
        Err(TokenError::AmbiguousKey { count: 2, .. })
    ));
}
