//! Dashboard authentication: verifying the bearer JWT that names the tenant, and issuing
//! HS256 tokens for `dravo token issue`.

use std::cell::RefCell;
use std::collections::HashMap;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use thread_local::ThreadLocal;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::Keys;
use crate::domain::Owner;
use crate::error::{Error, Result};

/// Verifies dashboard tokens and, in HS256 mode, issues them.
pub struct Authenticator {
    decoding: DecodingKey,
    /// Present only with an HS256 secret; a public key cannot sign.
    encoding: Option<EncodingKey>,
    validation: Validation,
    tenant_claim: String,
    issuer: Option<String>,
    audience: Option<String>,
    /// Tokens already verified, per thread: token → (tenant, last second it is valid).
    /// A dashboard sends the same token many times; checking it once is enough while the
    /// keys cannot change.
    verified: ThreadLocal<RefCell<VerifiedMemo>>,
    clock: std::sync::Arc<dyn Clock>,
    /// Why a signature may not match, said with the 401: which key this server checks with.
    signature_hint: &'static str,
}

/// token → (tenant, last second the token is still valid).
type VerifiedMemo = HashMap<Box<str>, (Owner, u64)>;

/// Verified tokens remembered per thread before the memo starts over.
const VERIFIED_MEMO_LIMIT: usize = 1024;

impl Authenticator {
    pub fn from_config(
        config: &Config,
        keys: &Keys,
        clock: std::sync::Arc<dyn Clock>,
    ) -> Result<Self> {
        let auth = &config.auth;
        let signature_hint = match (&auth.jwt_public_key_file, &auth.jwt_secret) {
            (Some(_), _) => "it was not signed by the private key of auth.jwt_public_key_file",
            (None, Some(_)) => "it was not signed with this server's auth.jwt_secret",
            (None, None) => {
                "it was signed with another key than this server's: `dravo token issue` signs with the key of the database it opens, so run it with the server's database and key file"
            }
        };
        let (decoding, encoding, algorithms) = match &auth.jwt_public_key_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    Error::config(format!(
                        "cannot read auth.jwt_public_key_file {}: {e}",
                        path.display()
                    ))
                })?;
                let (key, algs) = public_key(&pem).ok_or_else(|| {
                    Error::config(format!(
                        "auth.jwt_public_key_file {} is not an RSA, EC or Ed25519 public key in PEM form",
                        path.display()
                    ))
                })?;
                (key, None, algs)
            }
            None => {
                let secret: &[u8] = match &auth.jwt_secret {
                    Some(s) => s.expose_secret().as_bytes(),
                    None => keys.derived_jwt_secret(),
                };
                let bad = |e: jsonwebtoken::errors::Error| {
                    Error::config(format!("auth.jwt_secret cannot be used: {e}"))
                };
                (
                    DecodingKey::from_secret(secret).map_err(bad)?,
                    Some(EncodingKey::from_secret(secret).map_err(bad)?),
                    vec![Algorithm::HS256],
                )
            }
        };
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        validation.leeway = 30;
        // Time-based claims are checked in `verify_uncached` against the core's clock
        // (jsonwebtoken would read the system clock, and skips `nbf` by default).
        validation.validate_exp = false;
        validation.validate_nbf = false;
        // A configured issuer or audience must be present, not merely right when present.
        let mut required = vec!["exp"];
        if auth.issuer.is_some() {
            required.push("iss");
        }
        if auth.audience.is_some() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        match &auth.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &auth.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Ok(Authenticator {
            decoding,
            encoding,
            validation,
            tenant_claim: auth.tenant_claim.clone(),
            issuer: auth.issuer.clone(),
            audience: auth.audience.clone(),
            verified: ThreadLocal::new(),
            clock,
            signature_hint,
        })
    }

    /// Checks a bearer token and returns the tenant it names.
    pub fn verify(&self, token: &str) -> Result<Owner> {
        let now = u64::try_from(self.clock.now().unix()).unwrap_or(0);
        self.verify_at(token, now)
    }

    fn verify_at(&self, token: &str, now: u64) -> Result<Owner> {
        let memo = self.verified.get_or_default();
        if let Some((owner, valid_until)) = memo.borrow().get(token)
            && now <= *valid_until
        {
            return Ok(owner.clone());
        }
        let (owner, exp) = self.verify_uncached(token, now)?;
        let mut memo = memo.borrow_mut();
        if memo.len() >= VERIFIED_MEMO_LIMIT {
            memo.clear();
        }
        // Valid as long as the decoder would still accept `exp` (it allows the leeway).
        memo.insert(
            token.into(),
            (owner.clone(), exp.saturating_add(self.validation.leeway)),
        );
        Ok(owner)
    }

    /// Verifies signature and claims at `now`; returns the tenant and the token's `exp`.
    fn verify_uncached(&self, token: &str, now: u64) -> Result<(Owner, u64)> {
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &self.decoding, &self.validation)
                .map_err(|e| {
                    Error::unauthorized(describe_jwt_error(e.kind(), self.signature_hint))
                })?;
        let exp = data
            .claims
            .get("exp")
            .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f.max(0.0) as u64)))
            .ok_or_else(|| Error::unauthorized("the bearer token's `exp` claim is malformed"))?;
        let leeway = self.validation.leeway;
        if now > exp.saturating_add(leeway) {
            return Err(Error::unauthorized(describe_jwt_error(
                &ErrorKind::ExpiredSignature,
                self.signature_hint,
            )));
        }
        match data.claims.get("nbf") {
            None => {}
            Some(v) => {
                let nbf = v
                    .as_u64()
                    .or_else(|| v.as_f64().map(|f| f.max(0.0) as u64))
                    .ok_or_else(|| {
                        Error::unauthorized("the bearer token's `nbf` claim is malformed")
                    })?;
                if now.saturating_add(leeway) < nbf {
                    return Err(Error::unauthorized(describe_jwt_error(
                        &ErrorKind::ImmatureSignature,
                        self.signature_hint,
                    )));
                }
            }
        }
        let claim = &self.tenant_claim;
        let owner = match data.claims.get(claim) {
            Some(Value::String(tenant)) => Owner::parse(claim, tenant).map_err(|_| {
                Error::unauthorized(format!(
                    "the bearer token's `{claim}` claim must be 1 to {} characters, some visible, without control or bidirectional formatting characters",
                    Owner::MAX_LEN
                ))
            }),
            Some(_) => Err(Error::unauthorized(format!(
                "the bearer token's `{claim}` claim must be a string"
            ))),
            None => Err(Error::unauthorized(format!(
                "the bearer token has no `{claim}` claim naming the tenant"
            ))),
        }?;
        Ok((owner, exp))
    }

    /// Signs a token for `subject` valid for `ttl_seconds`, with the issuer and audience the
    /// server checks.
    pub fn issue(&self, subject: &str, ttl_seconds: u64) -> Result<String> {
        let encoding = self.encoding.as_ref().ok_or_else(|| {
            Error::config(
                "token issue signs with HS256, but auth.jwt_public_key_file is set: tokens come from your identity provider",
            )
        })?;
        let owner = Owner::parse("--sub", subject)?;
        let now = u64::try_from(self.clock.now().unix()).unwrap_or(0);
        let mut claims = Map::new();
        claims.insert("sub".into(), owner.as_str().into());
        claims.insert(self.tenant_claim.clone(), owner.as_str().into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), now.saturating_add(ttl_seconds).into());
        if let Some(iss) = &self.issuer {
            claims.insert("iss".into(), iss.as_str().into());
        }
        if let Some(aud) = &self.audience {
            claims.insert("aud".into(), aud.as_str().into());
        }
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, encoding)
            .map_err(|e| Error::Internal(format!("cannot sign a token: {e}")))
    }
}

