//! Typed values that are checked once, at the edge (HTTP body, CLI flag, JWT claim), so the
//! core never handles a raw string it would have to check again.

use std::fmt;

use rand::Rng;
use secrecy::{ExposeSecret, SecretString};

use crate::error::Error;

mod outputs;
pub use outputs::{
    AccessToken, Deleted, Event, OAuthApp, RegisteredServer, WebhookEvent, WebhookStatus,
};

/// Rejects control characters, which have no business in names, ids or secrets and make
/// logs and terminals lie.
fn check_no_control(field: &str, value: &str) -> Result<(), Error> {
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

/// Bidirectional formatting characters (ALM, LRM, RLM, the embeddings and overrides, the
/// isolates): invisible, they reorder the text around them, so a name can read differently
/// from what it is.
pub const BIDI_CONTROLS: &[(char, char)] = &[
    ('\u{061C}', '\u{061C}'),
    ('\u{200E}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2066}', '\u{2069}'),
];

/// Characters that show nothing and are not whitespace: soft hyphen, combining grapheme
/// joiner, Hangul fillers, Mongolian vowel separator, zero-width space/non-joiner/joiner,
/// word joiner and invisible operators, deprecated format characters, the BOM
/// (zero-width no-break space) and the interlinear annotation marks.
pub const INVISIBLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{034F}', '\u{034F}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200D}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{206A}', '\u{206F}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF9}', '\u{FFFB}'),
];

fn in_ranges(c: char, ranges: &[(char, char)]) -> bool {
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Whether `c` is a bidirectional formatting character ([`BIDI_CONTROLS`]).
pub fn is_bidi_control(c: char) -> bool {
    in_ranges(c, BIDI_CONTROLS)
}

/// Whether `c` shows nothing without being whitespace ([`INVISIBLE`]).
pub fn is_invisible(c: char) -> bool {
    in_ranges(c, INVISIBLE)
}

/// Whether `c` must never reach a terminal or a name as is: a control character (C0, DEL,
/// C1), a bidirectional formatting character or an invisible one.
pub fn is_hidden(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || is_invisible(c)
}

/// Whether `c` can forge or reorder a log line or a query value shown to someone: a control
/// character (C0, DEL, C1 such as U+0085 NEL), the line and paragraph separators U+2028 and
/// U+2029, or a bidirectional formatting character.
pub fn breaks_log_lines(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}' || is_bidi_control(c)
}

/// `text` (a request path, a provider's words) safe for either log format: every character
/// of [`breaks_log_lines`] written as a `\u{…}` escape, the rest untouched.
pub fn escape_untrusted(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(breaks_log_lines) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if breaks_log_lines(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Rejects control and bidirectional formatting characters anywhere, and text with nothing
/// visible in it (only whitespace and zero-width characters).
fn check_visible(field: &str, value: &str) -> Result<(), Error> {
    check_no_control(field, value)?;
    if value.chars().any(is_bidi_control) {
        return Err(Error::invalid(format!(
            "{field} must not contain bidirectional control characters (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069)"
        )));
    }
    if value.chars().all(|c| c.is_whitespace() || is_invisible(c)) {
        return Err(Error::invalid(format!(
            "{field} must contain a visible character, not only blanks or zero-width characters"
        )));
    }
    Ok(())
}

/// The longest provider text (username, display name) kept, in characters.
pub const PROVIDER_TEXT_MAX_LEN: usize = 256;

/// Makes text from a provider profile (username, display name) safe to store and show:
/// removes control, bidirectional formatting and invisible characters ([`is_hidden`]),
/// turns each run of whitespace (newlines included) into one space, trims, and keeps at most
/// [`PROVIDER_TEXT_MAX_LEN`] characters. `None` when nothing is left.
pub fn clean_provider_text(text: impl AsRef<str>) -> Option<String> {
    let text = text.as_ref();
    let mut out = String::with_capacity(text.len().min(4 * PROVIDER_TEXT_MAX_LEN));
    let mut count = 0;
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = true;
        } else if !is_hidden(c) {
            let gap = space && count > 0;
            if count + usize::from(gap) + 1 > PROVIDER_TEXT_MAX_LEN {
                break;
            }
            if gap {
                out.push(' ');
                count += 1;
            }
            out.push(c);
            count += 1;
            space = false;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Checks a length in Unicode scalar values (not bytes: 120 emoji is a valid name).
fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), Error> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(Error::invalid(format!(
            "{field} must be {min} to {max} characters long (got {n})"
        )));
    }
    Ok(())
}

