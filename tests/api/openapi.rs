//! CONTRACT §3: the OpenAPI spec is generated from the typed endpoints, served at
//! `/openapi.json` with Swagger UI at `/docs`, and kept identical to `openapi/dravo.json`.

use crate::support;

use serde_json::{Value, json};
use support::{app_body, spawn_app};

const REGENERATE: &str = "cargo run -- openapi > openapi/dravo.json";

fn spec() -> Value {
    serde_json::from_str(&dravo::api::spec_json()).expect("spec_json is JSON")
}

fn checked_in() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/dravo.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; generate it with `{REGENERATE}`",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("openapi/dravo.json is not JSON ({e}); regenerate with `{REGENERATE}`")
    })
}

/// Every (path, method, operation) under `/v1`.
/// The provider's callback: the browser lands there, so the signed state is its only proof.
const CALLBACK_PATH: &str = "/v1/oauth/{provider}/callback";

/// Every dashboard operation under /v1 (all but the provider callback).
fn v1_operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") || path == CALLBACK_PATH {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            out.push((path.clone(), method.clone(), op.clone()));
        }
    }
    out
}

/// The schema `$ref` of a response's JSON content, whatever the exact media type string.
fn json_schema_ref(response: &Value) -> Option<String> {
    let content = response["content"].as_object()?;
    content
        .iter()
        .find(|(media, _)| media.starts_with("application/json"))
        .and_then(|(_, c)| c["schema"]["$ref"].as_str().map(str::to_owned))
}

fn header_names(response: &Value) -> Vec<String> {
    response["headers"]
        .as_object()
        .map(|h| h.keys().map(|k| k.to_ascii_lowercase()).collect())
        .unwrap_or_default()
}

#[test]
fn checked_in_spec_equals_the_generated_spec() {
    assert!(
        checked_in() == spec(),
        "openapi/dravo.json differs from the spec the code generates; regenerate it with `{REGENERATE}`"
    );
}

#[tokio::test]
async fn served_spec_equals_the_generated_spec() {
    let app = spawn_app().await;
    let resp = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/json"), "{ct}");
    let served: Value = resp.json().await.unwrap();
    let expected: Value =
        serde_json::from_str(&dravo::api::served_spec_json(app.dravo.public_url())).unwrap();
    assert!(
        served == expected,
        "GET /openapi.json differs from served_spec_json()"
    );
    // Apart from naming the server, it is the committed document.
    let mut unnamed = served.clone();
    unnamed["servers"] = json!([]);
    let named = unnamed.to_string();
    let named = named.replace(&app.base_url, &dravo::wire::views::example_public_url());
    assert_eq!(serde_json::from_str::<Value>(&named).unwrap(), spec());
    app.stop().await;
}

#[tokio::test]
async fn docs_serve_swagger_ui_html() {
    let app = spawn_app().await;
    let resp = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/html"), "{ct}");
    let html = resp.text().await.unwrap();
    assert!(html.to_lowercase().contains("swagger"), "not Swagger UI");
    assert!(
        html.contains("openapi.json") || html.contains("spec"),
        "UI has no spec"
    );
    app.stop().await;
}

#[test]
fn spec_is_openapi_3() {
    let spec = spec();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(spec["info"]["title"], "Dravo");
}

#[test]
fn spec_declares_the_seed_paths() {
    let spec = spec();
    let paths = &spec["paths"];
    for (path, method) in [
        ("/v1/oauth-apps", "get"),
        ("/v1/oauth-apps", "post"),
        ("/v1/oauth-apps/{id}", "get"),
        ("/v1/oauth-apps/{id}", "delete"),
        ("/healthz", "get"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{} {path} is missing from the spec",
            method.to_uppercase()
        );
    }
}

