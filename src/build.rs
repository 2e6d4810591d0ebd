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
    // Run again when HEAD moves: a commit or a checkout.
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={git_dir}/{head_ref}");
        }
    }
    println!("cargo:rerun-if-changed=src/build.rs");
}
