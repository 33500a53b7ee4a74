//! kapsel identities on PKCS#11 tokens (smart cards, YubiKey PIV, HSMs,
//! TPMs through `tpm2-pkcs11`, SoftHSM): a P-256 key pair on the token does
//! the HPKE decapsulation's Diffie-Hellman (`CKM_ECDH1_DERIVE`) and the
//! segment signatures (`CKM_ECDSA`), and the private key never leaves it.
//!
//! Invariants:
//! - Keys generated here are `CKA_SENSITIVE` and not `CKA_EXTRACTABLE`.
//! - A Diffie-Hellman result lives on the token as a session object only as
//!   long as it takes to read it; it is destroyed right after, also on
//!   failure, and the bytes read are zeroized on drop.
//! - Each token is logged in at most once per [`Module`] (one PIN prompt
//!   per process, however many files it opens).
//! - Every failure is a [`TokenError`] of its own kind; nothing panics on
//!   what a module returns.

pub mod uri;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::AuthPin;
use kapsel_codec::Recipient;
use kapsel_format::P256Point;
use zeroize::Zeroizing;

pub use uri::{Pkcs11Uri, UriError};

/// DER of the named curve P-256 (OID 1.2.840.10045.3.1.7), as CKA_EC_PARAMS.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Where kapsel looks for a module when none is named: the p11-kit proxy,
/// which forwards to every module the system has registered.
pub const DEFAULT_MODULES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so",
    "/usr/lib/aarch64-linux-gnu/p11-kit-proxy.so",
    "/usr/lib64/p11-kit-proxy.so",
    "/usr/lib/p11-kit-proxy.so",
    "/usr/local/lib/p11-kit-proxy.so",
    "/opt/homebrew/lib/p11-kit-proxy.dylib",
];

/// Every way a token operation fails, each with its own message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No module file at the path.
    #[error("no PKCS#11 module at {0}")]
    NoSuchModule(PathBuf),
    /// No module named and none of [`DEFAULT_MODULES`] exists.
    #[error("no PKCS#11 module given, and no p11-kit proxy is installed")]
    NoDefaultModule,
    /// The file exists but does not load or initialize as a PKCS#11 module.
    #[error("the PKCS#11 module {path} does not load: {reason}")]
    ModuleLoad { path: PathBuf, reason: String },
    /// No token matches the URI.
    #[error("no token matches {0}")]
    NoToken(String),
    /// No P-256 private key on the token matches the URI.
    #[error("no P-256 private key on the token matches {0}")]
    NoKey(String),
    /// Several keys match; the URI must name one.
    #[error("{count} keys on the token match {uri}; name one with object= or id=")]
    AmbiguousKey { uri: String, count: usize },
    /// The token refused the PIN.
    #[error("wrong PIN for token {token}{}", retries_note(*.final_try, *.count_low))]
    WrongPin {
        token: String,
        final_try: bool,
        count_low: bool,
    },
    /// The token's PIN is locked.
    #[error("the PIN of token {0} is locked (unlock it with the token's SO PIN or PUK)")]
    PinLocked(String),
    /// The key exists but may not derive (or sign).
    #[error("the key {0} cannot {1} (its CKA_DERIVE or CKA_SIGN is false, or the token lacks the mechanism)")]
    NotPermitted(String, &'static str),
    /// The token went away during the run.
    #[error("the token was removed")]
    Removed,
    /// The key's public half is not a P-256 point.
    #[error("the key {0} is not a P-256 key")]
    NotP256(String),
    /// Anything else the module reported.
    #[error("PKCS#11 {0}")]
    Module(String),
}

fn retries_note(final_try: bool, count_low: bool) -> &'static str {
    if final_try {
        " (one try left before the PIN locks)"
    } else if count_low {
        " (few tries left)"
    } else {
        ""
    }
}

fn module_error(e: CkError) -> TokenError {
    match e {
        CkError::Pkcs11(
            RvError::DeviceRemoved
            | RvError::TokenNotPresent
            | RvError::SessionHandleInvalid
            // A key found earlier in this session that is gone: its token
            // (or the token's store) went away.
            | RvError::ObjectHandleInvalid
            | RvError::KeyHandleInvalid,
            _,
        ) => TokenError::Removed,
        other => TokenError::Module(other.to_string()),
    }
}