#[test]
fn spec_declares_a_bearer_jwt_security_scheme() {
    let spec = spec();
    let schemes = spec["components"]["securitySchemes"].as_object().unwrap();
    let bearer: Vec<&String> = schemes
        .iter()
        .filter(|(_, s)| s["type"] == "http" && s["scheme"] == "bearer")
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        bearer.len(),
        1,
        "exactly one http bearer scheme: {schemes:?}"
    );
    assert_eq!(schemes[bearer[0]]["bearerFormat"], "JWT");
}

#[test]
fn every_v1_operation_requires_the_bearer_scheme() {
    let spec = spec();
    let schemes = spec["components"]["securitySchemes"].as_object().unwrap();
    let bearer = schemes
        .iter()
        .find(|(_, s)| s["type"] == "http" && s["scheme"] == "bearer")
        .map(|(name, _)| name.clone())
        .unwrap();
    let ops = v1_operations(&spec);
    assert!(ops.len() >= 4, "{ops:?}");
    for (path, method, op) in ops {
        let security = op["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} declares no security"));
        assert!(
            security.iter().all(|req| req.get(&bearer).is_some()),
            "{method} {path} security {security:?} does not require {bearer}"
        );
        assert!(!security.is_empty(), "{method} {path}");
    }
}

#[test]
fn callback_needs_no_auth_and_declares_redirect_and_html_pages() {
    let spec = spec();
    let op = &spec["paths"][CALLBACK_PATH]["get"];
    assert!(
        op["security"].as_array().is_none_or(|s| s.is_empty()),
        "{op}"
    );
    assert!(
        header_names(&op["responses"]["302"]).contains(&"location".to_owned()),
        "{op}"
    );
    for status in ["200", "400"] {
        assert!(
            op["responses"][status]["content"]["text/html; charset=utf-8"].is_object()
                || op["responses"][status]["content"]["text/html"].is_object(),
            "{status}: {op}"
        );
    }
}

#[test]
fn healthz_needs_no_auth() {
    let spec = spec();
    let op = &spec["paths"]["/healthz"]["get"];
    assert!(
        op["security"].as_array().is_none_or(|s| s.is_empty()),
        "{op}"
    );
}

#[test]
fn every_v1_operation_declares_400_401_500_with_the_error_schema() {
    let spec = spec();
    for (path, method, op) in v1_operations(&spec) {
        for status in ["400", "401", "500"] {
            let response = &op["responses"][status];
            assert!(
                response.is_object(),
                "{method} {path} does not declare {status}"
            );
            assert_eq!(
                json_schema_ref(response).as_deref(),
                Some("#/components/schemas/ErrorBody"),
                "{method} {path} {status}"
            );
        }
        assert!(
            header_names(&op["responses"]["401"]).contains(&"www-authenticate".to_owned()),
            "{method} {path} 401 does not declare WWW-Authenticate"
        );
    }
}

#[test]
fn error_schema_is_the_error_envelope_with_every_contract_code() {
    let spec = spec();
    let schemas = &spec["components"]["schemas"];
    let body = &schemas["ErrorBody"];
    assert_eq!(body["required"], json!(["error"]));
    let detail_ref = body["properties"]["error"]["$ref"].as_str().unwrap();
    let detail = &schemas[detail_ref.rsplit('/').next().unwrap()];
    let mut required: Vec<&str> = detail["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort();
    assert_eq!(required, ["code", "message"]);
    // Exactly the codes the server sends: `tests/api/error_codes.rs` provokes each one.
    assert_eq!(
        schemas["ErrorCode"]["enum"],
        json!([
            "invalid_request",
            "unauthorized",
            "not_found",
            "method_not_allowed",
            "conflict",
            "no_default_app",
            "needs_reauth",
            "app_in_use",
            "request_timeout",
            "payload_too_large",
            "unsupported_media_type",
            "rate_limited",
            "internal",
            "provider_error",
            "not_ready",
            "refresh_backoff",
        ])
    );
}

#[test]
fn exactly_the_operations_that_refresh_declare_503_refresh_backoff_with_retry_after() {
    let spec = spec();
    let refreshing = [
        ("/v1/accounts/{id}/access-token", "get"),
        ("/v1/accounts/{id}/refresh", "post"),
    ];
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let declared = &op["responses"]["503"];
            if !refreshing.contains(&(path.as_str(), method.as_str())) {
                if path != "/readyz" {
                    assert!(declared.is_null(), "{method} {path} declares 503");
                }
                continue;
            }
            assert!(
                declared["headers"]["RETRY-AFTER"].is_object(),
                "{method} {path}: {declared}"
            );
            let example = &declared["content"]["application/json; charset=utf-8"]["example"];
            assert_eq!(example["error"]["code"], "refresh_backoff", "{declared}");
            assert!(
                example["error"]["refresh"]["next_attempt_at"].is_string(),
                "{declared}"
            );
        }
    }
}