/// What every text value the store keeps as it entered (an owner, an id) has: it is read
/// back without parsing again, prints and serialises as its text, and gives that text up.
macro_rules! stored_text {
    ($name:ident) => {
        impl $name {
            /// A value the store wrote: parsed or generated when it entered, not again.
            pub(crate) fn from_stored(value: String) -> Self {
                $name(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        /// Test fixtures name values literally.
        #[cfg(test)]
        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                $name(value.to_owned())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

/// The tenant: whoever the dashboard JWT names. Every store call takes one. Like an app name,
/// it has something visible in it and no control or bidirectional formatting character.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner(String);

impl Owner {
    pub const MAX_LEN: usize = 128;

    pub fn parse(field: &str, value: &str) -> Result<Self, Error> {
        check_len(field, value, 1, Self::MAX_LEN)?;
        check_visible(field, value)?;
        Ok(Owner(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

stored_text!(Owner);

/// An OAuth app's display name: 1–120 characters after trimming, unique per owner and provider,
/// with something visible in it and no control or bidirectional formatting character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppName(String);

impl AppName {
    pub const MAX_LEN: usize = 120;

    pub fn parse(value: &str) -> Result<Self, Error> {
        Self::parse_as("name", value)
    }

    /// `parse`, with errors naming `field` (the CLI's `--name`).
    pub fn parse_as(field: &str, value: &str) -> Result<Self, Error> {
        let trimmed = value.trim();
        check_len(field, trimmed, 1, Self::MAX_LEN)?;
        check_visible(field, trimmed)?;
        Ok(AppName(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The provider's public id for an OAuth app (TikTok calls it the client key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId(String);

impl ClientId {
    pub const MAX_LEN: usize = 512;

    pub fn parse(value: &str) -> Result<Self, Error> {
        Self::parse_as("client_id", value)
    }

    /// `parse`, with errors naming `field` (the CLI's `--client-id`).
    pub fn parse_as(field: &str, value: &str) -> Result<Self, Error> {
        let trimmed = value.trim();
        check_len(field, trimmed, 1, Self::MAX_LEN)?;
        check_no_control(field, trimmed)?;
        Ok(ClientId(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The `User-Agent` an app's calls to its provider carry instead of the provider's default
/// (Reddit throttles generic ones and asks for `<platform>:<app id>:<version> (by /u/<user>)`).
/// Printable ASCII only, since it travels as an HTTP header: 1 to 256 characters after
/// trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgent(String);

impl UserAgent {
    pub const MAX_LEN: usize = 256;

    pub fn parse(value: &str) -> Result<Self, Error> {
        Self::parse_as("user_agent", value)
    }

    /// `parse`, with errors naming `field` (the CLI's `--user-agent`).
    pub fn parse_as(field: &str, value: &str) -> Result<Self, Error> {
        let trimmed = value.trim();
        check_len(field, trimmed, 1, Self::MAX_LEN)?;
        if let Some(c) = trimmed.chars().find(|c| !(' '..='~').contains(c)) {
            return Err(Error::invalid(format!(
                "{field} must be printable ASCII (an HTTP header value): {} is not",
                c.escape_unicode()
            )));
        }
        Ok(UserAgent(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An OAuth app's client secret. Kept exactly as given (secrets are not ours to trim);
/// `Debug` prints `[REDACTED]`, and there is no `Display`.
#[derive(Clone)]
pub struct ClientSecret(SecretString);

impl ClientSecret {
    pub const MAX_LEN: usize = 2048;

    pub fn parse(value: &str) -> Result<Self, Error> {
        Self::parse_as("client_secret", value)
    }

    /// `parse`, with errors naming `field` (the CLI's `--client-secret-env`).
    pub fn parse_as(field: &str, value: &str) -> Result<Self, Error> {
        if value.trim().is_empty() {
            return Err(Error::invalid(format!("{field} must not be empty")));
        }
        check_len(field, value, 1, Self::MAX_LEN)?;
        check_no_control(field, value)?;
        Ok(ClientSecret(SecretString::from(value.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([REDACTED])")
    }
}

/// The scopes an app asks for: 1–50 distinct scope tokens, order kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Scopes {
    pub const MAX_COUNT: usize = 50;
    pub const MAX_LEN: usize = 200;

    pub fn parse<S: AsRef<str>>(values: &[S]) -> Result<Self, Error> {
        Self::parse_as("scopes", values)
    }

    /// `parse`, with errors about the whole list naming `field` (the CLI's `--scopes`).
    pub fn parse_as<S: AsRef<str>>(field: &str, values: &[S]) -> Result<Self, Error> {
        if values.is_empty() {
            return Err(Error::invalid(format!(
                "{field} must list at least one scope; leave it out to use the provider's defaults"
            )));
        }
        if values.len() > Self::MAX_COUNT {
            return Err(Error::invalid(format!(
                "{field} may list at most {} scopes (got {})",
                Self::MAX_COUNT,
                values.len()
            )));
        }
        let mut out: Vec<String> = Vec::with_capacity(values.len());
        for value in values {
            let scope = value.as_ref();
            check_len("each scope", scope, 1, Self::MAX_LEN)?;
            // Providers join scopes with spaces or commas, so neither can be part of one.
            if scope
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == '"' || c == '\\')
            {
                return Err(Error::invalid(format!(
                    "scope `{}` must not contain spaces, commas, quotes, backslashes or control characters",
                    scope.escape_debug()
                )));
            }
            if !out.iter().any(|s| s == scope) {
                out.push(scope.to_owned());
            }
        }
        Ok(Scopes(out))
    }

    /// Parses a space- or comma-separated list, as typed on a command line, with errors
    /// naming `field`.
    pub fn parse_list_as(field: &str, value: &str) -> Result<Self, Error> {
        Self::parse_as(field, &split_list(value))
    }

    /// A list known to be valid (a provider's built-in defaults).
    pub fn from_static(scopes: &[&str]) -> Self {
        Scopes(scopes.iter().map(|s| s.to_string()).collect())
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// Splits a list written as one string, `"a b c"` or `"a,b,c"`: scopes on a command line,
/// list values in environment variables, and scopes as providers return them.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

const ID_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const ID_RANDOM_LEN: usize = 20;

/// Generates `prefix` + 20 lowercase base32 characters (100 random bits).
pub(crate) fn new_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut id = String::with_capacity(prefix.len() + ID_RANDOM_LEN);
    id.push_str(prefix);
    for _ in 0..ID_RANDOM_LEN {
        id.push(ID_ALPHABET[rng.random_range(0..32)] as char);
    }
    id
}

fn is_id(prefix: &str, value: &str) -> bool {
    value.len() == prefix.len() + ID_RANDOM_LEN
        && value.starts_with(prefix)
        && value[prefix.len()..]
            .bytes()
            .all(|b| ID_ALPHABET.contains(&b))
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;
            /// The length of every well-formed id.
            pub const LEN: usize = $prefix.len() + ID_RANDOM_LEN;
            /// The pattern a well-formed id matches, for the OpenAPI spec.
            pub const PATTERN: &'static str = concat!("^", $prefix, "[a-z2-7]{20}$");

            pub fn generate() -> Self {
                $name(new_id($prefix))
            }

            pub fn parse(value: &str) -> Result<Self, Error> {
                if is_id($prefix, value) {
                    Ok($name(value.to_owned()))
                } else {
                    Err(Error::invalid(format!(
                        concat!("`{}` is not a valid ", $what, " id: expected `", $prefix, "` followed by 20 lowercase base32 characters"),
                        value.chars().take(64).collect::<String>().escape_debug()
                    )))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        stored_text!($name);
    };
}

prefixed_id!(
    /// An OAuth app's id: `oa_` + 20 lowercase base32 characters.
    AppId,
    "oa_",
    "OAuth app"
);

prefixed_id!(
    /// A connected account's id: `acc_` + 20 lowercase base32 characters.
    AccountId,
    "acc_",
    "account"
);

prefixed_id!(
    /// An event's id (an account event, and the webhook it caused): `evt_` + 20 lowercase
    /// base32 characters.
    EventId,
    "evt_",
    "event"
);

/// What an account is: a connected user, or something that user manages and posts as (a
/// Facebook Page, a LinkedIn organization, a YouTube channel, a Google Business Profile
/// location), stored as a child of the user's account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    User,
    Page,
    Organization,
    Channel,
    Location,
}

impl AccountKind {
    pub const ALL: [AccountKind; 5] = [
        AccountKind::User,
        AccountKind::Page,
        AccountKind::Organization,
        AccountKind::Channel,
        AccountKind::Location,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            AccountKind::User => "user",
            AccountKind::Page => "page",
            AccountKind::Organization => "organization",
            AccountKind::Channel => "channel",
            AccountKind::Location => "location",
        }
    }

    /// Whether a child of this kind has a token of its own (a Facebook Page's Page token);
    /// the others are used with their parent's token.
    pub const fn has_own_token(self) -> bool {
        matches!(self, AccountKind::Page)
    }

    /// What a child of this kind is called in sentences ("Page", "organization").
    pub const fn noun(self) -> &'static str {
        match self {
            AccountKind::User => "user",
            AccountKind::Page => "Page",
            AccountKind::Organization => "organization",
            AccountKind::Channel => "channel",
            AccountKind::Location => "location",
        }
    }

    /// The kind a caller filters on.
    pub fn parse_filter(value: &str) -> Result<Self, Error> {
        value.parse().map_err(|_| {
            let names: Vec<&str> = AccountKind::ALL.iter().map(|k| k.as_str()).collect();
            let (last, rest) = names.split_last().expect("there are kinds");
            Error::invalid(format!(
                "kind must be {} or {last}, got `{}`",
                rest.join(", "),
                value.chars().take(40).collect::<String>().escape_debug()
            ))
        })
    }
}

impl std::str::FromStr for AccountKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AccountKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown account kind `{s}`"))
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an account stands. `expiring` is still usable: it says that a deadline no refresh
/// can move (`reauth_by`) is near. (A connect awaiting confirmation is not an account yet:
/// see `PendingRecord`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    Active,
    Expiring,
    NeedsReauth,
}

impl AccountStatus {
    pub const ALL: [AccountStatus; 3] = [
        AccountStatus::Active,
        AccountStatus::Expiring,
        AccountStatus::NeedsReauth,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Expiring => "expiring",
            AccountStatus::NeedsReauth => "needs_reauth",
        }
    }

    /// Whether the account's token may be handed out (after a refresh if due).
    pub const fn usable(self) -> bool {
        matches!(self, AccountStatus::Active | AccountStatus::Expiring)
    }

    /// The status a caller filters on.
    pub fn parse_filter(value: &str) -> Result<Self, Error> {
        match value {
            "active" => Ok(AccountStatus::Active),
            "expiring" => Ok(AccountStatus::Expiring),
            "needs_reauth" => Ok(AccountStatus::NeedsReauth),
            other => Err(Error::invalid(format!(
                "status must be active, expiring or needs_reauth, got `{}`",
                other.chars().take(40).collect::<String>().escape_debug()
            ))),
        }
    }
}

impl std::str::FromStr for AccountStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AccountStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown account status `{s}`"))
    }
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use crate::clock::Timestamp;

/// A provider's name: `x`, `linkedin`, … Spelled in lower case everywhere (URLs, config
/// tables, the database). Only the provider registry (`crate::providers`) makes one from
/// text, so every value names a provider this build knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Provider(&'static str);

impl Provider {
    /// For a provider module declaring its own name.
    pub const fn named(name: &'static str) -> Self {
        Provider(name)
    }

    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// What one check of an OAuth app's configuration found, from least to most serious (the
/// order `AppCheck::outcome` takes the worst of).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckStatus {
    /// Checked, and nothing is wrong.
    Ok,
    /// Cannot be told from the server side (the provider offers no way, or did not answer).
    Unknown,
    /// Probably wrong, but it does not stop connects by itself.
    Warning,
    /// Wrong: connects with this app will fail until it is fixed.
    Failed,
}

impl CheckStatus {
    pub const ALL: [CheckStatus; 4] = [
        CheckStatus::Ok,
        CheckStatus::Unknown,
        CheckStatus::Warning,
        CheckStatus::Failed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Unknown => "unknown",
            CheckStatus::Warning => "warning",
            CheckStatus::Failed => "failed",
        }
    }
}

impl std::str::FromStr for CheckStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CheckStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown check status `{s}`"))
    }
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What produced an app's last check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckSource {
    /// `POST /v1/oauth-apps/{id}/check` or `dravo oauth-apps check`: every check ran.
    Check,
    /// The refresh engine: the provider refused the app's credentials during a refresh, so
    /// only the credentials result is known.
    Refresh,
}

impl CheckSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            CheckSource::Check => "check",
            CheckSource::Refresh => "refresh",
        }
    }
}

impl std::str::FromStr for CheckSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [CheckSource::Check, CheckSource::Refresh]
            .into_iter()
            .find(|src| src.as_str() == s)
            .ok_or_else(|| format!("unknown check source `{s}`"))
    }
}

/// One named check and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// `client_credentials`, `redirect_uri`, `scopes` or `public_url_reachable`. A string, not
    /// an enum, so a result stored by a later version with more checks still reads.
    pub name: String,
    pub status: CheckStatus,
    /// One sentence: what was found, and for a problem, what to change. Never a secret.
    pub message: String,
}

/// The last check of an app's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCheck {
    pub checked_at: Timestamp,
    pub source: CheckSource,
    pub checks: Vec<CheckResult>,
}

impl AppCheck {
    /// The worst status of its checks (`ok` when there are none).
    pub fn outcome(&self) -> CheckStatus {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(CheckStatus::Ok)
    }
}

/// Which of an owner's accounts to list: every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AccountFilter {
    pub provider: Option<Provider>,
    pub status: Option<AccountStatus>,
    pub kind: Option<AccountKind>,
    /// Only the children of this account.
    pub parent_id: Option<AccountId>,
}

/// A connected account as callers see it: never a token. What a page of accounts lists, read
/// from the store without the sealed tokens (see `Store::list_accounts_page`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub provider: Provider,
    pub oauth_app_id: Option<String>,
    pub provider_account_id: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub scopes: Vec<String>,
    pub status: AccountStatus,
    /// Why it is expiring or needs re-authorization.
    pub status_reason: Option<String>,
    /// When the access token expires.
    pub expires_at: Option<Timestamp>,
    /// After this only a new consent helps.
    pub reauth_by: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// `user`, or a `page` / `organization` the user manages (a child).
    pub kind: AccountKind,
    /// A child's user account.
    pub parent_id: Option<String>,
    /// What the user may do on a Page (Facebook's `tasks`).
    pub tasks: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_agent_is_printable_ascii_of_at_most_256_characters() {
        let ua = UserAgent::parse(" web:com.example.app:1.2 (by /u/someone) ").unwrap();
        assert_eq!(ua.as_str(), "web:com.example.app:1.2 (by /u/someone)");
        assert!(UserAgent::parse(&"a".repeat(256)).is_ok());
        let long = UserAgent::parse(&"a".repeat(257)).unwrap_err().to_string();
        assert!(long.contains("1 to 256 characters"), "{long}");
        for bad in [
            "",
            "   ",
            "a\tb",
            "a\rb",
            "a\nX-Injected: 1",
            "caf\u{e9}",
            "a\u{7f}",
        ] {
            assert!(UserAgent::parse(bad).is_err(), "{bad:?}");
        }
        let named = UserAgent::parse_as("--user-agent", "a\u{1}b")
            .unwrap_err()
            .to_string();
        assert!(
            named.contains("--user-agent must be printable ASCII"),
            "{named}"
        );
    }

    #[test]
    fn app_name_counts_characters_not_bytes() {
        let emoji = "🦀".repeat(120);
        assert!(AppName::parse(&emoji).is_ok());
        assert!(AppName::parse(&"🦀".repeat(121)).is_err());
        assert!(AppName::parse("   ").is_err());
        assert_eq!(AppName::parse("  My App ").unwrap().as_str(), "My App");
        assert!(AppName::parse("a\u{7}b").is_err());
    }

    #[test]
    fn names_and_owners_must_be_visible_and_free_of_bidi_controls() {
        for bad in [
            "\u{200b}\u{200b}",
            "\u{feff}",
            " \u{2060}\u{200d} ",
            "\u{3164}",
            "\u{00a0}\u{3000}",
            "abc\u{202e}def",
            "abc\u{2066}",
            "\u{200f}abc",
            "a\u{061c}b",
            "a\u{85}b",
            "a\u{9b}b",
        ] {
            let name = AppName::parse(bad).unwrap_err().to_string();
            assert!(name.contains("name"), "{bad:?}: {name}");
            let owner = Owner::parse("sub", bad).unwrap_err().to_string();
            assert!(owner.contains("sub"), "{bad:?}: {owner}");
        }
        assert!(AppName::parse("  ").is_err());
        assert!(Owner::parse("sub", "  ").is_err());
        // Zero-width joiners inside visible text are fine (emoji sequences, scripts).
        assert_eq!(
            AppName::parse("👨\u{200d}👩\u{200d}👧 app")
                .unwrap()
                .as_str(),
            "👨\u{200d}👩\u{200d}👧 app"
        );
        assert!(Owner::parse("sub", "team\u{200c}a").is_ok());
        assert!(Owner::parse("sub", "שלום عالم").is_ok());
    }

    #[test]
    fn escape_untrusted_escapes_controls_c1_line_separators_and_bidi_controls() {
        assert!(matches!(
            escape_untrusted("/v1/oauth-apps/oa_1"),
            std::borrow::Cow::Borrowed("/v1/oauth-apps/oa_1")
        ));
        assert_eq!(
            escape_untrusted("/a\nb\u{85}c\u{2028}d\u{2029}e\u{202E}f\u{2066}g\u{1b}[31mh\u{7f}"),
            "/a\\u{a}b\\u{85}c\\u{2028}d\\u{2029}e\\u{202e}f\\u{2066}g\\u{1b}[31mh\\u{7f}"
        );
        // Ordinary non-ASCII text stays as it is.
        assert_eq!(escape_untrusted("café ünïcode"), "café ünïcode");
    }

    #[test]
    fn provider_text_loses_controls_bidi_and_invisible_characters() {
        assert_eq!(
            clean_provider_text("evil\u{1b}[31m\u{7}\u{202e}resu\nacc_x\u{9b}2J\u{7f}").as_deref(),
            Some("evil[31mresu acc_x2J")
        );
        assert_eq!(
            clean_provider_text("  Fake\u{200b}\t\r\n  User\u{2066} \u{feff} ").as_deref(),
            Some("Fake User")
        );
        assert_eq!(
            clean_provider_text("a\u{2028}\u{2029}\u{85}\u{a0}\u{3000}b").as_deref(),
            Some("a b")
        );
        for c in [
            '\u{61c}', '\u{200e}', '\u{200f}', '\u{2069}', '\u{2060}', '\u{2064}', '\u{180e}',
        ] {
            assert_eq!(clean_provider_text(format!("a{c}b")).as_deref(), Some("ab"));
        }
        assert_eq!(
            clean_provider_text("Ünïcödé 🦀 名前").as_deref(),
            Some("Ünïcödé 🦀 名前")
        );
        assert_eq!(clean_provider_text(""), None);
        assert_eq!(clean_provider_text(" \n\t "), None);
        assert_eq!(clean_provider_text("\u{200b}\u{202e}\u{1b}\u{feff}"), None);
    }

    #[test]
    fn provider_text_is_capped_without_a_trailing_space() {
        let long = "é".repeat(300);
        let cleaned = clean_provider_text(&long).unwrap();
        assert_eq!(cleaned.chars().count(), PROVIDER_TEXT_MAX_LEN);
        // A space that would be the last kept character is dropped with the word after it.
        let words = format!("{} b", "a".repeat(PROVIDER_TEXT_MAX_LEN - 1));
        let cleaned = clean_provider_text(&words).unwrap();
        assert_eq!(cleaned, "a".repeat(PROVIDER_TEXT_MAX_LEN - 1));
        let exact = format!("{} b", "a".repeat(PROVIDER_TEXT_MAX_LEN - 2));
        assert_eq!(clean_provider_text(&exact).unwrap(), exact);
    }

    #[test]
    fn ids_have_prefix_and_base32_body() {
        let id = AppId::generate();
        assert!(id.as_str().starts_with("oa_"));
        assert_eq!(id.as_str().len(), 23);
        assert_eq!(AppId::parse(id.as_str()).unwrap(), id);
        assert!(AppId::parse("oa_1").is_err());
        assert!(AppId::parse("oa_ABCDEFGHIJKLMNOPQRST").is_err());
        assert!(AppId::parse("xx_abcdefghijklmnopqrst").is_err());
    }

    #[test]
    fn scopes_reject_separators_and_dedupe() {
        assert!(Scopes::parse(&["a b"]).is_err());
        assert!(Scopes::parse(&["a,b"]).is_err());
        assert!(Scopes::parse::<&str>(&[]).is_err());
        let s = Scopes::parse(&["a", "b", "a"]).unwrap();
        assert_eq!(s.as_slice(), ["a", "b"]);
        assert_eq!(
            Scopes::parse_list_as("--scopes", "a, b c")
                .unwrap()
                .as_slice(),
            ["a", "b", "c"]
        );
        let err = Scopes::parse_list_as("--scopes", " , ").unwrap_err();
        assert!(err.to_string().starts_with("--scopes must list"), "{err}");
    }

    #[test]
    fn client_secret_debug_is_redacted() {
        let s = ClientSecret::parse("hunter2").unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn timestamps_show_as_rfc3339_utc() {
        let t = Timestamp::from_unix(1_767_225_600);
        assert_eq!(t.rfc3339(), "2026-01-01T00:00:00Z");
        assert_eq!(t.plus_seconds(90).unix(), 1_767_225_690);
        let now = Timestamp::now_system().rfc3339();
        assert!(now.ends_with('Z') && now.len() == 20, "{now}");
    }
}