/// A loaded PKCS#11 module, with the tokens it logged into.
pub struct Module {
    context: Pkcs11,
    path: PathBuf,
    sessions: Mutex<Vec<(Slot, Arc<Mutex<Session>>)>>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// One token, as `kapsel tokens` lists it.
#[derive(Clone, Debug)]
pub struct TokenSummary {
    /// The slot's number.
    pub slot: u64,
    /// Label, manufacturer, model, serial number.
    pub label: String,
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    /// Whether keys can be listed only after a login.
    pub login_required: bool,
}

/// A P-256 key on a token, as listed: its URI and public key.
#[derive(Clone, Debug)]
pub struct KeySummary {
    pub uri: Pkcs11Uri,
    pub public: Recipient,
}

/// Supplies the PIN of a token when it asks for one; called at most once
/// per token and module.
pub type PinSource<'a> = dyn FnMut(&TokenSummary) -> Result<Zeroizing<String>, TokenError> + 'a;

impl Module {
    /// Loads the module at `path` and initializes it.
    pub fn load(path: &Path) -> Result<Self, TokenError> {
        if !path.exists() {
            return Err(TokenError::NoSuchModule(path.to_path_buf()));
        }
        let load_error = |reason: String| TokenError::ModuleLoad {
            path: path.to_path_buf(),
            reason,
        };
        let context = Pkcs11::new(path).map_err(|e| load_error(e.to_string()))?;
        match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            // Loaded twice in one process: the module is already set up.
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(load_error(e.to_string())),
        }
        Ok(Module {
            context,
            path: path.to_path_buf(),
            sessions: Mutex::new(Vec::new()),
        })
    }

    /// The module to use: `named`, else the first of [`DEFAULT_MODULES`]
    /// that exists.
    pub fn resolve(named: Option<&Path>) -> Result<PathBuf, TokenError> {
        match named {
            Some(p) => Ok(p.to_path_buf()),
            None => DEFAULT_MODULES
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
                .ok_or(TokenError::NoDefaultModule),
        }
    }

    /// The module's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every token present.
    pub fn tokens(&self) -> Result<Vec<TokenSummary>, TokenError> {
        let slots = self.context.get_slots_with_token().map_err(module_error)?;
        let mut out = Vec::new();
        for slot in slots {
            let info = self.context.get_token_info(slot).map_err(module_error)?;
            out.push(summary(slot, &info));
        }
        Ok(out)
    }

