//! ES256 (ECDSA on P-256 with SHA-256) key pairs: Dravo's client key, which signs client
//! assertions and whose public half is served in the JWKS, and each session's DPoP key. The
//! private key leaves this module only as PKCS#8 DER for the caller to seal; the public key
//! is a JWK whose `kid` is its RFC 7638 thumbprint, so the same key always has the same id.

use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::Generate as _;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use secrecy::SecretSlice;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::b64;
use crate::error::Error;

/// An ES256 key pair. `Debug` shows only its `kid`.
#[derive(Clone)]
pub struct EsKey {
    signing: SigningKey,
    kid: String,
}

impl std::fmt::Debug for EsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsKey")
            .field("kid", &self.kid)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

impl EsKey {
    /// A new key pair from the operating system's random source.
    pub fn generate() -> EsKey {
        EsKey::from_signing(SigningKey::generate())
    }

    /// Loads a private key exported by [`EsKey::to_pkcs8_der`].
    pub fn from_pkcs8_der(der: &[u8]) -> Result<EsKey, Error> {
        SigningKey::from_pkcs8_der(der)
            .map(EsKey::from_signing)
            .map_err(|_| Error::Key("the ES256 key is not a PKCS#8 P-256 private key".into()))
    }

    /// The private key as PKCS#8 DER, for the caller to seal; wiped from memory when dropped.
    pub fn to_pkcs8_der(&self) -> SecretSlice<u8> {
        let document = self
            .signing
            .to_pkcs8_der()
            .expect("a P-256 key always encodes as PKCS#8");
        SecretSlice::from(document.as_bytes().to_vec())
    }

    fn from_signing(signing: SigningKey) -> EsKey {
        let kid = thumbprint(signing.verifying_key());
        EsKey { signing, kid }
    }

    /// The RFC 7638 thumbprint of the public key: its `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK: `kty`, `crv`, `x`, `y`, `kid`, `use: sig`, `alg: ES256`.
    pub fn public_jwk(&self) -> Value {
        let (x, y) = coordinates(self.signing.verifying_key());
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": x,
            "y": y,
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
        })
    }

    /// The public key as the bare JWK a DPoP proof carries in its header: the members RFC 7638
    /// hashes and nothing else, so no proof ties sessions together by a shared `kid`.
    pub fn bare_public_jwk(&self) -> Value {
        let (x, y) = coordinates(self.signing.verifying_key());
        json!({"kty": "EC", "crv": "P-256", "x": x, "y": y})
    }

    /// A compact JWS of `claims` under `header` (to which `alg: ES256` is added): the
    /// signature is JOSE's `r || s`, 64 bytes, not DER.
    pub fn sign_jws(&self, header: &Value, claims: &Value) -> String {
        let mut header = header.clone();
        if let Some(fields) = header.as_object_mut() {
            fields.insert("alg".into(), Value::from("ES256"));
        }
        let signing_input = format!(
            "{}.{}",
            b64(serde_json::to_vec(&header).expect("JSON values serialise")),
            b64(serde_json::to_vec(claims).expect("JSON values serialise")),
        );
        let signature: Signature = self.signing.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", b64(signature.to_bytes()))
    }
}

/// A JWKS document, `{"keys": [...]}`, of the public keys given: what `jwks_uri` serves.
/// Several keys during a rotation.
pub fn jwks(keys: &[&EsKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()})
}

/// The affine coordinates of a public key, base64url.
fn coordinates(key: &VerifyingKey) -> (String, String) {
    let point = key.to_sec1_point(false);
    let bytes = point.as_bytes();
    // Uncompressed SEC1: 0x04 || x (32 bytes) || y (32 bytes).
    (b64(&bytes[1..33]), b64(&bytes[33..65]))
}

/// RFC 7638: SHA-256 of the required members in lexicographic order, without whitespace.
fn thumbprint(key: &VerifyingKey) -> String {
    let (x, y) = coordinates(key);
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    b64(Sha256::digest(canonical.as_bytes()))
}

/// The RFC 7638 thumbprint of an EC P-256 public JWK, or `None` when it is not one.
pub fn jwk_thumbprint(jwk: &Value) -> Option<String> {
    public_key_from_jwk(jwk).map(|key| thumbprint(&key))
}

/// The P-256 public key a JWK describes (`kty: EC`, `crv: P-256`, `x`, `y`), if it is one and
/// the point is on the curve.
pub fn public_key_from_jwk(jwk: &Value) -> Option<VerifyingKey> {
    use base64::Engine as _;
    if jwk["kty"] != "EC" || jwk["crv"] != "P-256" {
        return None;
    }
    let decode = |field: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwk[field].as_str()?)
            .ok()
            .filter(|bytes| bytes.len() == 32)
    };
    let mut sec1 = vec![0x04];
    sec1.extend(decode("x")?);
    sec1.extend(decode("y")?);
    VerifyingKey::from_sec1_bytes(&sec1).ok()
}

