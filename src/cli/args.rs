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
    /// Only this provider's: x, linkedin, facebook, instagram or tiktok (any case)
    #[arg(long, value_name = "PROVIDER", value_parser = parse_provider)]
    pub provider: Option<Provider>,
}

/// `--status` as a filter.
#[derive(Debug, Args)]
pub struct StatusFilter {
    /// Only accounts with this status: active, expiring or needs_reauth
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    pub status: Option<AccountStatus>,
}

/// A provider name in any case (`X`, `LinkedIn`).
pub fn parse_provider(s: &str) -> std::result::Result<Provider, String> {
    s.to_ascii_lowercase()
        .parse()
        .map_err(|_| crate::providers::UnknownProvider(s.chars().take(40).collect()).to_string())
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
