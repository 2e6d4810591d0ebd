//! Checking an OAuth app's configuration before its users meet the error: the credentials at
//! the provider (where the provider can prove them without a user), the redirect URI Dravo
//! sends, the scopes, and whether `server.public_url` reaches Dravo. A problem found is
//! a result (`failed`, with the provider's own words), never an error of the call; the result
//! is stored on the app as `last_check`, which the refresh engine also sets when a provider
//! refuses the app's credentials.

use url::Url;

use super::Dravo;
use crate::domain::{
    AppCheck, AppId, CheckResult, CheckSource, CheckStatus, ClientSecret, Owner, Provider,
    Timestamp,
};
use crate::error::{Error, Result};
use crate::providers::{self, CredentialCheck, OAuthProvider};

/// The names of the checks, in the order they are reported.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";
pub const REDIRECT_URI: &str = "redirect_uri";
pub const SCOPES: &str = "scopes";
pub const PUBLIC_URL_REACHABLE: &str = "public_url_reachable";

impl Dravo {
    /// Checks one of the owner's apps, stores the result as its `last_check`, and returns it.
    /// Only the credentials and the reachability checks leave this machine.
    pub async fn check_app(&self, owner: &Owner, id: &AppId) -> Result<AppCheck> {
        let row = self.0.apps.record(owner, id).await?;
        let secret = if providers::get(row.provider).hosting().app_has_credentials() {
            Some(self.0.apps.open_client_secret(&row).await?)
        } else {
            None
        };
        let (mut checks, reachable) = tokio::join!(
            self.app_config_checks(
                row.provider,
                &row.client_id,
                secret.as_ref(),
                &row.scopes,
                row.user_agent.as_deref(),
            ),
            self.public_url_check(),
        );
        checks.push(reachable);
        let check = AppCheck {
            checked_at: self.now(),
            source: CheckSource::Check,
            checks,
        };
        let (o, i, checked, stored) = (owner.clone(), id.clone(), row.clone(), check.clone());
        self.0
            .store
            .write(move |tx| {
                Box::pin(async move {
                    let now = tx
                        .get_app(&o, &i)
                        .await?
                        .ok_or_else(|| Error::not_found(format!("no OAuth app with id {i}")))?;
                    // A result about a secret or scopes the app no longer has would mislead.
                    if now.client_secret_sealed != checked.client_secret_sealed
                        || now.scopes != checked.scopes
                    {
                        return Err(Error::Conflict(format!(
                            "OAuth app {i} changed while it was being checked: check it again"
                        )));
                    }
                    tx.set_app_last_check(&now.id, &stored).await
                })
            })
            .await?;
        tracing::info!(app_id = %id, outcome = %check.outcome(), "oauth app checked");
        Ok(check)
    }

    /// Checks each platform app of `[providers.<name>]` (credentials, redirect URI, scopes),
    /// for `dravo doctor`; nothing is stored. In provider order.
    pub async fn check_default_apps(&self) -> Vec<(Provider, Vec<CheckResult>)> {
        let mut found = Vec::new();
        for provider_id in providers::ids() {
            let Some(app) = self.0.flow_apps.default_app(provider_id) else {
                continue;
            };
            let checks = self
                .app_config_checks(
                    provider_id,
                    app.client_id.as_str(),
                    Some(&app.client_secret),
                    app.scopes.as_slice(),
                    None,
                )
                .await;
            found.push((provider_id, checks));
        }
        found
    }

    /// What is checked of an app itself, BYOK or platform: its credentials (at the provider,
    /// where it can tell), the redirect URI Dravo sends for it, and its scopes.
    async fn app_config_checks(
        &self,
        provider_id: Provider,
        client_id: &str,
        secret: Option<&ClientSecret>,
        scopes: &[String],
        user_agent: Option<&str>,
    ) -> Vec<CheckResult> {
        let provider = providers::get(provider_id);
        vec![
            self.credentials_check(provider, client_id, secret, user_agent)
                .await,
            redirect_uri_check(
                provider,
                &self.0.public_url,
                self.0.config.server.public_url.is_some(),
                &self.redirect_uri(provider_id),
            ),
            scopes_check(provider, scopes),
        ]
    }

