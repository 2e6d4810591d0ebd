//! The wire contract: the shapes the HTTP API's bodies and parameters take, generated into
//! the OpenAPI spec and also printed by the CLI's `--json` and sent in webhook bodies. They
//! depend on the domain alone; `api` serves them, `service` renders webhooks with them.
//!
//! - `values`: how a domain value crosses the wire (`Checked<T>` parsed once at the edge,
//!   `Omittable`, `ScopeList`, the callback's lenient parameters).
//! - `views`: the response bodies, built from the core's outputs.

pub mod values;
pub mod views;
