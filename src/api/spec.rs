//! The OpenAPI document as people (Swagger UI at `/docs`) and client generators read it:
//! poem-openapi's document plus what its derives cannot say:
//! - tags in `ApiTags::FLOW` order (poem-openapi sorts them by name);
//! - on each JSON error response, an example body for every code sent with that status
//!   (poem-openapi's responses carry no example, and a schema example is the same everywhere);
//! - a nullable field holding another schema as `oneOf` that one schema, `nullable`
//!   (poem-openapi writes an `allOf` with an inline part, which generators read as a new type);
//! - on each request body's schema, `additionalProperties: false`: every body derives
//!   `deny_unknown_fields` (CONTRACT §3), which poem-openapi does not write into the schema,
//!   and `minProperties: 1` on one without required fields (a PATCH refuses `{}`);
//! - when a server serves it, its public URL in `servers` and in the examples' URLs.
//!
//! The document is edited as a `serde_yaml::Value` because its mappings keep key order;
//! `serde_json::Value` (without the crate-wide `preserve_order`) would sort every key.

use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use poem::endpoint::make_sync;
use poem::{Endpoint, Response, Route};
use poem_openapi::types::ParseFromJSON;
use poem_openapi::{OpenApi, OpenApiService, Tags, Webhook};
use serde_yaml::{Mapping, Value};

use crate::api::ApiTags;
use crate::api::error::{ErrorBody, ErrorCode, ErrorDetail, INTERNAL_MESSAGE, MISSING_TOKEN};
use crate::api::error::{NOT_ALLOWED, NOT_JSON};
use crate::api::limits::Limit;
use crate::api::oauth_apps::EXAMPLE_APP_NAME;
use crate::config::LimitsConfig;
use crate::domain::{AccountId, AppId, AppName, Provider};
use crate::error::RefreshBackoff;
use crate::wire::views::{EXAMPLE_ACCOUNT_ID, EXAMPLE_APP_ID, EXAMPLE_TIME, example_public_url};

/// A finished OpenAPI document.
pub struct Spec {
    doc: Value,
}

impl Spec {
    /// `service`'s document, finished; `public_url` is the serving server's, if any.
    pub fn new<T: OpenApi, W: Webhook>(
        service: &OpenApiService<T, W>,
        public_url: Option<&str>,
    ) -> Spec {
        let mut doc: Value =
            serde_json::from_str(&service.spec()).expect("poem-openapi writes a JSON document");
        order_tags(&mut doc);
        add_error_examples(&mut doc);
        nullable_references(&mut doc);
        closed_request_bodies(&mut doc);
        if let Some(url) = public_url {
            serve_from(&mut doc, url);
        }
        Spec { doc }
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(&self.doc).expect("a JSON document stays JSON")
    }

    pub fn yaml(&self) -> String {
        serde_yaml::to_string(&self.doc).expect("a JSON document is YAML")
    }

    /// Swagger UI's page over this document (its JSON `json`). poem-openapi's page embeds its
    /// own document verbatim; this one takes its place.
    pub fn swagger_page<T: OpenApi, W: Webhook>(
        service: &OpenApiService<T, W>,
        json: &str,
    ) -> String {
        let generated = service.spec();
        let page = service.swagger_ui_html();
        assert!(
            page.contains(&generated),
            "Swagger UI's page no longer embeds the document verbatim"
        );
        page.replacen(&generated, json, 1)
    }
}

/// What a server serves of its document: `GET /openapi.json` and Swagger UI's page at
/// `/docs`, both rendered on the first request for either. Together they take a few megabytes
/// (the page carries Swagger UI's scripts), which a server nobody browses never holds.
#[derive(Clone)]
pub struct ServedDocs(Arc<LazyLock<Rendered, RenderDocs>>);

type RenderDocs = Box<dyn FnOnce() -> Rendered + Send>;

struct Rendered {
    json: Bytes,
    page: Bytes,
}

impl ServedDocs {
    /// The docs of the service `make_service` builds, served from `public_url`.
    pub fn new<T, W>(make_service: fn() -> OpenApiService<T, W>, public_url: &str) -> ServedDocs
    where
        T: OpenApi + 'static,
        W: Webhook + 'static,
    {
        let public_url = public_url.to_owned();
        let render: RenderDocs = Box::new(move || {
            let service = make_service();
            let json = Spec::new(&service, Some(&public_url)).json();
            let page = Spec::swagger_page(&service, &json);
            Rendered {
                json: Bytes::from(json),
                page: Bytes::from(page),
            }
        });
        ServedDocs(Arc::new(LazyLock::new(render)))
    }

