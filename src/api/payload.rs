//! `JsonBody<T>`: a JSON payload documented as `T` (its poem-openapi schema) but sent from
//! bytes rendered earlier by serde, straight from `T`, without building a `serde_json::Value`
//! tree first. The hot reads (lists of apps and accounts) keep their rendered body while the
//! database is unchanged (`rendered`). A test in `views` proves serde and
//! poem-openapi give the same JSON for every view.

use std::marker::PhantomData;

use bytes::Bytes;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::Serialize;

const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// A JSON body already rendered from a `T`. Endpoints return it inside an `ApiResponse`
/// enum, whose doc comment describes the response.
pub struct JsonBody<T> {
    bytes: Bytes,
    _shape: PhantomData<fn() -> T>,
}

impl<T: Serialize> JsonBody<T> {
    /// Renders `value` as the body of a `JsonBody<T>`.
    pub fn render(value: &T) -> Bytes {
        // Views hold strings, numbers and lists only: serialising them cannot fail.
        Bytes::from(serde_json::to_vec(value).expect("views always serialise"))
    }

    /// A response rendered from `value` now.
    pub fn of(value: &T) -> Self {
        Self::from_rendered(Self::render(value))
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
