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

/// An error counting the failures, when there are any.
fn verdict(findings: &[Finding]) -> Result<()> {
    match findings.iter().filter(|f| f.level == Level::Fail).count() {
        0 => Ok(()),
        1 => Err(Error::Config("doctor found 1 problem (FAIL above)".into())),
        n => Err(Error::invalid(format!(
            "doctor found {n} problems (FAIL above)"
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
    fn a_finding_is_one_aligned_line() {
        assert_eq!(line(&finding(Level::Ok)), "ok    database: what to do");
        assert_eq!(line(&finding(Level::Fail)), "FAIL  database: what to do");
    }
}
