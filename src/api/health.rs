//! `GET /healthz`: the process is alive (it answers once the database answers).
//! `GET /readyz`: the server is ready for traffic (database, schema, master key).

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use crate::api::ApiTags;
use crate::api::error::{HealthError, ReadyError};
use crate::service::Dravo;

/// Always `ok` in a 200: the only status a healthy server reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
}

#[derive(Debug, Object)]
#[oai(example)]
pub struct Health {
    // No doc comment: poem-openapi would wrap the enum's `$ref` in an `allOf`, which client
    // generators reject; `HealthStatus` carries the description.
    pub status: HealthStatus,
}

impl Example for Health {
    fn example() -> Self {
        Health {
            status: HealthStatus::Ok,
        }
    }
}

#[derive(ApiResponse)]
pub enum Healthy {
    /// The database answered a query: `{"status":"ok"}`.
    #[oai(status = 200)]
    Ok(Json<Health>),
}

#[derive(ApiResponse)]
pub enum Ready {
    /// The database answers, its schema is the one this build migrates to, and it belongs
    /// to the master key loaded at start: `{"status":"ok"}`.
    #[oai(status = 200)]
    Ok(Json<Health>),
}

pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Health check
    ///
    /// 200 once the database answered a query; 500 when it did not.
    #[oai(path = "/healthz", method = "get", operation_id = "health")]
    async fn health(&self, dravo: Data<&Dravo>) -> Result<Healthy, HealthError> {
        dravo.health().await?;
        Ok(Healthy::Ok(Json(Health {
            status: HealthStatus::Ok,
        })))
    }

    /// Readiness check
    ///
    /// 200 when the server is ready for traffic: the database answers, its schema is the one
    /// this build migrates to, and it belongs to the master key loaded at start. 503
    /// `not_ready` otherwise, the message naming each check that failed (`database`,
    /// `migrations`, `key`). `/healthz` says the process is alive; this says whether to send
    /// it requests.
    #[oai(path = "/readyz", method = "get", operation_id = "ready")]
    async fn ready(&self, dravo: Data<&Dravo>) -> Result<Ready, ReadyError> {
        dravo.readiness().await?;
        Ok(Ready::Ok(Json(Health {
            status: HealthStatus::Ok,
        })))
    }
}
