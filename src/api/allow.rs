//! The `Allow` header of a 405 (RFC 9110 §15.5.6, CONTRACT §3): the methods the path's route
//! answers, read from the generated OpenAPI document, so it cannot drift from the router.

use std::sync::LazyLock;

use poem::http::HeaderValue;
use serde_json::Value;

/// Routes served beside the OpenAPI operations, with their one method.
const UNDOCUMENTED_ROUTES: [&str; 3] = ["/", "/openapi.json", "/docs"];

/// A path template's segments (`{id}` matches any one segment) and its `Allow` value.
struct Route {
    segments: Vec<Option<String>>,
    allow: HeaderValue,
}

static ROUTES: LazyLock<Vec<Route>> = LazyLock::new(|| {
    let doc: Value = serde_json::from_str(&super::spec_json()).expect("the spec is JSON");
    let mut routes: Vec<Route> = doc["paths"]
        .as_object()
        .expect("the spec has paths")
        .iter()
        .map(|(template, operations)| {
            let methods: Vec<String> = operations
                .as_object()
                .map(|ops| ops.keys().map(|m| m.to_ascii_uppercase()).collect())
                .unwrap_or_default();
            route(template, methods)
        })
        .collect();
    routes.extend(
        UNDOCUMENTED_ROUTES
            .iter()
            .map(|path| route(path, vec!["GET".to_owned()])),
    );
    routes
});

fn route(template: &str, mut methods: Vec<String>) -> Route {
    // poem answers HEAD wherever it answers GET.
    if methods.iter().any(|m| m == "GET") {
        methods.push("HEAD".to_owned());
    }
    methods.sort();
    let segments = template
        .split('/')
        .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
        .collect();
    Route {
        segments,
        allow: HeaderValue::from_str(&methods.join(", ")).expect("method names are ASCII"),
    }
}

/// The `Allow` value for a request path, when a route has that shape.
pub fn allowed_methods(path: &str) -> Option<HeaderValue> {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let segments: Vec<&str> = path.split('/').collect();
    ROUTES
        .iter()
        .find(|route| {
            route.segments.len() == segments.len()
                && route
                    .segments
                    .iter()
                    .zip(&segments)
                    .all(|(want, got)| want.as_deref().is_none_or(|w| w == *got))
        })
        .map(|route| route.allow.clone())
}

#[cfg(test)]
mod tests {
    use super::allowed_methods;

    fn allow(path: &str) -> Option<String> {
        allowed_methods(path).map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn each_route_lists_its_own_methods() {
        assert_eq!(allow("/v1/oauth-apps").as_deref(), Some("GET, HEAD, POST"));
        assert_eq!(
            allow("/v1/oauth-apps/oa_aaaaaaaaaaaaaaaaaaaa").as_deref(),
            Some("DELETE, GET, HEAD, PATCH")
        );
        assert_eq!(allow("/v1/accounts/x/refresh").as_deref(), Some("POST"));
        assert_eq!(allow("/healthz").as_deref(), Some("GET, HEAD"));
        assert_eq!(allow("/openapi.json").as_deref(), Some("GET, HEAD"));
        assert_eq!(allow("/nope"), None);
        assert_eq!(allow("/v1/accounts/x/refresh/more"), None);
    }
}