#[test]
fn exactly_the_rate_limited_operations_declare_429_with_retry_after() {
    // CONTRACT §8: start and app creation per tenant, the callback per client IP, and the
    // token reads (access-token and refresh) per tenant; app checks share the creation bucket
    // (they call the provider); changes by id per tenant. No other operation can answer 429.
    let limited = [
        ("/v1/oauth/{provider}/start", "get"),
        (CALLBACK_PATH, "get"),
        ("/v1/oauth-apps", "post"),
        ("/v1/oauth-apps/{id}/check", "post"),
        ("/v1/accounts/{id}/access-token", "get"),
        ("/v1/accounts/{id}/refresh", "post"),
        ("/v1/oauth-apps/{id}", "patch"),
        ("/v1/oauth-apps/{id}", "delete"),
        ("/v1/accounts/{id}", "delete"),
        ("/v1/accounts/{id}/confirm", "post"),
    ];
    let spec = spec();
    for (path, method, op) in all_operations(&spec) {
        let response = &op["responses"]["429"];
        if !limited.contains(&(path.as_str(), method.as_str())) {
            assert!(response.is_null(), "{method} {path} declares 429");
            continue;
        }
        assert_eq!(
            json_schema_ref(response).as_deref(),
            Some("#/components/schemas/ErrorBody"),
            "{method} {path} 429"
        );
        assert!(
            header_names(response).contains(&"retry-after".to_owned()),
            "{method} {path} 429 does not declare Retry-After: {response}"
        );
        let example = &error_examples(response)[0];
        assert_eq!(example["error"]["code"], "rate_limited", "{method} {path}");
        // Statuses stay in order, 429 among the others.
        let statuses: Vec<u16> = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(|s| s.parse().unwrap())
            .collect();
        assert!(statuses.is_sorted(), "{method} {path}: {statuses:?}");
    }
}

#[test]
fn create_declares_201_with_location_and_409_413_415() {
    let spec = spec();
    let op = &spec["paths"]["/v1/oauth-apps"]["post"];
    let created = &op["responses"]["201"];
    assert_eq!(
        json_schema_ref(created).as_deref(),
        Some("#/components/schemas/OAuthApp")
    );
    assert!(
        header_names(created).contains(&"location".to_owned()),
        "201 has no Location header: {created}"
    );
    for status in ["409", "413", "415"] {
        assert_eq!(
            json_schema_ref(&op["responses"][status]).as_deref(),
            Some("#/components/schemas/ErrorBody"),
            "POST /v1/oauth-apps {status}"
        );
    }
    assert_eq!(op["requestBody"]["required"], true);
    let body_ref = op["requestBody"]["content"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(m, _)| m.starts_with("application/json"))
        .map(|(_, c)| c["schema"]["$ref"].clone())
        .expect("JSON request body");
    assert_eq!(body_ref, "#/components/schemas/CreateOAuthApp");
}

