//! Build script: records the git commit the binary is built from, for `dravo --version`.
//! Outside a git checkout (a source tarball, a container build) the commit is
//! `$DRAVO_GIT_COMMIT` when set (`examples/deploy/Dockerfile` passes it), else `unknown`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])
        .or_else(|| {
            std::env::var("DRAVO_GIT_COMMIT")
                .ok()
                .filter(|c| !c.is_empty())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rerun-if-env-changed=DRAVO_GIT_COMMIT");
    println!("cargo:rustc-env=DRAVO_GIT_COMMIT={commit}");
    // Run again when HEAD moves: a commit or a checkout. `--git-path` resolves each file
    // where git keeps it (a worktree has its own HEAD but shares the refs), and only files
    // that exist are named: cargo reruns a script whose watched file is missing on every
    // build. A branch's ref is a loose file under refs/heads or a line of packed-refs.
    for file in ["HEAD", "refs/heads", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", file])
            && std::path::Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=src/build.rs");
}
