//! PKCS#11 URIs (RFC 7512): `pkcs11:token=backup;object=kapsel?pin-source=file:/run/pin`.
//!
//! Invariants: every attribute value is percent-decoded exactly once; an
//! attribute given twice, an unknown path attribute, a malformed percent
//! escape or a `pin-value` (a PIN inside a command line or a file that is
//! not a secret) is refused; vendor attributes (`x-...`) are refused too,
//! since kapsel would silently ignore their meaning.

use std::fmt;

/// A parsed `pkcs11:` URI: which token and which key object.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token`: the token label (CK_TOKEN_INFO.label).
    pub token: Option<String>,
    /// `manufacturer`: CK_TOKEN_INFO.manufacturerID.
    pub manufacturer: Option<String>,
    /// `model`: CK_TOKEN_INFO.model.
    pub model: Option<String>,
    /// `serial`: CK_TOKEN_INFO.serialNumber.
    pub serial: Option<String>,
    /// `slot-id`: the slot's number.
    pub slot_id: Option<u64>,
    /// `object`: the key's CKA_LABEL.
    pub object: Option<String>,
    /// `id`: the key's CKA_ID (bytes).
    pub id: Option<Vec<u8>>,
    /// `type`: only `private` (or absent) names a usable key.
    pub object_type: Option<String>,
    /// `module-path` (query): the PKCS#11 module to load.
    pub module_path: Option<String>,
    /// `pin-source` (query): where the PIN is read from (`file:PATH` or a
    /// path).
    pub pin_source: Option<String>,
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pkcs11Uri({self})")
    }
}

/// Why a `pkcs11:` URI was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// It does not start with `pkcs11:`.
    #[error("a PKCS#11 URI starts with pkcs11:")]
    NotPkcs11,
    /// An attribute kapsel does not know, or a vendor attribute.
    #[error("unsupported PKCS#11 URI attribute {0}")]
    Unsupported(String),
    /// An attribute appears twice.
    #[error("PKCS#11 URI attribute {0} appears twice")]
    Repeated(String),
    /// A bad percent escape, a value that is not UTF-8, or an attribute
    /// without `=`.
    #[error("malformed PKCS#11 URI: {0}")]
    Malformed(String),
    /// `pin-value` puts the PIN where others can read it.
    #[error("pin-value in a PKCS#11 URI is refused: a PIN in a URI ends up in shell history and process lists")]
    PinValue,
}

impl Pkcs11Uri {
    /// Parses `text` as a PKCS#11 URI.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        let rest = text.strip_prefix("pkcs11:").ok_or(UriError::NotPkcs11)?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut uri = Pkcs11Uri::default();
        let mut seen = Vec::new();
        for part in path.split(';').filter(|p| !p.is_empty()) {
            let (name, value) = split_attribute(part)?;
            if seen.contains(&name) {
                return Err(UriError::Repeated(name.to_string()));
            }
            seen.push(name);
            match name {
                "token" => uri.token = Some(decode_text(value)?),
                "manufacturer" => uri.manufacturer = Some(decode_text(value)?),
                "model" => uri.model = Some(decode_text(value)?),
                "serial" => uri.serial = Some(decode_text(value)?),
                "object" => uri.object = Some(decode_text(value)?),
                "id" => uri.id = Some(decode(value)?),
                "type" => uri.object_type = Some(decode_text(value)?),
                "slot-id" => {
                    uri.slot_id = Some(
                        decode_text(value)?
                            .parse()
                            .map_err(|_| UriError::Malformed("slot-id is not a number".into()))?,
                    )
                }
                // Library and slot descriptions narrow nothing kapsel needs.
                "library-manufacturer"
                | "library-description"
                | "library-version"
                | "slot-description"
                | "slot-manufacturer" => {
                    decode(value)?;
                }
                other => return Err(UriError::Unsupported(other.to_string())),
            }
        }
        for part in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            let (name, value) = split_attribute(part)?;
            if seen.contains(&name) {
                return Err(UriError::Repeated(name.to_string()));
            }
            seen.push(name);
            match name {
                "module-path" => uri.module_path = Some(decode_text(value)?),
                "pin-source" => uri.pin_source = Some(decode_text(value)?),
                "pin-value" => return Err(UriError::PinValue),
                "module-name" => {
                    return Err(UriError::Unsupported(
                        "module-name (give module-path, --pkcs11-module or KAPSEL_PKCS11_MODULE)"
                            .into(),
                    ))
                }
                other => return Err(UriError::Unsupported(other.to_string())),
            }
        }
        if let Some(t) = &uri.object_type {
            if t != "private" {
                return Err(UriError::Unsupported(format!(
                    "type={t} (a kapsel identity is a private key: type=private)"
                )));
            }
        }
        Ok(uri)
    }

    /// Whether `text` is meant as a PKCS#11 URI.
    pub fn is_uri(text: &str) -> bool {
        text.starts_with("pkcs11:")
    }
}