/// A compact JWS's header and claims, when it is an ES256 JWS whose signature `key` verifies.
/// What a server does with Dravo's proofs and assertions; Dravo itself only checks its own
/// in tests.
pub fn verify_jws(jws: &str, key: &VerifyingKey) -> Result<(Value, Value), String> {
    use base64::Engine as _;
    use p256::ecdsa::signature::Verifier as _;
    let decode = |part: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| "a JWS part is not base64url".to_owned())
    };
    let parts: Vec<&str> = jws.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err("a compact JWS has three parts".into());
    };
    let header_json: Value =
        serde_json::from_slice(&decode(header)?).map_err(|_| "the header is not JSON")?;
    if header_json["alg"] != "ES256" {
        return Err("the JWS is not ES256".into());
    }
    let signature = Signature::from_slice(&decode(signature)?)
        .map_err(|_| "the signature is not a 64-byte r || s".to_owned())?;
    key.verify(format!("{header}.{claims}").as_bytes(), &signature)
        .map_err(|_| "the signature does not verify".to_owned())?;
    let claims_json: Value =
        serde_json::from_slice(&decode(claims)?).map_err(|_| "the claims are not JSON")?;
    Ok((header_json, claims_json))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn a_key_survives_pkcs8_export_and_import_with_the_same_kid() {
        let key = EsKey::generate();
        let der = key.to_pkcs8_der();
        let loaded = EsKey::from_pkcs8_der(der.expose_secret()).unwrap();
        assert_eq!(loaded.kid(), key.kid());
        assert_eq!(loaded.public_jwk(), key.public_jwk());
        // The loaded key signs what the original's public key verifies.
        let jws = loaded.sign_jws(&json!({"typ": "JWT"}), &json!({"a": 1}));
        let public = public_key_from_jwk(&key.public_jwk()).unwrap();
        assert_eq!(verify_jws(&jws, &public).unwrap().1, json!({"a": 1}));
    }

    #[test]
    fn garbage_is_not_a_private_key() {
        let err = EsKey::from_pkcs8_der(b"not a key").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the ES256 key is not a PKCS#8 P-256 private key"
        );
    }

    #[test]
    fn two_generated_keys_differ() {
        assert_ne!(EsKey::generate().kid(), EsKey::generate().kid());
    }

    /// RFC 7638 §3.1's method on the P-256 key of RFC 7515 appendix A.3: the thumbprint is
    /// over `crv, kty, x, y` only, in that order, so `kid`, `use` and `alg` do not change it.
    #[test]
    fn the_kid_is_the_rfc7638_thumbprint() {
        let jwk = json!({
            "kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        });
        let canonical = r#"{"crv":"P-256","kty":"EC","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        let expected = b64(Sha256::digest(canonical.as_bytes()));
        assert_eq!(jwk_thumbprint(&jwk).unwrap(), expected);
        let mut decorated = jwk.clone();
        decorated["kid"] = json!("other");
        decorated["use"] = json!("sig");
        assert_eq!(jwk_thumbprint(&decorated).unwrap(), expected);

        let key = EsKey::generate();
        assert_eq!(
            jwk_thumbprint(&key.public_jwk()).as_deref(),
            Some(key.kid())
        );
        assert_eq!(
            jwk_thumbprint(&key.bare_public_jwk()).as_deref(),
            Some(key.kid())
        );
    }

    #[test]
    fn the_public_jwk_and_jwks_have_every_member_and_no_private_part() {
        let key = EsKey::generate();
        let jwk = key.public_jwk();
        for (member, value) in [
            ("kty", "EC"),
            ("crv", "P-256"),
            ("use", "sig"),
            ("alg", "ES256"),
        ] {
            assert_eq!(jwk[member], value, "{member}");
        }
        assert_eq!(jwk["kid"], key.kid());
        assert_eq!(jwk["x"].as_str().unwrap().len(), 43);
        assert_eq!(jwk["y"].as_str().unwrap().len(), 43);
        assert!(jwk.get("d").is_none());
        let other = EsKey::generate();
        let set = jwks(&[&key, &other]);
        assert_eq!(set["keys"].as_array().unwrap().len(), 2);
        assert_eq!(set["keys"][1]["kid"], other.kid());
    }

    #[test]
    fn signatures_are_jose_r_s_and_fail_under_another_key_or_after_tampering() {
        let key = EsKey::generate();
        let jws = key.sign_jws(
            &json!({"typ": "JWT", "kid": key.kid()}),
            &json!({"sub": "x"}),
        );
        let parts: Vec<&str> = jws.split('.').collect();
        assert_eq!(parts.len(), 3);
        use base64::Engine as _;
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[2])
            .unwrap();
        assert_eq!(signature.len(), 64, "r || s, not DER");
        let public = public_key_from_jwk(&key.public_jwk()).unwrap();
        let (header, _) = verify_jws(&jws, &public).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], key.kid());

        let stranger = public_key_from_jwk(&EsKey::generate().public_jwk()).unwrap();
        assert_eq!(
            verify_jws(&jws, &stranger).unwrap_err(),
            "the signature does not verify"
        );
        let tampered = format!("{}.{}.{}", parts[0], b64(br#"{"sub":"y"}"#), parts[2]);
        assert!(verify_jws(&tampered, &public).is_err());
    }

    /// jsonwebtoken, an independent ES256 implementation, accepts what `sign_jws` signs.
    #[test]
    fn jsonwebtoken_verifies_our_signatures() {
        let key = EsKey::generate();
        let jws = key.sign_jws(&json!({"typ": "JWT"}), &json!({"sub": "did:plc:abc"}));
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk()).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Value>(&jws, &decoding, &validation).unwrap();
        assert_eq!(data.claims["sub"], "did:plc:abc");
    }

    #[test]
    fn debug_shows_the_kid_and_never_the_private_key() {
        let key = EsKey::generate();
        let shown = format!("{key:?}");
        assert!(shown.contains(key.kid()));
        assert!(shown.contains("[redacted]"));
        let der = key.to_pkcs8_der();
        let private_tail = b64(&der.expose_secret()[der.expose_secret().len() - 32..]);
        assert!(!shown.contains(&private_tail));
    }
}