    /// The one token that `uri` names.
    fn find_token(&self, uri: &Pkcs11Uri) -> Result<(Slot, TokenSummary), TokenError> {
        let slots = self.context.get_slots_with_token().map_err(module_error)?;
        let mut found = Vec::new();
        for slot in slots {
            let info = self.context.get_token_info(slot).map_err(module_error)?;
            let s = summary(slot, &info);
            let matches = uri.token.as_ref().is_none_or(|t| *t == s.label)
                && uri
                    .manufacturer
                    .as_ref()
                    .is_none_or(|m| *m == s.manufacturer)
                && uri.model.as_ref().is_none_or(|m| *m == s.model)
                && uri.serial.as_ref().is_none_or(|n| *n == s.serial)
                && uri.slot_id.is_none_or(|id| id == s.slot);
            if matches {
                found.push((slot, s));
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(TokenError::NoToken(uri.to_string())),
            n => Err(TokenError::NoToken(format!(
                "{uri} uniquely ({n} tokens match; add token= or serial=)"
            ))),
        }
    }

    /// A logged-in read-write session on the token `uri` names, opened and
    /// logged in once per module.
    fn session(
        &self,
        uri: &Pkcs11Uri,
        pin: &mut PinSource<'_>,
    ) -> Result<(Arc<Mutex<Session>>, TokenSummary), TokenError> {
        let (slot, summary) = self.find_token(uri)?;
        let mut sessions = self
            .sessions
            .lock()
            .map_err(|_| TokenError::Module("session lock poisoned".into()))?;
        if let Some((_, s)) = sessions.iter().find(|(sl, _)| *sl == slot) {
            return Ok((Arc::clone(s), summary));
        }
        let session = self.context.open_rw_session(slot).map_err(module_error)?;
        let info = self.context.get_token_info(slot).map_err(module_error)?;
        if info.user_pin_locked() {
            return Err(TokenError::PinLocked(summary.label.clone()));
        }
        if info.login_required() {
            let secret = pin(&summary)?;
            let auth = AuthPin::from(String::from(secret.as_str()));
            match session.login(UserType::User, Some(&auth)) {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                    let after = self.context.get_token_info(slot).ok();
                    if after.as_ref().is_some_and(TokenInfo::user_pin_locked) {
                        return Err(TokenError::PinLocked(summary.label.clone()));
                    }
                    return Err(TokenError::WrongPin {
                        token: summary.label.clone(),
                        final_try: after.as_ref().is_some_and(TokenInfo::user_pin_final_try),
                        count_low: after.as_ref().is_some_and(TokenInfo::user_pin_count_low),
                    });
                }
                Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                    return Err(TokenError::PinLocked(summary.label.clone()))
                }
                Err(e) => return Err(module_error(e)),
            }
        }
        let session = Arc::new(Mutex::new(session));
        sessions.push((slot, Arc::clone(&session)));
        Ok((session, summary))
    }

    /// The P-256 private key `uri` names, with its public key.
    pub fn open_key(
        &self,
        uri: &Pkcs11Uri,
        pin: &mut PinSource<'_>,
    ) -> Result<TokenKey, TokenError> {
        let (session, _) = self.session(uri, pin)?;
        let keys = {
            let s = lock(&session)?;
            find_keys(&s, uri)?
        };
        match keys.len() {
            0 => Err(TokenError::NoKey(uri.to_string())),
            1 => {
                let (private, public, name) = keys
                    .into_iter()
                    .next()
                    .ok_or(TokenError::NoKey(uri.to_string()))?;
                Ok(TokenKey {
                    session,
                    private,
                    public,
                    name,
                })
            }
            count => Err(TokenError::AmbiguousKey {
                uri: uri.to_string(),
                count,
            }),
        }
    }

    /// Every P-256 private key on the token `uri` names (after a login if
    /// the token needs one).
    pub fn list_keys(
        &self,
        uri: &Pkcs11Uri,
        pin: &mut PinSource<'_>,
    ) -> Result<Vec<KeySummary>, TokenError> {
        let (session, summary) = self.session(uri, pin)?;
        let s = lock(&session)?;
        let any_key = Pkcs11Uri {
            object: None,
            id: None,
            ..uri.clone()
        };
        Ok(find_keys(&s, &any_key)?
            .into_iter()
            .map(|(handle, public, _)| {
                let (label, id) = label_and_id(&s, handle);
                KeySummary {
                    uri: Pkcs11Uri {
                        token: Some(summary.label.clone()),
                        serial: Some(summary.serial.clone()),
                        object: label,
                        id,
                        object_type: Some("private".into()),
                        ..Pkcs11Uri::default()
                    },
                    public,
                }
            })
            .collect())
    }

    /// Generates a P-256 key pair on the token `uri` names, labelled with
    /// its `object` (required) and `id` (random 16 bytes if absent): the
    /// private key sensitive, never extractable, for derive and sign.
    pub fn generate_key(
        &self,
        uri: &Pkcs11Uri,
        pin: &mut PinSource<'_>,
    ) -> Result<TokenKey, TokenError> {
        let label = uri
            .object
            .clone()
            .ok_or_else(|| TokenError::Module("a new key needs object=LABEL in its URI".into()))?;
        let (session, _) = self.session(uri, pin)?;
        let s = lock(&session)?;
        let existing = find_keys(&s, uri)?;
        if !existing.is_empty() {
            return Err(TokenError::Module(format!(
                "a key matching {uri} already exists on the token"
            )));
        }
        let id = match &uri.id {
            Some(id) => id.clone(),
            None => {
                let mut id = vec![0u8; 16];
                kapsel_codec::backend::fill_random(&mut id);
                id
            }
        };
        let public_template = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::EcParams(P256_PARAMS.to_vec()),
            Attribute::Verify(true),
            Attribute::Label(label.clone().into_bytes()),
            Attribute::Id(id.clone()),
        ];
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Derive(true),
            Attribute::Sign(true),
            Attribute::Label(label.clone().into_bytes()),
            Attribute::Id(id),
        ];
        let (public, private) = s
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &public_template,
                &private_template,
            )
            .map_err(module_error)?;
        let point = ec_point(&s, public)?.ok_or_else(|| TokenError::NotP256(label.clone()))?;
        drop(s);
        Ok(TokenKey {
            session,
            private,
            public: point,
            name: label,
        })
    }
}