    /// Asks the provider about the credentials, where it can tell. An app without credentials
    /// (Dravo registers it on each server) has none to ask about.
    async fn credentials_check(
        &self,
        provider: &dyn OAuthProvider,
        client_id: &str,
        secret: Option<&ClientSecret>,
        user_agent: Option<&str>,
    ) -> CheckResult {
        let name = provider.id();
        let Some(secret) = secret else {
            return CheckResult {
                name: CLIENT_CREDENTIALS.into(),
                status: CheckStatus::Unknown,
                message: format!(
                    "a {name} app has no credentials to check: Dravo registers it on each \
                     instance at the first connect there, and that instance's answer is checked then"
                ),
            };
        };
        let answer = provider
            .check_credentials(
                &self.0.calls.http_for(name, user_agent),
                self.0.calls.endpoints(name),
                client_id,
                secret.expose(),
            )
            .await;
        let (status, message) = match answer {
            CredentialCheck::Proven => (
                CheckStatus::Ok,
                format!("{name} accepted the client id and secret"),
            ),
            CredentialCheck::Refused(why) => (
                CheckStatus::Failed,
                format!("{name} refused the client id and secret: {why}"),
            ),
            CredentialCheck::Unknown(why) => (CheckStatus::Unknown, why),
        };
        CheckResult {
            name: CLIENT_CREDENTIALS.into(),
            status,
            message: without_secret(message, secret),
        }
    }

    /// `GET {public_url}/healthz` from this process: a browser coming back from the provider
    /// goes to `public_url` too. Only a warning: some networks cannot reach their own public
    /// address from inside, while browsers outside can.
    pub async fn public_url_check(&self) -> CheckResult {
        let url = format!("{}/healthz", self.0.public_url);
        let http = self.0.calls.http();
        let (status, message) = match http.send(http.client().get(&url)).await {
            Ok(resp) if resp.status == 200 && resp.body["status"] == "ok" => (
                CheckStatus::Ok,
                format!("GET {url} from this machine answered as Dravo's health check"),
            ),
            Ok(resp) => (
                CheckStatus::Warning,
                format!(
                    "GET {url} from this machine answered HTTP {} but not as Dravo's health \
                     check: server.public_url may point at another server",
                    resp.status
                ),
            ),
            Err(e) => (
                CheckStatus::Warning,
                format!(
                    "GET {url} from this machine failed ({}): browsers returning from the \
                     provider go there too; harmless if only this machine cannot reach its own \
                     public address",
                    e.description()
                ),
            ),
        };
        CheckResult {
            name: PUBLIC_URL_REACHABLE.into(),
            status,
            message,
        }
    }
}

/// The last check a refresh leaves when the provider refused the app's credentials: only the
/// credentials are known, and they failed with `why` (the provider's code and description).
pub(super) fn refused_during_refresh(provider: Provider, why: &str, now: Timestamp) -> AppCheck {
    AppCheck {
        checked_at: now,
        source: CheckSource::Refresh,
        checks: vec![CheckResult {
            name: CLIENT_CREDENTIALS.into(),
            status: CheckStatus::Failed,
            message: format!("{provider} refused the client id and secret during a refresh: {why}"),
        }],
    }
}

/// `message` with every occurrence of the secret masked: providers' error descriptions are
/// their own text, and nothing the check returns or stores may carry the secret.
fn without_secret(message: String, secret: &ClientSecret) -> String {
    let secret = secret.expose();
    if secret.is_empty() || !message.contains(secret) {
        return message;
    }
    message.replace(secret, "[redacted]")
}

