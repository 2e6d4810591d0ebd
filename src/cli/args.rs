//! Arguments several commands share (`--owner`, `--provider`, `--status`), and the parsers
//! that turn flag values into domain values, so that a bad one is a usage error (exit 2)
//! before anything runs.

use clap::Args;

use crate::domain::{AccountId, AccountKind, AccountStatus, Owner, Provider};
use crate::error::Result;

/// `--owner`, as every tenant-scoped command takes it.
#[derive(Debug, Args)]
pub struct OwnerArg {
    /// The tenant: what your dashboard's JWTs carry in `sub` (auth.tenant_claim)
    #[arg(long, value_name = "TENANT")]
    owner: String,
}

impl OwnerArg {
    pub fn parse(&self) -> Result<Owner> {
        Owner::parse("--owner", &self.owner)
    }
}

/// `--provider` as a filter.
#[derive(Debug, Args)]
pub struct ProviderFilter {
    #[arg(long, value_name = "PROVIDER", value_parser = parse_provider, help = provider_help("Only this provider's"))]
    pub provider: Option<Provider>,
}

/// `--status` as a filter.
#[derive(Debug, Args)]
pub struct StatusFilter {
    /// Only accounts with this status: active, expiring or needs_reauth
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    pub status: Option<AccountStatus>,
}

/// The help of a `--provider` flag: `lead`, then every registered name in the registry's
/// order.
pub fn provider_help(lead: &str) -> String {
    format!("{lead}: {}", crate::providers::expected())
}

/// A provider name exactly as the registry spells it; anything else is refused with the
/// name most likely meant (`X`: did you mean `x`?).
pub fn parse_provider(s: &str) -> std::result::Result<Provider, String> {
    s.parse()
        .map_err(|e: crate::providers::UnknownProvider| e.to_string())
}

pub fn parse_status(value: &str) -> std::result::Result<AccountStatus, String> {
    AccountStatus::parse_filter(&value.to_ascii_lowercase()).map_err(|e| e.to_string())
}

pub fn parse_kind(value: &str) -> std::result::Result<AccountKind, String> {
    AccountKind::parse_filter(&value.to_ascii_lowercase()).map_err(|e| e.to_string())
}

pub fn parse_account_id(value: &str) -> std::result::Result<AccountId, String> {
    AccountId::parse(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_are_taken_as_the_registry_spells_them_only() {
        for p in crate::providers::ids() {
            assert_eq!(parse_provider(p.as_str()), Ok(p));
        }
        assert_eq!(
            parse_provider("X").unwrap_err(),
            "unknown provider `X`: did you mean `x`?"
        );
        assert_eq!(
            parse_provider("twitter").unwrap_err(),
            "unknown provider `twitter`: did you mean `x`?"
        );
    }
}