/// Reads a PEM public key and the algorithms it may verify.
fn public_key(pem: &[u8]) -> Option<(DecodingKey, Vec<Algorithm>)> {
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        return Some((key, vec![Algorithm::EdDSA]));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Some((key, vec![Algorithm::ES256, Algorithm::ES384]));
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Some((
            key,
            vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512],
        ));
    }
    None
}

fn describe_jwt_error(kind: &ErrorKind, signature_hint: &str) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the bearer token has expired".into(),
        ErrorKind::InvalidSignature => {
            format!("the bearer token's signature is invalid: {signature_hint}")
        }
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm => {
            "the bearer token is signed with an algorithm Dravo does not accept".into()
        }
        ErrorKind::MissingRequiredClaim(claim) => {
            format!("the bearer token has no `{claim}` claim")
        }
        ErrorKind::InvalidClaimFormat(claim) => {
            format!("the bearer token's `{claim}` claim is malformed")
        }
        ErrorKind::InvalidIssuer => "the bearer token's issuer is not accepted".into(),
        ErrorKind::InvalidAudience => "the bearer token's audience is not accepted".into(),
        ErrorKind::ImmatureSignature => "the bearer token is not valid yet".into(),
        _ => "the bearer token is malformed or uses an algorithm Dravo does not accept".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    fn authenticator() -> Authenticator {
        let keys = Keys::derive(&MasterKey::generate());
        Authenticator::from_config(
            &Config::default(),
            &keys,
            std::sync::Arc::new(crate::clock::SystemClock),
        )
        .unwrap()
    }

    fn token_with_exp(auth: &Authenticator, exp: u64) -> String {
        token_with(auth, exp, None)
    }

    fn token_with(auth: &Authenticator, exp: u64, nbf: Option<u64>) -> String {
        let mut claims = Map::new();
        claims.insert("sub".into(), "alice".into());
        claims.insert("exp".into(), exp.into());
        if let Some(nbf) = nbf {
            claims.insert("nbf".into(), nbf.into());
        }
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            auth.encoding.as_ref().unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn remembered_tokens_expire_with_their_exp() {
        let auth = authenticator();
        let now = jsonwebtoken::get_current_timestamp();
        let token = token_with_exp(&auth, now + 600);
        assert_eq!(auth.verify_at(&token, now).unwrap().as_str(), "alice");
        // Remembered until exp + leeway, then checked afresh.
        let until = auth.verified.get().unwrap().borrow()[token.as_str()].1;
        assert_eq!(until, now + 600 + auth.validation.leeway);

        // An expired token stays refused even when a stale memo entry says otherwise once the
        // memo's own limit has passed.
        let expired = token_with_exp(&auth, now - 3600);
        assert!(auth.verify_at(&expired, now).is_err());
        auth.verified.get().unwrap().borrow_mut().insert(
            expired.as_str().into(),
            (Owner::parse("t", "alice").unwrap(), now + 10),
        );
        assert!(
            auth.verify_at(&expired, now).is_ok(),
            "the memo is consulted"
        );
        assert!(
            auth.verify_at(&expired, now + 11).is_err(),
            "past its limit the memo is ignored"
        );
    }

    #[test]
    fn nbf_in_the_future_is_refused_until_it_arrives() {
        let auth = authenticator();
        let now = 1_800_000_000;
        let tomorrow = now + 86_400;
        let token = token_with(&auth, tomorrow + 3600, Some(tomorrow));
        let err = auth.verify_at(&token, now).unwrap_err();
        assert!(err.to_string().contains("not valid yet"), "{err}");
        // Within the leeway, and after, it is accepted.
        assert!(auth.verify_at(&token, tomorrow - 10).is_ok());
        let fresh = token_with(&auth, tomorrow + 3600, Some(now - 5));
        assert!(auth.verify_at(&fresh, now).is_ok());
    }

    #[test]
    fn exp_is_checked_against_the_given_time() {
        let auth = authenticator();
        let now = 1_800_000_000;
        let token = token_with_exp(&auth, now + 60);
        assert!(auth.verify_at(&token, now).is_ok());
        let later = token_with_exp(&auth, now + 60);
        assert!(auth.verify_at(&later, now + 60 + 31).is_err());
    }

    #[test]
    fn memo_is_bounded() {
        let auth = authenticator();
        let now = jsonwebtoken::get_current_timestamp();
        for i in 0..VERIFIED_MEMO_LIMIT + 5 {
            let token = token_with_exp(&auth, now + 600 + i as u64);
            auth.verify_at(&token, now).unwrap();
        }
        assert!(auth.verified.get().unwrap().borrow().len() <= VERIFIED_MEMO_LIMIT);
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        const NOW: u64 = 1_800_000_000;

        proptest! {
            /// Random text as a bearer token never panics and never verifies.
            #[test]
            fn garbage_never_verifies(raw in "\\PC{0,400}") {
                prop_assert!(authenticator().verify_at(&raw, NOW).is_err());
            }

            /// A valid token with any character of it changed never verifies (base64url
            /// padding bits aside: a change that decodes to the same bytes is the same token).
            #[test]
            fn tampered_tokens_never_verify(
                at in any::<prop::sample::Index>(),
                to in proptest::sample::select(
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.".chars().collect::<Vec<_>>()
                ),
            ) {
                let auth = authenticator();
                let token = token_with_exp(&auth, NOW + 600);
                let mut chars: Vec<char> = token.chars().collect();
                let i = at.index(chars.len());
                prop_assume!(chars[i] != to);
                chars[i] = to;
                let forged: String = chars.into_iter().collect();
                let same_bytes = |a: &str, b: &str| {
                    let parts = |t: &str| -> Vec<Option<Vec<u8>>> {
                        t.split('.')
                            .map(|p| base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, p).ok())
                            .collect()
                    };
                    let (pa, pb) = (parts(a), parts(b));
                    pa.len() == 3 && pa == pb && pa.iter().all(Option::is_some)
                };
                prop_assume!(!same_bytes(&token, &forged));
                prop_assert!(auth.verify_at(&forged, NOW).is_err(), "{forged}");
            }
        }
    }
}
