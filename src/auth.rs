//! Dashboard authentication: verifying the bearer JWT that names the tenant, and issuing
//! HS256 tokens for `dravo token issue`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use thread_local::ThreadLocal;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::KeyRing;
use crate::domain::Owner;
use crate::error::{Error, Result};

/// Verifies dashboard tokens and, in HS256 mode, issues them.
pub struct Authenticator {
    signing: Signing,
    validation: Validation,
    tenant_claim: String,
    /// `auth.max_token_lifetime`: the longest span from `iat` (or now) to `exp`.
    max_lifetime: u64,
    issuer: Option<String>,
    audience: Option<String>,
    /// Tokens already verified, per thread: token → (tenant, last second it is valid, keys'
    /// generation). A dashboard sends the same token many times; checking it once is enough
    /// while the keys stay the same.
    verified: ThreadLocal<RefCell<VerifiedMemo>>,
    clock: std::sync::Arc<dyn Clock>,
    /// Why a signature may not match, said with the 401: which key this server checks with.
    signature_hint: &'static str,
}

/// token → (tenant, last second the token is still valid, generation of the keys that
/// verified it).
type VerifiedMemo = HashMap<Box<str>, (Owner, u64, u64)>;

/// What tokens are checked (and, with a secret, signed) with.
enum Signing {
    /// `auth.jwt_public_key_file`: verify only.
    PublicKey(DecodingKey),
    /// `auth.jwt_secret`: the same secret whatever the master keys do.
    Secret {
        decoding: DecodingKey,
        encoding: EncodingKey,
    },
    /// Derived from the master keys: it changes when they rotate (`use_ring`).
    Derived(RwLock<Arc<DerivedKeys>>),
}

/// The HS256 keys of a key ring.
struct DerivedKeys {
    /// Bumped on every change, so remembered verifications are made again.
    generation: u64,
    /// The current master key's.
    encoding: EncodingKey,
    /// Every key a token may be signed with, the current one first, and until when it
    /// counts (a retired key's grace period).
    decoding: Vec<(DecodingKey, Option<u64>)>,
}

impl DerivedKeys {
    fn of(ring: &KeyRing, generation: u64) -> Result<DerivedKeys> {
        let bad = |e: jsonwebtoken::errors::Error| {
            Error::Internal(format!("the derived JWT secret cannot be used: {e}"))
        };
        let secrets = ring.jwt_secrets();
        Ok(DerivedKeys {
            generation,
            encoding: EncodingKey::from_secret(secrets[0].0).map_err(bad)?,
            decoding: secrets
                .iter()
                .map(|(secret, until)| {
                    Ok((
                        DecodingKey::from_secret(&secret[..]).map_err(bad)?,
                        until.and_then(|t| u64::try_from(t.unix()).ok()),
                    ))
                })
                .collect::<Result<_>>()?,
        })
    }
}

/// Verified tokens remembered per thread before the memo starts over.
const VERIFIED_MEMO_LIMIT: usize = 1024;

