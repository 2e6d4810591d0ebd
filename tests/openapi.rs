//! CONTRACT §3: the OpenAPI spec is generated from the typed endpoints, served at
//! `/openapi.json` with Swagger UI at `/docs`, and kept identical to `openapi/dravo.json`.

mod support;

use serde_json::{Value, json};
use support::{app_body, spawn_app};

const REGENERATE: &str = "cargo run -q -- openapi > openapi/dravo.json";

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
    assert!(
        served == spec(),
        "GET /openapi.json differs from spec_json()"
    );
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
    let codes = schemas["ErrorCode"]["enum"].as_array().unwrap();
    for code in [
        "invalid_request",
        "unauthorized",
        "not_found",
        "method_not_allowed",
        "conflict",
        "no_default_app",
        "payload_too_large",
        "unsupported_media_type",
        "rate_limited",
        "internal",
        "provider_error",
    ] {
        assert!(codes.contains(&json!(code)), "ErrorCode lacks {code}");
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
fn list_declares_the_provider_filter_with_the_five_providers() {
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
    assert_eq!(
        provider["schema"]["enum"],
        json!(["instagram", "facebook", "x", "linkedin", "tiktok"])
    );
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
            "id",
            "name",
            "provider",
            "redirect_uri",
            "scopes"
        ]
    );
    assert!(!schema.to_string().contains("client_secret"));
}

#[test]
fn oauth_app_example_carries_the_seed_values() {
    let spec = spec();
    let example = &spec["components"]["schemas"]["OAuthApp"]["example"];
    assert_eq!(example["id"], "oa_1");
    assert_eq!(example["provider"], "x");
    assert_eq!(example["name"], "My X App");
    assert_eq!(
        example["redirect_uri"],
        "https://api.dravo.dev/v1/oauth/x/callback"
    );
    assert_eq!(
        example["scopes"],
        json!(["tweet.write", "media.write", "users.read", "offline.access"])
    );
}

#[test]
fn create_body_schema_requires_the_four_fields_and_allows_no_extras() {
    let spec = spec();
    let schema = &spec["components"]["schemas"]["CreateOAuthApp"];
    let mut required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort();
    assert_eq!(required, ["client_id", "client_secret", "name", "provider"]);
    let mut props: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    props.sort();
    assert_eq!(
        props,
        ["client_id", "client_secret", "name", "provider", "scopes"]
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
    assert_eq!(
        props["provider"]["enum"],
        json!(["instagram", "facebook", "x", "linkedin", "tiktok"])
    );
}

#[test]
fn create_body_example_is_the_seed_request() {
    let spec = spec();
    assert_eq!(
        spec["components"]["schemas"]["CreateOAuthApp"]["example"],
        json!({
            "provider": "x",
            "name": "My X App",
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

#[tokio::test]
async fn create_body_example_is_accepted_by_the_server() {
    let app = spawn_app().await;
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