fn split_attribute(part: &str) -> Result<(&str, &str), UriError> {
    part.split_once('=')
        .ok_or_else(|| UriError::Malformed(format!("attribute {part:?} has no =")))
}

/// Percent-decodes `value` (RFC 3986 section 2.1).
fn decode(value: &str) -> Result<Vec<u8>, UriError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| UriError::Malformed(format!("bad percent escape in {value:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn decode_text(value: &str) -> Result<String, UriError> {
    String::from_utf8(decode(value)?)
        .map_err(|_| UriError::Malformed(format!("{value:?} is not UTF-8")))
}

/// Percent-encodes what RFC 7512 does not allow bare in a path value.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~:[]@!$'()*+,&".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path = Vec::new();
        let text = [
            ("token", &self.token),
            ("manufacturer", &self.manufacturer),
            ("model", &self.model),
            ("serial", &self.serial),
        ];
        for (name, value) in text {
            if let Some(v) = value {
                path.push(format!("{name}={}", encode(v.as_bytes())));
            }
        }
        if let Some(s) = self.slot_id {
            path.push(format!("slot-id={s}"));
        }
        if let Some(o) = &self.object {
            path.push(format!("object={}", encode(o.as_bytes())));
        }
        if let Some(id) = &self.id {
            let hex: String = id.iter().map(|b| format!("%{b:02X}")).collect();
            path.push(format!("id={hex}"));
        }
        if let Some(t) = &self.object_type {
            path.push(format!("type={t}"));
        }
        write!(f, "pkcs11:{}", path.join(";"))?;
        let mut query = Vec::new();
        if let Some(m) = &self.module_path {
            query.push(format!("module-path={}", encode(m.as_bytes())));
        }
        if let Some(p) = &self.pin_source {
            query.push(format!("pin-source={}", encode(p.as_bytes())));
        }
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_rfc_examples_kapsel_uses() {
        let u = Pkcs11Uri::parse("pkcs11:token=backup;object=kapsel").expect("parses");
        assert_eq!(u.token.as_deref(), Some("backup"));
        assert_eq!(u.object.as_deref(), Some("kapsel"));
        let u = Pkcs11Uri::parse(
            "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=private;id=%69%95%3E%5C%F4%BD%EC%91?pin-source=file:/etc/token&module-path=/usr/lib/libp11.so",
        )
        .expect("parses");
        assert_eq!(u.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
        assert_eq!(u.manufacturer.as_deref(), Some("Snake Oil, Inc."));
        assert_eq!(
            u.id.as_deref(),
            Some(&[0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91][..])
        );
        assert_eq!(u.pin_source.as_deref(), Some("file:/etc/token"));
        assert_eq!(u.module_path.as_deref(), Some("/usr/lib/libp11.so"));
        assert_eq!(Pkcs11Uri::parse(&u.to_string()), Ok(u));
        assert_eq!(Pkcs11Uri::parse("pkcs11:"), Ok(Pkcs11Uri::default()));
    }

    #[test]
    fn refuses_what_it_would_misread() {
        for (text, want) in [
            ("pkcs12:token=a", UriError::NotPkcs11),
            ("pkcs11:token=a;token=b", UriError::Repeated("token".into())),
            (
                "pkcs11:x-vendor=1",
                UriError::Unsupported("x-vendor".into()),
            ),
            ("pkcs11:token=a?pin-value=1234", UriError::PinValue),
        ] {
            assert_eq!(Pkcs11Uri::parse(text), Err(want), "{text}");
        }
        for bad in [
            "pkcs11:token=%zz",
            "pkcs11:token=%4",
            "pkcs11:token",
            "pkcs11:type=cert",
        ] {
            assert!(Pkcs11Uri::parse(bad).is_err(), "{bad}");
        }
    }
}