    fn rendered(&self) -> &Rendered {
        &self.0
    }

    /// `GET /openapi.json`.
    pub fn json_endpoint(&self) -> impl Endpoint<Output = Response> + 'static {
        let docs = self.clone();
        make_sync(move |_| {
            Response::builder()
                .content_type("application/json")
                .body(docs.rendered().json.clone())
        })
    }

    /// Swagger UI, at the root of where it is nested.
    pub fn swagger_ui(&self) -> impl Endpoint + 'static {
        let docs = self.clone();
        Route::new().at(
            "/",
            make_sync(move |_| {
                Response::builder()
                    .content_type("text/html; charset=utf-8")
                    .body(docs.rendered().page.clone())
            }),
        )
    }
}

/// Marks the schema of every JSON request body `additionalProperties: false`: the server
/// refuses unknown fields (400 `invalid_request`), so the document must not allow them. A
/// body of optional fields only needs one of them.
fn closed_request_bodies(doc: &mut Value) {
    let mut names = Vec::new();
    if let Some(Value::Mapping(paths)) = doc.get("paths") {
        for operation in paths
            .values()
            .filter_map(Value::as_mapping)
            .flat_map(|ops| ops.values())
        {
            let reference = operation
                .get("requestBody")
                .and_then(|b| b.get("content"))
                .and_then(Value::as_mapping)
                .into_iter()
                .flat_map(|content| content.values())
                .filter_map(|media| media.get("schema")?.get("$ref")?.as_str());
            names.extend(
                reference
                    .filter_map(|r| r.strip_prefix("#/components/schemas/"))
                    .map(str::to_owned),
            );
        }
    }
    let Some(Value::Mapping(schemas)) =
        doc.get_mut("components").and_then(|c| c.get_mut("schemas"))
    else {
        return;
    };
    for name in names {
        if let Some(Value::Mapping(schema)) = schemas.get_mut(name.as_str()) {
            schema.insert("additionalProperties".into(), Value::Bool(false));
            // A body of optional fields only (a PATCH) is refused empty: nothing to change.
            if !schema.contains_key("required") {
                schema.insert("minProperties".into(), Value::from(1));
            }
        }
    }
}

/// OpenAPI 3.0 cannot set `nullable` beside a `$ref`. poem-openapi writes such a field as
/// `allOf: [{$ref}, {nullable: true}]`, which client generators take for a new type (or
/// refuse); `oneOf: [{$ref}]` with `nullable: true` is the form they read as "that schema or
/// null".
fn nullable_references(doc: &mut Value) {
    let Some(Value::Mapping(schemas)) =
        doc.get_mut("components").and_then(|c| c.get_mut("schemas"))
    else {
        return;
    };
    for (_, schema) in schemas.iter_mut() {
        let Some(Value::Mapping(properties)) = schema.get_mut("properties") else {
            continue;
        };
        for (_, prop) in properties.iter_mut() {
            let Some(Value::Sequence(all_of)) = prop.get("allOf") else {
                continue;
            };
            let only_nullable = |part: &Value| {
                part.as_mapping().is_some_and(|m| {
                    m.keys()
                        .all(|k| matches!(k.as_str(), Some("nullable" | "description")))
                })
            };
            let (Some(reference), rest) = (all_of.first(), all_of.get(1..).unwrap_or_default())
            else {
                continue;
            };
            if reference.get("$ref").is_none()
                || !rest.iter().all(only_nullable)
                || prop.get("nullable") != Some(&Value::Bool(true))
            {
                continue;
            }
            let mut rewritten = Mapping::new();
            if let Some(description) = prop.get("description") {
                rewritten.insert("description".into(), description.clone());
            }
            rewritten.insert("oneOf".into(), Value::Sequence(vec![reference.clone()]));
            rewritten.insert("nullable".into(), true.into());
            *prop = Value::Mapping(rewritten);
        }
    }
}

fn order_tags(doc: &mut Value) {
    let Some(Value::Sequence(tags)) = doc.get_mut("tags") else {
        return;
    };
    let rank = |tag: &Value| {
        let name = tag.get("name").and_then(Value::as_str);
        ApiTags::FLOW
            .iter()
            .position(|t| Some(t.name()) == name)
            .unwrap_or(usize::MAX)
    };
    tags.sort_by_key(rank);
}

