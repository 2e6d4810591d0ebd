//! The registry: every provider this build can connect, and their names as people write them
//! (lists in prose, "did you mean", parsing a `Provider`).

use std::str::FromStr;

use super::{
    OAuthProvider, Provider, facebook, google_business, instagram, linkedin, mastodon, pinterest,
    reddit, threads, tiktok, x, youtube,
};

/// Every provider this build can connect, in the order the seed page lists them. The order
/// means nothing else: nothing stores a position in this list.
static REGISTRY: &[&dyn OAuthProvider] = &[
    &instagram::Instagram,
    &facebook::Facebook,
    &x::X,
    &linkedin::Linkedin,
    &tiktok::Tiktok,
    &threads::Threads,
    &youtube::Youtube,
    &google_business::GoogleBusiness,
    &pinterest::Pinterest,
    &reddit::Reddit,
    &mastodon::Mastodon,
];

/// Every registered provider.
pub fn all() -> impl Iterator<Item = &'static dyn OAuthProvider> {
    REGISTRY.iter().copied()
}

/// Every registered provider's name.
pub fn ids() -> impl Iterator<Item = Provider> {
    all().map(|p| p.id())
}

/// The implementation behind a provider name. Every `Provider` comes from this registry
/// (`FromStr` below), so the lookup cannot miss.
pub fn get(provider: Provider) -> &'static dyn OAuthProvider {
    all()
        .find(|p| p.id() == provider)
        .expect("every Provider value names a registered provider")
}

/// The names accepted, for error messages: "instagram, facebook, x, linkedin or tiktok".
pub fn expected() -> String {
    listed(ids().map(Provider::as_str), "or")
}

/// The providers as people write them, for prose: "Instagram, Facebook, X, LinkedIn and
/// TikTok".
pub fn display_names() -> String {
    listed(all().map(|p| p.display_name()), "and")
}

/// "a, b and c".
fn listed<'a>(items: impl Iterator<Item = &'a str>, last_joiner: &str) -> String {
    let items: Vec<&str> = items.collect();
    match items.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} {last_joiner} {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The registered provider someone most likely meant by a name that is not one: the same
/// name in another case (`X`, `LinkedIn`), a name the provider was known by (`twitter`), or
/// a near miss (`tiktk`, `linkdin`). `None` when nothing is close.
pub fn suggest(given: &str) -> Option<Provider> {
    let wanted = given.trim().to_lowercase();
    if let Some(p) = all()
        .find(|p| p.id().as_str() == wanted || p.other_names().iter().any(|name| *name == wanted))
    {
        return Some(p.id());
    }
    // A near miss: at most two edits, and few for the name's length, so that `y` is no
    // misspelt `x`; only when one provider is nearest.
    let mut near: Vec<(usize, Provider)> = ids()
        .map(|p| (edit_distance(&wanted, p.as_str()), p))
        .filter(|(d, p)| *d <= 2 && d * 3 <= p.as_str().chars().count())
        .collect();
    near.sort_by_key(|(d, _)| *d);
    match near.as_slice() {
        [(d, p), rest @ ..] if rest.first().is_none_or(|(next, _)| next > d) => Some(*p),
        _ => None,
    }
}

/// The one `candidate` nearest to `given` by at most two edits, and few for its length (so a
/// short word is not "corrected" into another); `None` when none is, or two are as near.
pub fn closest<'a>(given: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let mut near: Vec<(usize, &str)> = candidates
        .iter()
        .map(|c| (edit_distance(given, c), *c))
        .filter(|(d, c)| *d > 0 && *d <= 2 && d * 3 <= c.chars().count())
        .collect();
    near.sort_by_key(|(d, _)| *d);
    match near.as_slice() {
        [(d, c), rest @ ..] if rest.first().is_none_or(|(next, _)| next > d) => Some(*c),
        _ => None,
    }
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The error for a provider name Dravo does not know: the registered name it most likely
/// meant (`did you mean `x`?`), else every registered name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProvider(pub String);

impl std::fmt::Display for UnknownProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match suggest(&self.0) {
            Some(p) => write!(f, "unknown provider `{}`: did you mean `{p}`?", self.0),
            None => write!(
                f,
                "unknown provider `{}`: expected one of {}",
                self.0,
                expected()
            ),
        }
    }
}

impl std::error::Error for UnknownProvider {}

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ids()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProvider(s.chars().take(40).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn display_names_are_listed_in_prose() {
        assert_eq!(
            display_names(),
            "Instagram, Facebook, X, LinkedIn, TikTok, Threads, YouTube, Google Business Profile, Pinterest, Reddit and Mastodon"
        );
    }
    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for p in ids() {
            assert_eq!(p.as_str().parse::<Provider>().unwrap(), p);
            assert_eq!(get(p).id(), p);
        }
        assert!("X".parse::<Provider>().is_err());
        assert!("twitter".parse::<Provider>().is_err());
        assert_eq!(
            expected(),
            "instagram, facebook, x, linkedin, tiktok, threads, youtube, google_business, pinterest, reddit or mastodon"
        );
    }
    #[test]
    fn an_unknown_name_suggests_the_registered_spelling() {
        let error = |name: &str| name.parse::<Provider>().unwrap_err().to_string();
        assert_eq!(error("X"), "unknown provider `X`: did you mean `x`?");
        assert_eq!(
            error("twitter"),
            "unknown provider `twitter`: did you mean `x`?"
        );
        assert_eq!(
            error("Twitter"),
            "unknown provider `Twitter`: did you mean `x`?"
        );
        assert_eq!(
            error("LinkedIn"),
            "unknown provider `LinkedIn`: did you mean `linkedin`?"
        );
        assert_eq!(
            error("instagram "),
            "unknown provider `instagram `: did you mean `instagram`?"
        );
        assert_eq!(
            error("tiktk"),
            "unknown provider `tiktk`: did you mean `tiktok`?"
        );
        assert_eq!(
            error("linkdin"),
            "unknown provider `linkdin`: did you mean `linkedin`?"
        );
        // Nothing close: every name, in the registry's order.
        for far in ["myspace", "y", "xy", "", "face", "tik"] {
            assert_eq!(
                error(far),
                format!("unknown provider `{far}`: expected one of {}", expected()),
                "{far:?}"
            );
        }
        for p in ids() {
            assert_eq!(suggest(&p.as_str().to_uppercase()), Some(p));
        }
    }
    #[test]
    fn closest_names_the_one_near_candidate() {
        let scopes = ["tweet.read", "tweet.write", "users.read"];
        assert_eq!(closest("tweet.wirte", &scopes), Some("tweet.write"));
        assert_eq!(closest("users.raed", &scopes), Some("users.read"));
        assert_eq!(closest("tweet.write", &scopes), None, "not a typo");
        assert_eq!(closest("dm.read", &scopes), None, "nothing near");
        assert_eq!(closest("ab", &["ac", "ad"]), None, "too short to tell");
    }

    #[test]
    fn edit_distance_counts_characters() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("x", ""), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("tiktok", "tiktk"), 1);
        assert_eq!(edit_distance("ü", "u"), 1);
    }
    #[test]
    fn registered_names_are_unique_lowercase_tokens() {
        let names: Vec<&str> = ids().map(Provider::as_str).collect();
        for (i, name) in names.iter().enumerate() {
            assert!(!names[..i].contains(name), "{name} is registered twice");
            assert!(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}: provider names are lower-case ASCII and `_` (they are config keys and URL segments)"
            );
        }
    }
}
