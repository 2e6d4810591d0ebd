//! The providers Dravo can connect, and the facts every one of them must answer.
//!
//! Each provider's quirks (URLs, parameter names, scope separators) live here, so that the rest
//! of the code asks a `Provider` instead of matching on names.

use std::fmt;
use std::str::FromStr;

/// A social network Dravo connects accounts of. Spelled in lower case everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    Instagram,
    Facebook,
    X,
    Linkedin,
    Tiktok,
}

impl Provider {
    /// Every provider, in the order the seed page lists them.
    pub const ALL: [Provider; 5] = [
        Provider::Instagram,
        Provider::Facebook,
        Provider::X,
        Provider::Linkedin,
        Provider::Tiktok,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Instagram => "instagram",
            Provider::Facebook => "facebook",
            Provider::X => "x",
            Provider::Linkedin => "linkedin",
            Provider::Tiktok => "tiktok",
        }
    }

    /// The scopes Dravo requests when an app does not name its own (PROVIDERS.md).
    pub fn default_scopes(self) -> &'static [&'static str] {
        match self {
            Provider::X => &[
                "tweet.read",
                "tweet.write",
                "users.read",
                "offline.access",
                "media.write",
            ],
            Provider::Linkedin => &["openid", "profile", "w_member_social"],
            Provider::Facebook => &[
                "pages_show_list",
                "pages_manage_posts",
                "pages_read_engagement",
                "business_management",
            ],
            Provider::Instagram => &[
                "instagram_business_basic",
                "instagram_business_content_publish",
            ],
            Provider::Tiktok => &["user.info.basic", "video.publish", "video.upload"],
        }
    }

    /// The list of names accepted, for error messages.
    pub fn expected() -> &'static str {
        "instagram, facebook, x, linkedin or tiktok"
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a provider name Dravo does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider `{0}`: expected one of {expected}", expected = Provider::expected())]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProvider(s.chars().take(40).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for p in Provider::ALL {
            assert_eq!(p.as_str().parse::<Provider>().unwrap(), p);
        }
        assert!("X".parse::<Provider>().is_err());
        assert!("twitter".parse::<Provider>().is_err());
    }
}
