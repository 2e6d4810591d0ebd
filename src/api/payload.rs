//! `JsonBody<T>`: a JSON response documented as `T` but sent from bytes rendered earlier.
//! Hot reads whose result is cached (the app list) render their body once per cached value
//! instead of once per request.

use std::marker::PhantomData;

use bytes::Bytes;
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::{ToJSON, Type};

const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// A 200 JSON response whose body is already rendered from a `T`.
pub struct JsonBody<T> {
    bytes: Bytes,
    _shape: PhantomData<fn() -> T>,
}

impl<T: ToJSON> JsonBody<T> {
    /// Renders `value` exactly as `Json<T>` would.
    pub fn render(value: &T) -> Bytes {
        let json = value.to_json().unwrap_or(serde_json::Value::Null);
        Bytes::from(serde_json::to_vec(&json).expect("a JSON value always serialises"))
    }

    /// A response from bytes that `render` made from a `T`.
    pub fn from_rendered(bytes: Bytes) -> Self {
        JsonBody {
            bytes,
            _shape: PhantomData,
        }
    }
}

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = CONTENT_TYPE;

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T> IntoResponse for JsonBody<T> {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type(CONTENT_TYPE)
            .body(self.bytes)
    }
}

impl<T: Type> ApiResponse for JsonBody<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: CONTENT_TYPE,
                    schema: T::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}