#[test]
fn get_and_delete_declare_404() {
    let spec = spec();
    let item = &spec["paths"]["/v1/oauth-apps/{id}"];
    for method in ["get", "delete"] {
        assert!(item[method]["responses"]["404"].is_object(), "{method}");
    }
    assert!(item["delete"]["responses"]["204"].is_object());
    let id = item["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "id")
        .expect("id parameter");
    assert_eq!(id["in"], "path");
    assert_eq!(id["schema"]["pattern"], "^oa_[a-z2-7]{20}$");
}

#[test]
fn check_declares_200_with_the_check_and_404_and_takes_no_body() {
    let spec = spec();
    let op = &spec["paths"]["/v1/oauth-apps/{id}/check"]["post"];
    assert_eq!(op["operationId"], "checkOAuthApp");
    assert_eq!(
        json_schema_ref(&op["responses"]["200"]).as_deref(),
        Some("#/components/schemas/OAuthAppCheck")
    );
    assert!(op["responses"]["404"].is_object(), "{op}");
    assert!(op.get("requestBody").is_none(), "{op}");
    let check = &spec["components"]["schemas"]["OAuthAppCheck"];
    let mut required: Vec<&str> = check["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort();
    assert_eq!(required, ["checked_at", "checks", "outcome", "source"]);
    assert_eq!(
        check["properties"]["checks"]["items"]["$ref"],
        "#/components/schemas/OAuthAppCheckResult"
    );
}

/// Every provider the registry names, in its order (the seed's five first).
fn registered_providers() -> Value {
    let names: Vec<&str> = dravo::providers::ids().map(|p| p.as_str()).collect();
    assert_eq!(
        names[..5],
        ["instagram", "facebook", "x", "linkedin", "tiktok"]
    );
    json!(names)
}

#[test]
fn list_declares_the_provider_filter_with_every_registered_provider() {
    let spec = spec();
    let op = &spec["paths"]["/v1/oauth-apps"]["get"];
    let provider = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "provider")
        .expect("provider parameter");
    assert_eq!(provider["in"], "query");
    assert_eq!(provider["required"], false);
    assert_eq!(provider["schema"]["enum"], registered_providers());
    assert_eq!(
        op["responses"]["200"]["content"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()["schema"]["items"]["$ref"],
        "#/components/schemas/OAuthApp"
    );
}

#[test]
fn oauth_app_schema_has_the_contract_fields_and_no_secret() {
    let spec = spec();
    let schema = &spec["components"]["schemas"]["OAuthApp"];
    let mut props: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    props.sort();
    assert_eq!(
        props,
        [
            "client_id",
            "created_at",
            "credentials_error",
            "id",
            "last_check",
            "name",
            "provider",
            "redirect_uri",
            "scopes",
            "servers",
            "updated_at",
            "user_agent",
            "warnings",
            "website"
        ]
    );
    assert!(!schema.to_string().contains("client_secret"));
    // Null, or the check's own schema (OpenAPI 3.0 has no `nullable` beside a `$ref`).
    assert_eq!(
        schema["properties"]["last_check"]["oneOf"],
        json!([{"$ref": "#/components/schemas/OAuthAppCheck"}])
    );
}

#[test]
fn oauth_app_example_carries_the_seed_values_with_a_real_id_and_url() {
    let spec = spec();
    let example = &spec["components"]["schemas"]["OAuthApp"]["example"];
    let id = example["id"].as_str().unwrap();
    assert!(dravo::domain::AppId::parse(id).is_ok(), "{id}");
    assert_eq!(example["provider"], "x");
    assert_eq!(example["name"], "My X App");
    // What a fresh `dravo serve` answers; the served spec names its own public URL.
    assert_eq!(
        example["redirect_uri"],
        "http://127.0.0.1:8080/v1/oauth/x/callback"
    );
    assert_eq!(
        example["scopes"],
        json!(["tweet.write", "media.write", "users.read", "offline.access"])
    );
}

#[test]
fn create_body_schema_requires_provider_and_name_and_allows_no_extras() {
    let spec = spec();
    let schema = &spec["components"]["schemas"]["CreateOAuthApp"];
    let mut required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort();
    // client_id and client_secret are required for every provider but mastodon (which refuses
    // them): the service says so, the schema cannot.
    assert_eq!(required, ["name", "provider"]);
    let mut props: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    props.sort();
    assert_eq!(
        props,
        [
            "client_id",
            "client_secret",
            "name",
            "provider",
            "scopes",
            "user_agent",
            "website"
        ]
    );
    // poem-openapi 5 emits no `additionalProperties: false` for `deny_unknown_fields` (its
    // MetaSchema cannot express `false`); the spec must at least not advertise extras.
    match schema.get("additionalProperties") {
        None | Some(Value::Bool(false)) => {}
        Some(other) => panic!("CreateOAuthApp allows extra properties: {other}"),
    }
}

#[test]
fn create_body_schema_documents_the_limits() {
    let spec = spec();
    let props = &spec["components"]["schemas"]["CreateOAuthApp"]["properties"];
    assert_eq!(props["name"]["maxLength"], 120);
    assert_eq!(props["name"]["minLength"], 1);
    assert_eq!(props["client_id"]["maxLength"], 512);
    assert_eq!(props["client_secret"]["maxLength"], 2048);
    assert_eq!(props["client_secret"]["writeOnly"], true);
    assert_eq!(props["provider"]["enum"], registered_providers());
}

#[test]
fn create_body_example_is_the_seed_request_under_its_own_name() {
    let spec = spec();
    assert_eq!(
        spec["components"]["schemas"]["CreateOAuthApp"]["example"],
        json!({
            "provider": "x",
            "name": "Swagger example app",
            "client_id": "…",
            "client_secret": "…",
        })
    );
}

#[tokio::test]
async fn every_v1_operation_in_the_spec_is_routed_and_guarded() {
    // The spec and the router agree: each declared operation exists (not 404/405) and answers
    // 401 without a token.
    let app = spawn_app().await;
    for (path, method, _) in v1_operations(&spec()) {
        let id = if path.starts_with("/v1/accounts") {
            "acc_abcdefghijklmnopqrst"
        } else {
            "oa_abcdefghijklmnopqrst"
        };
        let url = app.url(&path.replace("{id}", id).replace("{provider}", "x"));
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = app.http.request(method.clone(), url);
        if method == reqwest::Method::POST {
            req = req.json(&app_body("x", "Spec"));
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{method} {path}");
    }
    app.stop().await;
}

/// The app names README's quick start creates (`--name "…"` and `"name":"…"`).
fn quick_start_app_names() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let re = regex::Regex::new(r#"(?:--name "([^"]+)"|"name":\s*"([^"]+)")"#).unwrap();
    re.captures_iter(&readme)
        .filter_map(|c| c.get(1).or(c.get(2)))
        .map(|m| m.as_str().to_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn create_body_example_is_accepted_after_the_quick_start() {
    // The quick start's apps exist, as they would for someone who followed it and then
    // opened /docs: the example's first Execute still creates an app (no 409).
    let app = spawn_app().await;
    let names = quick_start_app_names();
    assert!(!names.is_empty(), "README's quick start creates no app?");
    for (i, name) in names.iter().enumerate() {
        for provider in ["x", "linkedin"] {
            let mut body = app_body(provider, name);
            body["client_id"] = json!(format!("quick-start-{i}"));
            app.create_ok("alice", &body).await;
        }
    }
    let example = spec()["components"]["schemas"]["CreateOAuthApp"]["example"].clone();
    assert!(example.is_object(), "CreateOAuthApp has no example");
    let resp = app.create_app("alice", &example).await;
    assert_eq!(
        resp.status().as_u16(),
        201,
        "{}",
        resp.text().await.unwrap()
    );
    app.stop().await;
}

// ------------------------------------------------ what /docs shows and generated clients read

/// Every operation in the spec: (path, method, operation).
fn all_operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((path.clone(), method.clone(), op.clone()));
        }
    }
    out
}

/// The JSON media type object of a response, if it has one.
fn json_media(response: &Value) -> Option<&Value> {
    response["content"]
        .as_object()?
        .iter()
        .find(|(media, _)| media.starts_with("application/json"))
        .map(|(_, m)| m)
}

/// The example bodies a JSON error response shows: its `example`, or each of its `examples`.
fn error_examples(response: &Value) -> Vec<Value> {
    let Some(media) = json_media(response) else {
        return vec![];
    };
    if !media["example"].is_null() {
        return vec![media["example"].clone()];
    }
    media["examples"]
        .as_object()
        .map(|e| e.values().map(|x| x["value"].clone()).collect())
        .unwrap_or_default()
}

#[test]
fn optional_parameters_have_no_example_so_swagger_ui_prefills_nothing() {
    let spec = spec();
    let mut optional = 0;
    for (path, method, op) in all_operations(&spec) {
        for param in op["parameters"].as_array().into_iter().flatten() {
            if param["required"] == true {
                continue;
            }
            optional += 1;
            let name = &param["name"];
            assert!(
                param.get("example").is_none() && param["schema"].get("example").is_none(),
                "{method} {path}: optional parameter {name} has an example: {param}"
            );
        }
    }
    assert!(optional >= 3, "the provider filters and start's options");
}

#[test]
fn create_example_name_differs_from_every_quick_start_app() {
    let example = &spec()["components"]["schemas"]["CreateOAuthApp"]["example"];
    let name = example["name"].as_str().unwrap();
    let names = quick_start_app_names();
    assert!(!names.iter().any(|n| n == name), "{name} is in {names:?}");
}

#[test]
fn each_error_status_shows_examples_of_its_own_codes() {
    use poem_openapi::types::ParseFromJSON;
    let spec = spec();
    for (path, method, op) in all_operations(&spec) {
        for (status, response) in op["responses"].as_object().unwrap() {
            let Ok(status) = status.parse::<u16>() else {
                continue;
            };
            if status < 400 || json_media(response).is_none() {
                continue;
            }
            let examples = error_examples(response);
            assert!(
                !examples.is_empty(),
                "{method} {path} {status} shows no example"
            );
            for example in examples {
                let code = dravo::api::error::ErrorCode::parse_from_json(Some(
                    example["error"]["code"].clone(),
                ))
                .unwrap_or_else(|_| panic!("{method} {path} {status}: {example}"));
                assert_eq!(
                    code.status().as_u16(),
                    status,
                    "{method} {path} {status} shows {example}"
                );
                let message = example["error"]["message"].as_str().unwrap_or_default();
                assert!(!message.is_empty(), "{method} {path} {status}");
            }
            let description = response["description"].as_str().unwrap_or_default();
            assert!(
                !description.is_empty(),
                "{method} {path} {status} has no description"
            );
        }
    }
}

#[test]
fn error_statuses_have_distinct_descriptions_and_examples() {
    let spec = spec();
    let op = &spec["paths"]["/v1/oauth-apps"]["post"];
    let mut descriptions = std::collections::BTreeSet::new();
    let mut examples = std::collections::BTreeSet::new();
    let mut statuses = 0;
    for (status, response) in op["responses"].as_object().unwrap() {
        if !status.starts_with('4') && !status.starts_with('5') {
            continue;
        }
        statuses += 1;
        descriptions.insert(response["description"].to_string());
        examples.insert(json!(error_examples(response)).to_string());
    }
    assert_eq!(descriptions.len(), statuses, "{op}");
    assert_eq!(examples.len(), statuses, "{op}");
    let unauthorized = error_examples(&op["responses"]["401"]);
    assert_eq!(unauthorized[0]["error"]["code"], "unauthorized");
}

#[test]
fn healthz_declares_only_200_and_500() {
    let spec = spec();
    let responses = spec["paths"]["/healthz"]["get"]["responses"]
        .as_object()
        .unwrap();
    let statuses: Vec<&String> = responses.keys().collect();
    assert_eq!(statuses, ["200", "500"]);
    assert_eq!(
        error_examples(&responses["500"]),
        [json!({"error": {"code": "internal", "message": "internal server error"}})]
    );
}

#[test]
fn every_success_response_has_a_description() {
    let spec = spec();
    for (path, method, op) in all_operations(&spec) {
        for (status, response) in op["responses"].as_object().unwrap() {
            if status.starts_with('2') || status.starts_with('3') {
                let description = response["description"].as_str().unwrap_or_default();
                assert!(
                    !description.trim().is_empty(),
                    "{method} {path} {status} has no description"
                );
            }
        }
    }
}

#[tokio::test]
async fn health_example_is_what_the_server_answers() {
    let schema = &spec()["components"]["schemas"]["Health"];
    assert_eq!(schema["example"], json!({"status": "ok"}));
    let app = spawn_app().await;
    let body: Value = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, schema["example"]);
    app.stop().await;
}

/// Every string under an `example`/`examples` key, anywhere in the document.
fn example_strings(value: &Value, in_example: bool, out: &mut Vec<String>) {
    match value {
        Value::String(s) if in_example => out.push(s.clone()),
        Value::Array(items) => items
            .iter()
            .for_each(|v| example_strings(v, in_example, out)),
        Value::Object(map) => {
            for (key, v) in map {
                let example = in_example || key == "example" || key == "examples";
                example_strings(v, example, out);
            }
        }
        _ => {}
    }
}

#[test]
fn example_ids_and_urls_look_like_the_servers() {
    let spec = spec();
    let mut strings = Vec::new();
    example_strings(&spec, false, &mut strings);
    let id = regex::Regex::new(r"\b(?:oa|acc)_\w+").unwrap();
    let mut ids = 0;
    for s in &strings {
        for m in id.find_iter(s) {
            ids += 1;
            let m = m.as_str();
            let ok = if m.starts_with("oa_") {
                dravo::domain::AppId::parse(m).is_ok()
            } else {
                dravo::domain::AccountId::parse(m).is_ok()
            };
            assert!(ok, "example id {m} (in {s:?}) is not of the server's form");
        }
        assert!(!s.contains("api.dravo.dev"), "{s}");
    }
    assert!(ids >= 3, "{strings:?}");
    // The committed document names no server: it must not depend on the machine.
    assert_eq!(spec["servers"], json!([]));
}

#[tokio::test]
async fn served_spec_names_the_configured_public_url() {
    let app = support::spawn_app_with(|c| {
        c.server.public_url = Some("https://dravo.example.com".parse().unwrap());
    })
    .await;
    let served: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served["servers"][0]["url"], "https://dravo.example.com");
    assert_eq!(
        served["components"]["schemas"]["OAuthApp"]["example"]["redirect_uri"],
        "https://dravo.example.com/v1/oauth/x/callback"
    );
    // Swagger UI shows the same document.
    let html = app
        .http
        .get(app.url("/docs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("\"url\": \"https://dravo.example.com\""),
        "/docs embeds another document"
    );
    assert!(
        html.contains("Swagger example app"),
        "/docs embeds another document"
    );
    app.stop().await;
}