/// The redirect URI Dravo sends (`redirect_uri`, built from `public_url`): an absolute URL
/// without credentials, query or fragment, whose path is `public_url`'s plus
/// `/v1/oauth/{provider}/callback`, on a host a browser can reach, that the provider's own
/// rules accept. `configured`: `server.public_url` is set (otherwise it comes from
/// `server.bind`).
fn redirect_uri_check(
    provider: &dyn OAuthProvider,
    public_url: &str,
    configured: bool,
    redirect_uri: &str,
) -> CheckResult {
    let name = provider.id();
    let result = |status, message| CheckResult {
        name: REDIRECT_URI.into(),
        status,
        message,
    };
    let uri = match Url::parse(redirect_uri) {
        Ok(uri) if matches!(uri.scheme(), "http" | "https") && uri.host().is_some() => uri,
        _ => {
            return result(
                CheckStatus::Failed,
                format!(
                    "the redirect URI `{redirect_uri}` is not an absolute http(s) URL: set \
                     server.public_url to the URL users reach Dravo at"
                ),
            );
        }
    };
    let mut problems = Vec::new();
    let base = Url::parse(public_url).ok();
    let callback = format!("/v1/oauth/{name}/callback");
    let expected_path = base
        .as_ref()
        .map(|b| format!("{}{callback}", b.path().trim_end_matches('/')));
    if base.as_ref().is_some_and(|b| b.query().is_some()) || uri.query().is_some() {
        problems.push(format!(
            "server.public_url `{public_url}` has a query, which ends up inside the redirect URI \
             `{redirect_uri}`: remove it"
        ));
    } else if base.as_ref().is_some_and(|b| b.fragment().is_some()) || uri.fragment().is_some() {
        problems.push(format!(
            "server.public_url `{public_url}` has a fragment (#…), which swallows the callback \
             path in `{redirect_uri}`: remove it"
        ));
    } else if expected_path.as_deref() != Some(uri.path())
        || base.as_ref().map(Url::origin) != Some(uri.origin())
    {
        problems.push(format!(
            "the redirect URI `{redirect_uri}` does not match server.public_url `{public_url}` \
             followed by {callback}"
        ));
    }
    if !uri.username().is_empty() || uri.password().is_some() {
        problems.push(
            "server.public_url carries a user name or password, which providers refuse in a \
             redirect URI: remove it"
                .into(),
        );
    }
    let unspecified = match uri.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => ip.is_unspecified(),
        _ => false,
    };
    if unspecified {
        problems.push(format!(
            "{} is every interface of this machine, not an address a browser can reach: set \
             server.public_url to the URL users reach Dravo at",
            uri.host_str().unwrap_or_default()
        ));
    } else if let Err(rule) = provider.check_redirect_uri(&uri) {
        problems.push(rule);
    }
    if !problems.is_empty() {
        return result(CheckStatus::Failed, problems.join("; "));
    }
    let mut message = format!("register exactly `{redirect_uri}` as a redirect URI at {name}");
    if !configured {
        message.push_str(
            " (server.public_url is not set, so it names the listen address: only a browser \
             on this machine can follow it)",
        );
    }
    result(CheckStatus::Ok, message)
}

/// What is wrong with an app's scopes, one sentence each: a scope the provider does not
/// document (with the documented one it most likely meant), and the ones Dravo's own calls
/// need that are missing. Empty when nothing is. Shown as `warnings` whenever the app is, and
/// failing the `scopes` check.
pub(super) fn scope_problems(provider: &dyn OAuthProvider, scopes: &[String]) -> Vec<String> {
    let name = provider.id();
    let known = provider.known_scopes();
    let mut problems: Vec<String> = scopes
        .iter()
        .map(String::as_str)
        .filter(|s| !known.contains(s))
        .map(|unknown| match providers::closest(unknown, known) {
            Some(meant) => format!(
                "`{unknown}` is not among the scopes {name} documents: did you mean `{meant}`?"
            ),
            None => format!(
                "`{unknown}` is not among the scopes {name} documents (a typo, or a name from \
                 another provider's or product's list?)"
            ),
        })
        .collect();
    let missing: Vec<String> = provider
        .identity_scopes(scopes)
        .iter()
        .filter(|n| !scopes.iter().any(|s| s == *n))
        .map(|n| format!("`{n}`"))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "{} {} missing: Dravo needs {} to identify the connected account",
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" },
            if missing.len() == 1 { "it" } else { "them" }
        ));
    }
    problems
}

