//! PKCS#11 tokens from the command line: which module to load, where the
//! PIN comes from, and what each token failure tells the user.
//!
//! Invariants: the PIN is never taken from an argument (only the
//! terminal, `--pin-file` or `KAPSEL_PKCS11_PIN`) and lives in zeroizing
//! buffers; it is asked for at most once per token and process; every
//! [`TokenError`] becomes a message of its own with exit code 9 (the token)
//! or 10 (its PIN).

use std::path::{Path, PathBuf};

use kapsel_pkcs11::{Module, Pkcs11Uri, TokenError, TokenSummary};
use zeroize::Zeroizing;

use crate::error::{CliError, Exit};

/// The environment variable naming the PKCS#11 module.
pub const MODULE_ENV: &str = "KAPSEL_PKCS11_MODULE";
/// The environment variable holding the PIN, for scripts.
pub const PIN_ENV: &str = "KAPSEL_PKCS11_PIN";

/// Where the module and the PIN come from.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TokenArgs {
    /// PKCS#11 module to load (default: $KAPSEL_PKCS11_MODULE, else the p11-kit proxy)
    #[arg(long, value_name = "PATH")]
    pub pkcs11_module: Option<PathBuf>,
    /// Read the token PIN from FILE (first line) instead of asking on the terminal
    #[arg(long, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
}

/// Parses a `pkcs11:` URI argument.
pub fn parse_uri(text: &str) -> Result<Pkcs11Uri, CliError> {
    Pkcs11Uri::parse(text).map_err(|e| {
        CliError::usage(format!("invalid PKCS#11 URI: {e}"))
            .with_hint("for example pkcs11:token=backup;object=kapsel (kapsel tokens lists them)")
    })
}

/// Loads the module: `--pkcs11-module`, else the URI's `module-path`, else
/// `$KAPSEL_PKCS11_MODULE`, else the p11-kit proxy.
pub fn load_module(args: &TokenArgs, uri: Option<&Pkcs11Uri>) -> Result<Module, CliError> {
    let from_env = std::env::var_os(MODULE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let named = args
        .pkcs11_module
        .clone()
        .or_else(|| uri.and_then(|u| u.module_path.clone()).map(PathBuf::from))
        .or(from_env);
    let path = Module::resolve(named.as_deref()).map_err(token_error)?;
    Module::load(&path).map_err(token_error)
}

/// The PIN supplier: `--pin-file`, else the URI's `pin-source`, else
/// `$KAPSEL_PKCS11_PIN`, else the terminal.
pub fn pin_source(
    args: &TokenArgs,
    uri: &Pkcs11Uri,
) -> impl FnMut(&TokenSummary) -> Result<Zeroizing<String>, TokenError> {
    let file = args.pin_file.clone().or_else(|| {
        uri.pin_source
            .as_deref()
            .map(|s| PathBuf::from(s.strip_prefix("file:").unwrap_or(s)))
    });
    move |token: &TokenSummary| {
        if let Some(path) = &file {
            return read_pin_file(path);
        }
        if let Some(pin) = std::env::var_os(PIN_ENV) {
            return pin
                .into_string()
                .map(Zeroizing::new)
                .map_err(|_| TokenError::Module(format!("{PIN_ENV} is not UTF-8")));
        }
        crate::tty::read_secret(
            &format!("PIN for token {}: ", token.label),
            &format!("the PIN of token {}", token.label),
        )
        .map_err(|e| TokenError::Module(e.message))
    }
}

fn read_pin_file(path: &Path) -> Result<Zeroizing<String>, TokenError> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        TokenError::Module(format!("cannot read PIN file {}: {e}", path.display()))
    })?);
    let line = text.lines().next().unwrap_or("");
    Ok(Zeroizing::new(line.trim_end_matches('\r').to_string()))
}