impl Authenticator {
    pub fn from_config(
        config: &Config,
        ring: &KeyRing,
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
        let (signing, algorithms) = match &auth.jwt_public_key_file {
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
                (Signing::PublicKey(key), algs)
            }
            None => match &auth.jwt_secret {
                Some(secret) => {
                    let secret = secret.expose_secret().as_bytes();
                    let bad = |e: jsonwebtoken::errors::Error| {
                        Error::config(format!("auth.jwt_secret cannot be used: {e}"))
                    };
                    (
                        Signing::Secret {
                            decoding: DecodingKey::from_secret(secret).map_err(bad)?,
                            encoding: EncodingKey::from_secret(secret).map_err(bad)?,
                        },
                        vec![Algorithm::HS256],
                    )
                }
                None => (
                    Signing::Derived(RwLock::new(Arc::new(DerivedKeys::of(ring, 0)?))),
                    vec![Algorithm::HS256],
                ),
            },
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
            signing,
            validation,
            tenant_claim: auth.tenant_claim.clone(),
            max_lifetime: auth.max_token_lifetime,
            issuer: auth.issuer.clone(),
            audience: auth.audience.clone(),
            verified: ThreadLocal::new(),
            clock,
            signature_hint,
        })
    }

    /// Follows a change of the master keys: tokens are signed with the current key's secret
    /// from now on, and accepted when signed with any key of `ring` (a retired one's during
    /// its grace period). Nothing changes with `auth.jwt_secret` or a public key.
    pub fn use_ring(&self, ring: &KeyRing) -> Result<()> {
        if let Signing::Derived(keys) = &self.signing {
            let mut keys = keys.write().unwrap_or_else(|e| e.into_inner());
            *keys = Arc::new(DerivedKeys::of(ring, keys.generation + 1)?);
        }
        Ok(())
    }

    /// The generation of the keys in use (0 when they never change).
    fn generation(&self) -> u64 {
        match &self.signing {
            Signing::Derived(keys) => keys.read().unwrap_or_else(|e| e.into_inner()).generation,
            _ => 0,
        }
    }

    /// Checks a bearer token and returns the tenant it names.
    pub fn verify(&self, token: &str) -> Result<Owner> {
        let now = u64::try_from(self.clock.now().unix()).unwrap_or(0);
        self.verify_at(token, now)
    }

    fn verify_at(&self, token: &str, now: u64) -> Result<Owner> {
        let memo = self.verified.get_or_default();
        let generation = self.generation();
        if let Some((owner, valid_until, seen_generation)) = memo.borrow().get(token)
            && now <= *valid_until
            && *seen_generation == generation
        {
            return Ok(owner.clone());
        }
        let (owner, exp, key_until) = self.verify_uncached(token, now)?;
        let mut memo = memo.borrow_mut();
        if memo.len() >= VERIFIED_MEMO_LIMIT {
            memo.clear();
        }
        // Valid as long as the decoder would still accept `exp` (it allows the leeway), and
        // the key that signed it still counts.
        let valid_until = exp
            .saturating_add(self.validation.leeway)
            .min(key_until.map_or(u64::MAX, |u| u.saturating_sub(1)));
        memo.insert(token.into(), (owner.clone(), valid_until, generation));
        Ok(owner)
    }

    /// Decodes a token with the key it was signed with; returns its claims and, for a
    /// retired master key's secret, until when that key counts.
    fn decode(&self, token: &str, now: u64) -> Result<(Map<String, Value>, Option<u64>)> {
        let fail = |e: jsonwebtoken::errors::Error| {
            Error::unauthorized(describe_jwt_error(e.kind(), self.signature_hint))
        };
        let decode = |key: &DecodingKey| {
            jsonwebtoken::decode::<Map<String, Value>>(token, key, &self.validation)
                .map(|data| data.claims)
        };
        match &self.signing {
            Signing::PublicKey(key) | Signing::Secret { decoding: key, .. } => {
                decode(key).map(|c| (c, None)).map_err(fail)
            }
            Signing::Derived(keys) => {
                let keys = keys.read().unwrap_or_else(|e| e.into_inner()).clone();
                let mut last = None;
                for (key, until) in &keys.decoding {
                    if until.is_some_and(|u| now >= u) {
                        continue;
                    }
                    match decode(key) {
                        Ok(claims) => return Ok((claims, *until)),
                        // Another key may have signed it.
                        Err(e) if *e.kind() == ErrorKind::InvalidSignature => last = Some(e),
                        Err(e) => return Err(fail(e)),
                    }
                }
                Err(fail(
                    last.unwrap_or_else(|| ErrorKind::InvalidSignature.into()),
                ))
            }
        }
    }

    /// Verifies signature and claims at `now`; returns the tenant, the token's `exp`, and
    /// until when the key that signed it counts.
    fn verify_uncached(&self, token: &str, now: u64) -> Result<(Owner, u64, Option<u64>)> {
        let (claims, key_until) = self.decode(token, now)?;
        let exp = claims
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
        let time_claim = |name: &str| -> Result<Option<u64>> {
            claims
                .get(name)
                .map(|v| {
                    v.as_u64()
                        .or_else(|| v.as_f64().map(|f| f.max(0.0) as u64))
                        .ok_or_else(|| {
                            Error::unauthorized(format!(
                                "the bearer token's `{name}` claim is malformed"
                            ))
                        })
                })
                .transpose()
        };
        if let Some(nbf) = time_claim("nbf")?
            && now.saturating_add(leeway) < nbf
        {
            return Err(Error::unauthorized(describe_jwt_error(
                &ErrorKind::ImmatureSignature,
                self.signature_hint,
            )));
        }
        let iat = time_claim("iat")?;
        if let Some(iat) = iat
            && now.saturating_add(leeway) < iat
        {
            return Err(Error::unauthorized(
                "the bearer token's `iat` (issued at) is in the future: check the clock of the system that signed it",
            ));
        }
        // Measured from `iat`, or from now without one: a token may not outlive the maximum
        // whenever it was made.
        let from = iat.unwrap_or(now);
        if exp.saturating_sub(from) > self.max_lifetime.saturating_add(leeway) {
            return Err(Error::unauthorized(format!(
                "the bearer token is valid for {} seconds{}, longer than auth.max_token_lifetime allows ({} seconds): issue a shorter-lived token",
                exp.saturating_sub(from),
                if iat.is_some() { "" } else { " from now" },
                self.max_lifetime
            )));
        }
        let claim = &self.tenant_claim;
        let owner = match claims.get(claim) {
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
        Ok((owner, exp, key_until))
    }

    /// Signs a token for `subject` valid for `ttl_seconds`, with the issuer and audience the
    /// server checks.
    pub fn issue(&self, subject: &str, ttl_seconds: u64) -> Result<String> {
        let derived;
        let encoding = match &self.signing {
            Signing::PublicKey(_) => {
                return Err(Error::config(
                    "token issue signs with HS256, but auth.jwt_public_key_file is set: tokens come from your identity provider",
                ));
            }
            Signing::Secret { encoding, .. } => encoding,
            Signing::Derived(keys) => {
                derived = keys.read().unwrap_or_else(|e| e.into_inner()).clone();
                &derived.encoding
            }
        };
        let owner = Owner::parse("--sub", subject)?;
        if ttl_seconds > self.max_lifetime {
            return Err(Error::invalid(format!(
                "--ttl {ttl_seconds} is longer than auth.max_token_lifetime allows: at most {} seconds",
                self.max_lifetime
            )));
        }
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
    use crate::crypto::{KeyId, Keys, MasterKey};

    fn ring() -> KeyRing {
        KeyRing::single(Keys::derive(KeyId::FIRST, &MasterKey::generate()))
    }

    fn authenticator() -> Authenticator {
        Authenticator::from_config(
            &Config::default(),
            &ring(),
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
        let Signing::Derived(keys) = &auth.signing else {
            panic!("the test authenticator derives its secret")
        };
        let keys = keys.read().unwrap().clone();
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap()
    }

    /// After a rotation, tokens signed with the old key count until its grace period ends,
    /// remembered or not; new tokens are signed with the new key.
    #[test]
    fn tokens_of_a_retired_key_count_until_its_grace_ends() {
        use crate::crypto::ring::{GraceLine, KnownKey, RingFile, RingKey};
        use crate::domain::Timestamp;
        let (one, two) = (MasterKey::generate(), MasterKey::generate());
        let copy = |k: &MasterKey| MasterKey::from_base64(&k.to_base64(), "t").unwrap();
        let now = 1_800_000_000u64;
        let grace_end = now + 600;
        let known = |id: u32, k: &MasterKey, retired: bool| KnownKey {
            id: KeyId::new(id).unwrap(),
            check_value: k.check_value(),
            retired,
            accept_until: retired.then(|| Timestamp::from_unix(grace_end as i64)),
        };
        let auth = Authenticator::from_config(
            &Config::default(),
            &KeyRing::single(Keys::derive(KeyId::FIRST, &copy(&one))),
            std::sync::Arc::new(crate::clock::SystemClock),
        )
        .unwrap();
        let old = token_with_exp(&auth, now + 3600);
        assert!(auth.verify_at(&old, now).is_ok());

        let file = RingFile {
            keys: vec![RingKey {
                id: KeyId::new(2),
                key: copy(&two),
            }],
            graces: vec![GraceLine {
                id: KeyId::FIRST,
                until: Timestamp::from_unix(grace_end as i64),
                material: one.grace_material(),
            }],
        };
        let db = [known(1, &one, true), known(2, &two, false)];
        let (rotated, _) =
            KeyRing::build(&file, &db, Timestamp::from_unix(now as i64), "k", "d").unwrap();
        auth.use_ring(&rotated).unwrap();
        let new = token_with_exp(&auth, now + 3600);
        assert_ne!(new, old);
        assert!(auth.verify_at(&new, now).is_ok());
        assert!(auth.verify_at(&old, now + 1).is_ok(), "in its grace period");
        let err = auth.verify_at(&old, grace_end).unwrap_err();
        assert!(err.to_string().contains("signature is invalid"), "{err}");
        assert!(auth.verify_at(&new, grace_end).is_ok());

        // Without the old key at all, its tokens are refused at once, memo or not.
        let (alone, _) = KeyRing::build(
            &RingFile {
                keys: vec![RingKey {
                    id: KeyId::new(2),
                    key: copy(&two),
                }],
                graces: Vec::new(),
            },
            &db,
            Timestamp::from_unix(now as i64),
            "k",
            "d",
        )
        .unwrap();
        assert!(auth.verify_at(&old, now + 2).is_ok());
        auth.use_ring(&alone).unwrap();
        assert!(auth.verify_at(&old, now + 2).is_err());
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
            (Owner::parse("t", "alice").unwrap(), now + 10, 0),
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