fn lock(session: &Mutex<Session>) -> Result<std::sync::MutexGuard<'_, Session>, TokenError> {
    session
        .lock()
        .map_err(|_| TokenError::Module("session lock poisoned".into()))
}

fn summary(slot: Slot, info: &TokenInfo) -> TokenSummary {
    TokenSummary {
        slot: slot.id(),
        label: info.label().trim_end().to_string(),
        manufacturer: info.manufacturer_id().trim_end().to_string(),
        model: info.model().trim_end().to_string(),
        serial: info.serial_number().trim_end().to_string(),
        login_required: info.login_required(),
    }
}

/// The label and id of an object, where the token says.
fn label_and_id(s: &Session, handle: ObjectHandle) -> (Option<String>, Option<Vec<u8>>) {
    let mut label = None;
    let mut id = None;
    if let Ok(attrs) = s.get_attributes(handle, &[AttributeType::Label, AttributeType::Id]) {
        for a in attrs {
            match a {
                Attribute::Label(l) => label = String::from_utf8(l).ok(),
                Attribute::Id(i) if !i.is_empty() => id = Some(i),
                _ => {}
            }
        }
    }
    (label, id)
}

/// The P-256 private keys matching `uri`'s object and id, each with the
/// public key of its pair (found by id, else by label).
fn find_keys(
    s: &Session,
    uri: &Pkcs11Uri,
) -> Result<Vec<(ObjectHandle, Recipient, String)>, TokenError> {
    let mut template = vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC),
    ];
    if let Some(o) = &uri.object {
        template.push(Attribute::Label(o.clone().into_bytes()));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
    }
    let handles = s.find_objects(&template).map_err(module_error)?;
    let mut keys = Vec::new();
    for handle in handles {
        let (label, id) = label_and_id(s, handle);
        let name = label.clone().unwrap_or_else(|| "(no label)".into());
        let mut public_template = vec![
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC),
        ];
        match (&id, &label) {
            (Some(id), _) => public_template.push(Attribute::Id(id.clone())),
            (None, Some(l)) => public_template.push(Attribute::Label(l.clone().into_bytes())),
            (None, None) => continue,
        }
        let publics = s.find_objects(&public_template).map_err(module_error)?;
        let mut point = None;
        for p in publics {
            if let Some(found) = ec_point(s, p)? {
                point = Some(found);
                break;
            }
        }
        // A key of another curve, or one without a public half, is not a
        // kapsel identity; skip it rather than fail the whole search.
        if let Some(point) = point {
            keys.push((handle, point, name));
        }
    }
    Ok(keys)
}

/// The P-256 point of a public key object, or `None` for another curve.
fn ec_point(s: &Session, handle: ObjectHandle) -> Result<Option<Recipient>, TokenError> {
    let attrs = s
        .get_attributes(handle, &[AttributeType::EcParams, AttributeType::EcPoint])
        .map_err(module_error)?;
    let mut params = None;
    let mut point = None;
    for a in attrs {
        match a {
            Attribute::EcParams(p) => params = Some(p),
            Attribute::EcPoint(p) => point = Some(p),
            _ => {}
        }
    }
    if params.as_deref() != Some(&P256_PARAMS[..]) {
        return Ok(None);
    }
    let Some(point) = point else { return Ok(None) };
    // CKA_EC_POINT is a DER OCTET STRING around the SEC1 point; some tokens
    // give the bare point.
    let raw = match point.as_slice() {
        [0x04, 0x41, rest @ ..] if rest.len() == 65 => rest,
        raw => raw,
    };
    let Ok(point) = <[u8; 65]>::try_from(raw) else {
        return Ok(None);
    };
    Ok(Recipient::from_wire(&P256Point(point)).ok())
}

