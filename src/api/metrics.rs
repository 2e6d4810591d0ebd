//! `GET /metrics`: the Prometheus scrape (`crate::metrics`). Not in the OpenAPI document: it
//! is text for Prometheus rather than part of the JSON API, and with `server.metrics_bind` it
//! is served on another address.

use poem::web::Data;
use poem::{Response, handler};

use crate::api::error::CoreError;
use crate::service::Dravo;

#[handler]
pub async fn scrape(dravo: Data<&Dravo>) -> poem::Result<Response> {
    let text = dravo.metrics_text().await.map_err(CoreError)?;
    Ok(Response::builder()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(text))
}