#[test]
fn fields_that_can_be_null_are_nullable() {
    let spec = spec();
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    let mut checked = 0;
    for name in ["OAuthApp", "Account"] {
        let schema = &schemas[name];
        let required: Vec<&Value> = schema["required"].as_array().unwrap().iter().collect();
        for (field, prop) in schema["properties"].as_object().unwrap() {
            // Every field of a response object is always present; the optional ones are null.
            if !required.contains(&&json!(field)) {
                checked += 1;
                assert_eq!(prop["nullable"], true, "{name}.{field}");
            } else {
                assert!(prop.get("nullable").is_none(), "{name}.{field}");
            }
        }
    }
    assert_eq!(
        checked, 13,
        "client_id, credentials_error, last_check, user_agent, website; oauth_app_id, username, display_name, status_reason, expires_at, reauth_by, parent_id, tasks"
    );
}

#[test]
fn timestamps_are_date_time() {
    let spec = spec();
    let mut seen = 0;
    for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
        for (field, prop) in schema["properties"].as_object().into_iter().flatten() {
            if field.ends_with("_at") {
                seen += 1;
                assert_eq!(prop["format"], "date-time", "{name}.{field}");
            }
        }
    }
    assert_eq!(
        seen, 10,
        "OAuthApp's created_at and updated_at, OAuthAppCheck.checked_at, Account's three, AccessToken.expires_at, AccountEvent.created_at, RefreshErrorDetail.next_attempt_at, RegisteredServer.registered_at"
    );
    let reauth_by = &spec["components"]["schemas"]["Account"]["properties"]["reauth_by"];
    assert_eq!(reauth_by["format"], "date-time", "Account.reauth_by");
}

