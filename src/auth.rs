//! Dashboard authentication: verifying the bearer JWT that names the tenant, and issuing
//! HS256 tokens for `dravo token issue`.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};

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
}

impl Authenticator {
    pub fn from_config(config: &Config, keys: &Keys) -> Result<Self> {
        let auth = &config.auth;
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
        })
    }

    /// Checks a bearer token and returns the tenant it names.
    pub fn verify(&self, token: &str) -> Result<Owner> {
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &self.decoding, &self.validation)
                .map_err(|e| Error::unauthorized(describe_jwt_error(e.kind())))?;
        let claim = &self.tenant_claim;
        match data.claims.get(claim) {
            Some(Value::String(tenant)) => Owner::parse(claim, tenant).map_err(|_| {
                Error::unauthorized(format!(
                    "the bearer token's `{claim}` claim must be 1 to {} characters without control characters",
                    Owner::MAX_LEN
                ))
            }),
            Some(_) => Err(Error::unauthorized(format!(
                "the bearer token's `{claim}` claim must be a string"
            ))),
            None => Err(Error::unauthorized(format!(
                "the bearer token has no `{claim}` claim naming the tenant"
            ))),
        }
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
        let now = jsonwebtoken::get_current_timestamp();
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

fn describe_jwt_error(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the bearer token has expired".into(),
        ErrorKind::InvalidSignature => "the bearer token's signature is invalid".into(),
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