/// Every code of the `ErrorCode` schema, read back through the type itself.
fn error_codes(doc: &Value) -> Vec<ErrorCode> {
    let names = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_sequence()
        .cloned()
        .unwrap_or_default();
    names
        .iter()
        .filter_map(Value::as_str)
        .map(|name| {
            ErrorCode::parse_from_json(Some(name.into()))
                .unwrap_or_else(|_| panic!("`{name}` is in the ErrorCode schema"))
        })
        .collect()
}

/// What an operation's examples can be specific about.
struct Operation<'a> {
    path: &'a str,
    has_body: bool,
}

/// A real message for `code` on this operation: the sentence the server sends (the parse
/// errors come from the domain types themselves).
fn example_message(code: ErrorCode, op: &Operation) -> String {
    let accounts = op.path.starts_with("/v1/accounts");
    match code {
        ErrorCode::InvalidRequest if op.has_body => format!(
            "invalid request body: {}",
            AppName::parse("").expect_err("an empty name is refused")
        ),
        ErrorCode::InvalidRequest if op.path.contains("{id}") => {
            // A numeric id, as other APIs use.
            let error = if accounts {
                AccountId::parse("42").expect_err("not an account id")
            } else {
                AppId::parse("42").expect_err("not an app id")
            };
            format!("invalid parameter `id`: {error}")
        }
        ErrorCode::InvalidRequest => format!(
            "invalid parameter `provider`: {}",
            "myspace"
                .parse::<Provider>()
                .expect_err("myspace is not a provider")
        ),
        ErrorCode::Unauthorized => MISSING_TOKEN.into(),
        ErrorCode::NotFound if accounts => format!("no account with id {EXAMPLE_ACCOUNT_ID}"),
        ErrorCode::NotFound => format!("no OAuth app with id {EXAMPLE_APP_ID}"),
        ErrorCode::MethodNotAllowed => NOT_ALLOWED.into(),
        ErrorCode::Conflict => {
            format!("an OAuth app named `{EXAMPLE_APP_NAME}` already exists for provider x")
        }
        ErrorCode::NoDefaultApp => "no default app is configured for x: set providers.x.client_id \
             and client_secret, or pass oauth_app_id"
            .into(),
        ErrorCode::RequestTimeout => crate::net::BodyTimedOut(std::time::Duration::from_secs(
            crate::config::ServerConfig::default().body_timeout_seconds,
        ))
        .to_string(),
        ErrorCode::PayloadTooLarge => {
            crate::api::error::PayloadTooLarge(crate::api::MAX_BODY_BYTES).to_string()
        }
        ErrorCode::UnsupportedMediaType => NOT_JSON.into(),
        ErrorCode::RateLimited => {
            // Each limited operation has its own bucket; the message names it, at its default.
            let limit = if op.path.ends_with("/start") {
                Limit::Start
            } else if op.path.ends_with("/callback") {
                Limit::Callback
            } else if op.path.ends_with("/access-token") || op.path.ends_with("/refresh") {
                Limit::Token
            } else if op.path.ends_with("/check") || op.path == "/v1/oauth-apps" {
                Limit::Create
            } else {
                Limit::Change
            };
            limit.message(limit.rate(&LimitsConfig::default()), 1)
        }
        ErrorCode::Internal => INTERNAL_MESSAGE.into(),
        ErrorCode::NeedsReauth => format!(
            "account {EXAMPLE_ACCOUNT_ID} needs to be connected again (invalid_grant: Value passed for the token was invalid.)"
        ),
        ErrorCode::RefreshBackoff => example_backoff().to_string(),
        ErrorCode::AppInUse => crate::service::app_in_use_message(EXAMPLE_APP_ID, 2),
        ErrorCode::ProviderError => {
            "the provider is unavailable: api.x.com did not answer: timed out after 15 s".into()
        }
        ErrorCode::NotReady => crate::service::NotReady(vec![
            "migrations: the database schema is at version 10, newer than this build's 9 (a newer Dravo migrated it)".into(),
        ])
        .to_string(),
    }
}

/// The `refresh_backoff` of the examples: the third failure in a row, four minutes to wait.
fn example_backoff() -> RefreshBackoff {
    RefreshBackoff {
        account_id: EXAMPLE_ACCOUNT_ID.into(),
        failures: 3,
        account_status: "active",
        next_attempt_at: EXAMPLE_TIME.plus_seconds(240),
        retry_after_seconds: 240,
    }
}