#[test]
fn ids_carry_the_servers_pattern() {
    use dravo::domain::{AccountId, AppId};
    let spec = spec();
    let schemas = &spec["components"]["schemas"];
    assert_eq!(
        schemas["OAuthApp"]["properties"]["id"]["pattern"],
        AppId::PATTERN
    );
    assert_eq!(
        schemas["Account"]["properties"]["id"]["pattern"],
        AccountId::PATTERN
    );
    assert_eq!(
        schemas["Account"]["properties"]["oauth_app_id"]["pattern"],
        AppId::PATTERN
    );
    for (path, method, op) in all_operations(&spec) {
        for param in op["parameters"].as_array().into_iter().flatten() {
            let expected = match param["name"].as_str().unwrap() {
                "oauth_app_id" => AppId::PATTERN,
                "id" if path.starts_with("/v1/accounts") => AccountId::PATTERN,
                "id" => AppId::PATTERN,
                _ => continue,
            };
            assert_eq!(param["schema"]["pattern"], expected, "{method} {path}");
        }
    }
}

#[test]
fn callback_parameters_are_described() {
    let spec = spec();
    let params = spec["paths"][CALLBACK_PATH]["get"]["parameters"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["provider", "code", "state", "error", "error_description"]
    );
    for p in params {
        let description = p["description"].as_str().unwrap_or_default();
        assert!(!description.is_empty(), "{} has no description", p["name"]);
    }
}

