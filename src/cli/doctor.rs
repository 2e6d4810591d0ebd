//! `dravo doctor`: the findings of `service::doctor`, one a line, and exit 1 when any is a
//! failure.

use super::context::Context;
use super::output::print_line;
use crate::error::{Error, Result};
use crate::service::doctor::{Finding, Level, diagnose};

pub fn run(ctx: &Context) -> Result<()> {
    let findings = ctx.block_on(async { Ok(diagnose(ctx.config()).await) })?;
    for f in &findings {
        print_line(&line(f))?;
    }
    verdict(&findings)
}

/// `FAIL  database: …`: the level padded to four, the subject, what was found.
fn line(f: &Finding) -> String {
    format!("{:<4}  {}: {}", f.level.as_str(), f.subject, f.message)
}

/// An error counting the failures, when there are any. A runtime error (exit 1) however many
/// there are: the install is wrong, not the command line.
fn verdict(findings: &[Finding]) -> Result<()> {
    match findings.iter().filter(|f| f.level == Level::Fail).count() {
        0 => Ok(()),
        n => Err(Error::config(format!(
            "doctor found {n} problem{} (FAIL above)",
            if n == 1 { "" } else { "s" }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(level: Level) -> Finding {
        Finding {
            level,
            subject: "database".into(),
            message: "what to do".into(),
        }
    }

    #[test]
    fn any_number_of_failures_is_a_runtime_error_never_a_usage_error() {
        assert!(
            verdict(&[
                finding(Level::Ok),
                finding(Level::Warn),
                finding(Level::Info)
            ])
            .is_ok()
        );
        for n in 1..=3 {
            let findings: Vec<Finding> = (0..n).map(|_| finding(Level::Fail)).collect();
            let error = verdict(&findings).unwrap_err();
            assert!(matches!(error, Error::Config(_)), "{n} failures: {error:?}");
        }
        assert_eq!(
            verdict(&[finding(Level::Fail)]).unwrap_err().to_string(),
            "doctor found 1 problem (FAIL above)"
        );
        assert_eq!(
            verdict(&[finding(Level::Fail), finding(Level::Fail)])
                .unwrap_err()
                .to_string(),
            "doctor found 2 problems (FAIL above)"
        );
    }

    #[test]
    fn a_finding_is_one_aligned_line() {
        assert_eq!(line(&finding(Level::Ok)), "ok    database: what to do");
        assert_eq!(line(&finding(Level::Fail)), "FAIL  database: what to do");
    }
}