/// A P-256 private key on a token.
pub struct TokenKey {
    session: Arc<Mutex<Session>>,
    private: ObjectHandle,
    public: Recipient,
    name: String,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("name", &self.name)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl TokenKey {
    /// The key pair's public key, as a recipient.
    pub fn recipient(&self) -> &Recipient {
        &self.public
    }

    /// The key's label on the token.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the token keeps the private key to itself: sensitive, not
    /// extractable, and never extractable since it was made.
    pub fn never_leaves_the_token(&self) -> Result<bool, TokenError> {
        let s = lock(&self.session)?;
        let attrs = s
            .get_attributes(
                self.private,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::NeverExtractable,
                ],
            )
            .map_err(module_error)?;
        let mut ok = [false; 3];
        for a in attrs {
            match a {
                Attribute::Sensitive(v) => ok[0] = v,
                Attribute::Extractable(v) => ok[1] = !v,
                Attribute::NeverExtractable(v) => ok[2] = v,
                _ => {}
            }
        }
        Ok(ok.iter().all(|&b| b))
    }

    /// P-256 Diffie-Hellman on the token (`CKM_ECDH1_DERIVE`, no KDF): the
    /// x-coordinate of the shared point.
    /// `peer` is an uncompressed SEC1 point, already checked to be on the
    /// curve (the token checks it too).
    pub fn diffie_hellman(&self, peer: &[u8; 65]) -> Result<Zeroizing<[u8; 32]>, TokenError> {
        let s = lock(&self.session)?;
        let params = Ecdh1DeriveParams::new(EcKdf::null(), &peer[..]);
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::ValueLen(32.into()),
            Attribute::Token(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ];
        let derived = s
            .derive_key(&Mechanism::Ecdh1Derive(params), self.private, &template)
            .map_err(|e| match e {
                CkError::Pkcs11(
                    RvError::KeyFunctionNotPermitted
                    | RvError::KeyTypeInconsistent
                    | RvError::MechanismInvalid,
                    _,
                ) => TokenError::NotPermitted(self.name.clone(), "derive"),
                other => module_error(other),
            })?;
        let value = s.get_attributes(derived, &[AttributeType::Value]);
        let destroyed = s.destroy_object(derived);
        let mut out = Zeroizing::new([0u8; 32]);
        let mut found = false;
        for a in value.map_err(module_error)? {
            if let Attribute::Value(mut v) = a {
                if v.len() == 32 {
                    out.copy_from_slice(&v);
                    found = true;
                }
                zeroize::Zeroize::zeroize(&mut v);
            }
        }
        destroyed.map_err(module_error)?;
        if !found {
            return Err(TokenError::Module(
                "ECDH1_DERIVE gave no 32-byte secret".into(),
            ));
        }
        Ok(out)
    }

    /// ECDSA P-256 on the token over a SHA-256 digest (`CKM_ECDSA`): the
    /// signature as `r || s`, 32 bytes each.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Result<[u8; 64], TokenError> {
        let s = lock(&self.session)?;
        let signature = s
            .sign(&Mechanism::Ecdsa, self.private, digest)
            .map_err(|e| match e {
                CkError::Pkcs11(
                    RvError::KeyFunctionNotPermitted | RvError::MechanismInvalid,
                    _,
                ) => TokenError::NotPermitted(self.name.clone(), "sign"),
                other => module_error(other),
            })?;
        signature
            .as_slice()
            .try_into()
            .map_err(|_| TokenError::Module("CKM_ECDSA gave no 64-byte signature".into()))
    }
}

/// A token key is a kapsel identity: the codec asks it for the
/// Diffie-Hellman of each stanza it tries and for segment signatures.
impl kapsel_codec::IdentityKey for TokenKey {
    fn recipient(&self) -> Recipient {
        self.public.clone()
    }

    fn diffie_hellman(
        &self,
        peer: &Recipient,
    ) -> Result<kapsel_codec::SharedSecret, kapsel_codec::IdentityError> {
        let x = TokenKey::diffie_hellman(self, &peer.to_wire().0)
            .map_err(|e| kapsel_codec::IdentityError::Unavailable(Box::new(e)))?;
        Ok(kapsel_codec::SharedSecret::new(*x))
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], kapsel_codec::IdentityError> {
        let digest = kapsel_codec::backend::sha256(message);
        self.sign_digest(&digest)
            .map_err(|e| kapsel_codec::IdentityError::Unavailable(Box::new(e)))
    }
}
