//! Dravo's integration tests, all in one crate: one binary to link instead of one per file
//! (each linking the whole crate, poem, reqwest and tokio-postgres), which on a small machine
//! was much of `cargo test`'s time. One module per subject; the helpers and the fake
//! providers are in `support`, once. Run one subject with `cargo test --test api connect_flow::`.
//!
//! The one test that must have a process to itself (it installs a global log subscriber)
//! is `tests/log_capture.rs`.

mod support;

mod app_checks;
mod auth;
mod backup;
mod cache_coherence;
mod children;
mod cli;
mod config_errors;
mod connect_confirmation;
mod connect_flow;
mod connect_logs;
mod cors;
mod deploy_files;
mod docs;
mod doctor;
mod durability;
mod error_codes;
mod example_connect_account;
mod examples;
mod fake_provider_selftest;
mod first_run;
mod generated_client;
mod health;
mod http_errors;
mod key_rotation;
mod lifecycle;
mod machine_independence;
mod mastodon;
mod multi_node;
mod oauth_apps;
mod observability;
mod openapi;
mod postgres;
mod rate_limits;
mod response_headers;
mod sealing;
mod server_process;
mod slow_clients;
mod store_backends;
mod webhooks;
