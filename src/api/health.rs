//! `GET /healthz`: answers once the database answers.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::api::ApiTags;
use crate::api::error::ApiError;
use crate::service::Dravo;

#[derive(Debug, Object)]
pub struct Health {
    /// Always `ok` in a 200.
    pub status: String,
}

pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Health check
    ///
    /// 200 once the database answered a query.
    #[oai(path = "/healthz", method = "get", operation_id = "health")]
    async fn health(&self, dravo: Data<&Dravo>) -> Result<Json<Health>, ApiError> {
        dravo.health().await?;
        Ok(Json(Health {
            status: "ok".into(),
        }))
    }
}