/// Whether the operation can answer `code` at all, where its status alone does not tell (two
/// codes share 503).
fn sent_by(code: ErrorCode, op: &Operation) -> bool {
    match code {
        ErrorCode::NotReady => op.path == "/readyz",
        ErrorCode::RefreshBackoff => op.path.starts_with("/v1/accounts"),
        // Only a body that is read can be late.
        ErrorCode::RequestTimeout => op.has_body,
        _ => true,
    }
}

fn example_body(code: ErrorCode, op: &Operation) -> Value {
    let body = ErrorBody {
        error: ErrorDetail {
            code,
            message: example_message(code, op),
            refresh: (code == ErrorCode::RefreshBackoff)
                .then(|| Box::new((&example_backoff()).into())),
        },
    };
    serde_yaml::to_value(poem_openapi::types::ToJSON::to_json(&body))
        .expect("an error body is JSON")
}

/// Gives each JSON error response the examples of the codes sent with its status: one as
/// `example`, several (409) as named `examples`.
fn add_error_examples(doc: &mut Value) {
    let codes = error_codes(doc);
    let Some(Value::Mapping(paths)) = doc.get_mut("paths") else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let path = path.as_str().unwrap_or_default();
        let Value::Mapping(operations) = item else {
            continue;
        };
        for (_, operation) in operations.iter_mut() {
            let op = Operation {
                path,
                has_body: operation.get("requestBody").is_some(),
            };
            let Some(Value::Mapping(responses)) = operation.get_mut("responses") else {
                continue;
            };
            // Every operation shares `ApiError`, but a bodiless one never reads a body to time
            // out on.
            if !op.has_body {
                responses.remove("408");
            }
            for (status, response) in responses.iter_mut() {
                let status = status.as_str().and_then(|s| s.parse::<u16>().ok());
                let sent: Vec<ErrorCode> = codes
                    .iter()
                    .copied()
                    .filter(|c| Some(c.status().as_u16()) == status && sent_by(*c, &op))
                    .collect();
                let Some(Value::Mapping(content)) = response.get_mut("content") else {
                    continue;
                };
                for (media, body) in content.iter_mut() {
                    let json = media
                        .as_str()
                        .is_some_and(|m| m.starts_with("application/json"));
                    let Value::Mapping(body) = body else { continue };
                    match sent.as_slice() {
                        _ if !json => {}
                        [] => {}
                        [code] => {
                            body.insert("example".into(), example_body(*code, &op));
                        }
                        several => {
                            let mut examples = Mapping::new();
                            for code in several {
                                let name = error_code_name(*code);
                                let mut example = Mapping::new();
                                example.insert("summary".into(), name.clone().into());
                                example.insert("value".into(), example_body(*code, &op));
                                examples.insert(name.into(), example.into());
                            }
                            body.insert("examples".into(), examples.into());
                        }
                    }
                }
            }
        }
    }
}

fn error_code_name(code: ErrorCode) -> String {
    match poem_openapi::types::ToJSON::to_json(&code) {
        Some(serde_json::Value::String(name)) => name,
        other => unreachable!("an enum renders as a string, not {other:?}"),
    }
}

/// Names the serving server: its public URL in `servers`, and in place of the default one in
/// the examples.
fn serve_from(doc: &mut Value, public_url: &str) {
    let mut server = Mapping::new();
    server.insert("url".into(), public_url.into());
    server.insert(
        "description".into(),
        "This server (`server.public_url`).".into(),
    );
    if let Value::Mapping(root) = doc {
        root.insert("servers".into(), Value::Sequence(vec![server.into()]));
    }
    rewrite_examples(doc, &example_public_url(), public_url, false);
}

fn rewrite_examples(value: &mut Value, from: &str, to: &str, in_example: bool) {
    match value {
        Value::String(s) if in_example => {
            if let Some(rest) = s.strip_prefix(from) {
                *s = format!("{to}{rest}");
            }
        }
        Value::Sequence(items) => {
            for item in items {
                rewrite_examples(item, from, to, in_example);
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                let example = in_example || matches!(key.as_str(), Some("example" | "examples"));
                rewrite_examples(item, from, to, example);
            }
        }
        _ => {}
    }
}