#[test]
fn tags_are_in_flow_order() {
    let spec = spec();
    let tags: Vec<&str> = spec["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["OAuth apps", "Connect", "Accounts", "Health"]);
    // Operations appear in the same order, so Swagger UI reads top to bottom as the flow.
    // (Read in document order: serde_json's map sorts keys, serde_yaml's keeps them.)
    let ordered: serde_yaml::Value = serde_yaml::from_str(&dravo::api::spec_json()).unwrap();
    let mut last = 0;
    for (path, item) in ordered["paths"].as_mapping().unwrap() {
        for (method, op) in item.as_mapping().unwrap() {
            let tag = op["tags"][0].as_str().unwrap();
            let rank = tags.iter().position(|t| *t == tag).unwrap();
            assert!(
                rank >= last,
                "{method:?} {path:?} ({tag}) comes after a later tag"
            );
            last = rank;
        }
    }
}

#[test]
fn no_property_wraps_a_reference_in_all_of() {
    // poem-openapi wraps a `$ref` field that has a doc comment in an `allOf`, which client
    // generators reject ("Cannot take allOf a non-object").
    let spec = spec();
    for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
        for (field, prop) in schema["properties"].as_object().into_iter().flatten() {
            assert!(prop.get("allOf").is_none(), "{name}.{field}: {prop}");
        }
    }
}