/// The app's scopes: each one the provider knows, and the ones Dravo's own calls need among
/// them.
fn scopes_check(provider: &dyn OAuthProvider, scopes: &[String]) -> CheckResult {
    let name = provider.id();
    let needed = provider.identity_scopes(scopes);
    let quoted = |list: &[&str]| {
        list.iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let problems = scope_problems(provider, scopes);
    let (status, message) = if problems.is_empty() {
        let mut message = format!("all {} scopes are ones {name} documents", scopes.len());
        if !needed.is_empty() {
            message.push_str(&format!(
                ", including {}, which Dravo needs to identify the connected account",
                quoted(needed)
            ));
        }
        (CheckStatus::Ok, message)
    } else {
        (CheckStatus::Failed, problems.join("; "))
    };
    CheckResult {
        name: SCOPES.into(),
        status,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(name: &str) -> &'static dyn OAuthProvider {
        providers::get(name.parse().unwrap())
    }

    fn redirect(name: &str, public_url: &str) -> CheckResult {
        let uri = format!("{public_url}/v1/oauth/{name}/callback");
        redirect_uri_check(provider(name), public_url, true, &uri)
    }

    #[test]
    fn every_providers_default_scopes_pass_its_own_scope_check() {
        for p in providers::all() {
            let defaults = p.default_scope_list().into_vec();
            let result = scopes_check(p, &defaults);
            assert_eq!(
                result.status,
                CheckStatus::Ok,
                "{}: {}",
                p.id(),
                result.message
            );
        }
    }

    #[test]
    fn scope_check_names_unknown_and_missing_scopes() {
        let scopes = ["tweet.read", "tweet.wirte"].map(String::from);
        let result = scopes_check(provider("x"), &scopes);
        assert_eq!(result.status, CheckStatus::Failed);
        assert!(
            result.message.contains("`tweet.wirte` is not among"),
            "{}",
            result.message
        );
        assert!(
            result.message.contains("`users.read` is missing"),
            "{}",
            result.message
        );
        assert!(
            !result.message.contains("`tweet.read`"),
            "{}",
            result.message
        );
    }

    #[test]
    fn facebook_needs_pages_show_list_only_when_pages_are_wanted() {
        let fb = provider("facebook");
        let without_pages = ["public_profile", "email"].map(String::from);
        assert_eq!(scopes_check(fb, &without_pages).status, CheckStatus::Ok);
        let pages = ["pages_manage_posts"].map(String::from);
        let result = scopes_check(fb, &pages);
        assert_eq!(result.status, CheckStatus::Failed);
        assert!(
            result.message.contains("`pages_show_list` is missing"),
            "{}",
            result.message
        );
    }

    #[test]
    fn redirect_uri_rules() {
        let ok = redirect("x", "https://dravo.example.com");
        assert_eq!(ok.status, CheckStatus::Ok, "{}", ok.message);
        assert!(
            ok.message
                .contains("`https://dravo.example.com/v1/oauth/x/callback`")
        );
        let prefixed = redirect("linkedin", "https://example.com/dravo");
        assert_eq!(prefixed.status, CheckStatus::Ok, "{}", prefixed.message);
        for loopback in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            let r = redirect("x", loopback);
            assert_eq!(r.status, CheckStatus::Ok, "{loopback}: {}", r.message);
        }
        let plain = redirect("x", "http://dravo.example.com");
        assert_eq!(plain.status, CheckStatus::Failed);
        assert!(plain.message.contains("https"), "{}", plain.message);
        let everywhere = redirect("x", "http://0.0.0.0:8080");
        assert_eq!(everywhere.status, CheckStatus::Failed);
        assert!(
            everywhere.message.contains("every interface"),
            "{}",
            everywhere.message
        );
        let query = redirect("x", "https://dravo.example.com/?a=b");
        assert_eq!(query.status, CheckStatus::Failed);
        assert!(query.message.contains("has a query"), "{}", query.message);
        let fragment = redirect("x", "https://dravo.example.com/#top");
        assert_eq!(fragment.status, CheckStatus::Failed);
        assert!(
            fragment.message.contains("fragment"),
            "{}",
            fragment.message
        );
        let credentials = redirect("x", "https://user:pw@dravo.example.com");
        assert_eq!(credentials.status, CheckStatus::Failed);
        // TikTok's web Login Kit wants https even on loopback.
        let tiktok = redirect("tiktok", "http://127.0.0.1:8080");
        assert_eq!(tiktok.status, CheckStatus::Failed);
        assert!(tiktok.message.contains("only https"), "{}", tiktok.message);
        let long = format!("https://dravo.example.com/{}", "p".repeat(500));
        assert_eq!(redirect("tiktok", &long).status, CheckStatus::Failed);
        assert_eq!(redirect("x", &long).status, CheckStatus::Ok);
    }

    #[test]
    fn a_redirect_uri_from_the_listen_address_says_so() {
        let uri = "http://127.0.0.1:8080/v1/oauth/x/callback";
        let r = redirect_uri_check(provider("x"), "http://127.0.0.1:8080", false, uri);
        assert_eq!(r.status, CheckStatus::Ok);
        assert!(
            r.message.contains("server.public_url is not set"),
            "{}",
            r.message
        );
    }

    #[test]
    fn the_secret_is_masked_wherever_it_appears() {
        let secret = ClientSecret::parse("hunter2-secret").unwrap();
        assert_eq!(
            without_secret("bad secret hunter2-secret for app".into(), &secret),
            "bad secret [redacted] for app"
        );
        assert_eq!(without_secret("fine".into(), &secret), "fine");
    }

    #[test]
    fn the_outcome_is_the_worst_status() {
        let check = |statuses: &[CheckStatus]| AppCheck {
            checked_at: Timestamp::from_unix(0),
            source: CheckSource::Check,
            checks: statuses
                .iter()
                .map(|&status| CheckResult {
                    name: "n".into(),
                    status,
                    message: String::new(),
                })
                .collect(),
        };
        use CheckStatus::*;
        assert_eq!(check(&[Ok, Ok]).outcome(), Ok);
        assert_eq!(check(&[Ok, Unknown]).outcome(), Unknown);
        assert_eq!(check(&[Unknown, Warning, Ok]).outcome(), Warning);
        assert_eq!(check(&[Warning, Failed, Unknown]).outcome(), Failed);
    }
}
