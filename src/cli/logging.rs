//! Logging to stderr: the filter (`RUST_LOG`, with the targets that would log SQL parameters
//! kept quiet) and the writer thread.

use crate::config::LogFormat;

/// Targets whose debug and trace lines carry SQL parameters (sealed values, personal data):
/// tokio-postgres logs every statement with its parameters at debug (through the `log`
/// crate, which tracing-subscriber bridges). They and their modules are capped at `info`
/// whatever `RUST_LOG` says; naming them at `warn`, `error` or `off` still quietens them.
const PARAMETER_LOGGING_TARGETS: &[&str] = &["tokio_postgres"];

/// The log filter: `rust_log` (the `RUST_LOG` value) when it parses, else `default`, with
/// the targets of `PARAMETER_LOGGING_TARGETS` capped at `info`: a directive of `rust_log`
/// that would make one of them (or a module under it) louder is dropped.
fn log_filter(rust_log: Option<&str>, default: &str) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    let louder_than_info = |directive: &str| {
        let directive = directive.trim();
        let (target, level) = directive.split_once('=').unwrap_or((directive, "trace"));
        let target = target.split('[').next().unwrap_or(target);
        PARAMETER_LOGGING_TARGETS
            .iter()
            .any(|quiet| target == *quiet || target.starts_with(&format!("{quiet}::")))
            && !["off", "error", "warn", "info"]
                .contains(&level.trim().to_ascii_lowercase().as_str())
    };
    let mut filter = rust_log
        .map(|value| {
            value
                .split(',')
                .filter(|directive| !louder_than_info(directive))
                .collect::<Vec<_>>()
                .join(",")
        })
        .and_then(|value| EnvFilter::try_new(value).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    for target in PARAMETER_LOGGING_TARGETS {
        let named_quieter = rust_log.is_some_and(|value| {
            value.split(',').any(|directive| {
                directive
                    .trim()
                    .strip_prefix(target)
                    .and_then(|rest| rest.strip_prefix('='))
                    .is_some_and(|level| {
                        ["off", "error", "warn"]
                            .contains(&level.trim().to_ascii_lowercase().as_str())
                    })
            })
        });
        if !named_quieter {
            filter = filter.add_directive(
                format!("{target}=info")
                    .parse()
                    .expect("a target=level directive parses"),
            );
        }
    }
    filter
}

/// Logs to stderr through a writer thread: a request never waits for the terminal or the
/// journal to take its log line. Nothing is dropped: when the queue is full, the logging
/// call waits, as a direct write would. `LogFormat::Json` writes one JSON object per line:
/// the event's fields at the top level beside `timestamp`, `level`, `target` and `message`,
/// and the request it belongs to, if any, as `span` (`{"name":"request","request_id":…}`).
pub fn init(serving: bool, format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let default = if serving { "info" } else { "warn" };
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref(), default);
    // The writer thread drains every queued line into the buffer, then flushes: under load
    // one write carries many lines, and an idle server leaves nothing unwritten.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        // The queue is allocated up front: 8 192 lines is ample for a writer that drains it
        // continuously, and keeps idle memory low (the default of 128 000 costs megabytes).
        .buffered_lines_limit(8192)
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    guard
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::log_filter;

    /// Whether an event at `level` of `target` passes the filter built from `rust_log`.
    fn passes(rust_log: Option<&str>, target: &str, level: tracing::Level) -> bool {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        struct Seen(Arc<AtomicBool>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Seen {
            fn on_event(
                &self,
                _: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let seen = Arc::new(AtomicBool::new(false));
        let subscriber = tracing_subscriber::registry()
            .with(log_filter(rust_log, "info"))
            .with(Seen(seen.clone()));
        tracing::subscriber::with_default(subscriber, || {
            // The target of tokio-postgres's `executing statement … with parameters` line.
            macro_rules! emit {
                ($($lvl:ident),*) => {
                    match level {
                        $(tracing::Level::$lvl => tracing::event!(target: "tokio_postgres::query", tracing::Level::$lvl, "x"),)*
                    }
                };
            }
            if target == "tokio_postgres::query" {
                emit!(TRACE, DEBUG, INFO, WARN, ERROR);
            } else {
                match level {
                    tracing::Level::TRACE => tracing::trace!(target: "dravo", "x"),
                    tracing::Level::DEBUG => tracing::debug!(target: "dravo", "x"),
                    _ => tracing::info!(target: "dravo", "x"),
                }
            }
        });
        seen.load(Ordering::SeqCst)
    }

    #[test]
    fn rust_log_debug_never_lets_tokio_postgres_log_sql_parameters() {
        use tracing::Level;
        for rust_log in [
            Some("debug"),
            Some("trace"),
            Some("tokio_postgres=debug"),
            Some("tokio_postgres=trace,dravo=debug"),
            Some("info,tokio_postgres::query=debug"),
            Some("tokio_postgres::query"),
            None,
        ] {
            for level in [Level::DEBUG, Level::TRACE] {
                assert!(
                    !passes(rust_log, "tokio_postgres::query", level),
                    "RUST_LOG={rust_log:?} lets tokio_postgres log at {level}"
                );
            }
            assert!(
                passes(rust_log, "tokio_postgres::query", Level::INFO),
                "RUST_LOG={rust_log:?}: tokio_postgres's notices (info) stay"
            );
        }
        // The rest of RUST_LOG still applies.
        assert!(passes(Some("debug"), "dravo", Level::DEBUG));
        assert!(passes(Some("trace"), "dravo", Level::TRACE));
        assert!(!passes(None, "dravo", Level::DEBUG));
        // Asking for less is honoured.
        assert!(!passes(
            Some("debug,tokio_postgres=warn"),
            "tokio_postgres::query",
            Level::INFO
        ));
    }
}