/// The CLI error for a token failure.
pub fn token_error(e: TokenError) -> CliError {
    let hint = match &e {
        TokenError::NoSuchModule(_) | TokenError::NoDefaultModule => Some(
            "name the module with --pkcs11-module or KAPSEL_PKCS11_MODULE (for example /usr/lib/x86_64-linux-gnu/libykcs11.so for a YubiKey, or the OpenSC or tpm2-pkcs11 module)",
        ),
        TokenError::ModuleLoad { .. } => Some("the file must be a PKCS#11 module (a shared library) for this machine's architecture"),
        TokenError::NoToken(_) => Some("is the token plugged in? kapsel tokens lists the tokens the module sees"),
        TokenError::NoKey(_) | TokenError::AmbiguousKey { .. } => {
            Some("kapsel tokens --keys URI lists the P-256 keys on a token")
        }
        TokenError::WrongPin { .. } => Some("check the PIN; the token locks it after too many wrong tries"),
        _ => None,
    };
    let exit = match &e {
        TokenError::WrongPin { .. } | TokenError::PinLocked(_) => Exit::TokenPin,
        _ => Exit::Token,
    };
    let err = CliError::new(exit, e.to_string());
    match hint {
        Some(h) => err.with_hint(h),
        None => err,
    }
}

/// `keygen --pkcs11 URI`: a new non-extractable P-256 key pair on the
/// token, labelled with the URI's `object`; prints its recipient and the
/// URI that names it.
pub fn keygen(uri: &str, args: &TokenArgs) -> Result<(), CliError> {
    let uri = parse_uri(uri)?;
    if uri.object.is_none() {
        return Err(CliError::usage("the URI names no key: add ;object=LABEL")
            .with_hint("for example kapsel keygen --pkcs11 'pkcs11:token=backup;object=kapsel'"));
    }
    let module = load_module(args, Some(&uri))?;
    let key = module
        .generate_key(&uri, &mut pin_source(args, &uri))
        .map_err(token_error)?;
    let recipient = key.recipient().clone();
    errln!(
        "kapsel: generated key {} on the token ({})",
        key.name(),
        uri
    );
    crate::output::stdout(format_args!("{recipient}\n"))
}

/// `pubkey URI`: the recipient of a key on a token.
pub fn pubkey(uri: &str, args: &TokenArgs) -> Result<(), CliError> {
    let uri = parse_uri(uri)?;
    let module = load_module(args, Some(&uri))?;
    let key = module
        .open_key(&uri, &mut pin_source(args, &uri))
        .map_err(token_error)?;
    let recipient = key.recipient().clone();
    crate::output::stdout(format_args!("{recipient}\n"))
}

/// `tokens [--keys] [URI]`: the tokens the module sees; with `--keys`, the
/// P-256 keys on the token the URI names (a login if the token needs one).
pub fn list(uri: Option<&str>, keys: bool, args: &TokenArgs) -> Result<(), CliError> {
    let uri = uri.map(parse_uri).transpose()?.unwrap_or_default();
    let module = load_module(args, Some(&uri))?;
    let tokens = module.tokens().map_err(token_error)?;
    if !keys {
        crate::output::stdout(format_args!("# module {}\n", module.path().display()))?;
        for t in tokens {
            let token_uri = Pkcs11Uri {
                token: Some(t.label.clone()),
                serial: Some(t.serial.clone()),
                ..Pkcs11Uri::default()
            };
            crate::output::stdout(format_args!(
                "{token_uri}\tslot {}\t{} {}\n",
                t.slot, t.manufacturer, t.model
            ))?;
        }
        return Ok(());
    }
    for k in module
        .list_keys(&uri, &mut pin_source(args, &uri))
        .map_err(token_error)?
    {
        let recipient = k.public;
        crate::output::stdout(format_args!("{}\t{recipient}\n", k.uri))?;
    }
    Ok(())
}

/// Opens the token keys `uris` name, with one module for all of them
/// (loaded only if there is any) and one PIN prompt per token.
pub fn open_keys(
    uris: &[Pkcs11Uri],
    args: &TokenArgs,
) -> Result<Vec<kapsel_pkcs11::TokenKey>, CliError> {
    let Some(first) = uris.first() else {
        return Ok(Vec::new());
    };
    let module = load_module(args, Some(first))?;
    uris.iter()
        .map(|uri| {
            module
                .open_key(uri, &mut pin_source(args, uri))
                .map_err(token_error)
        })
        .collect()
}
