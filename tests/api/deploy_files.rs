//! The deployment examples (`examples/deploy/`) work as written: the systemd unit's and the
//! container's command lines start a real server that `dravo healthcheck` (the container's
//! HEALTHCHECK) finds ready, and the compose file, the Caddyfile and the Dockerfile agree on
//! the port, the volume and the proxy's network. (Their syntax is linted by `.ci/lint-deploy`:
//! hadolint and `systemd-analyze verify`.)

use crate::support;

use std::path::Path;
use std::process::Command;

use support::cmd::{Out, run_cmd};
use support::dravo_cmd;
use support::process::{Server, tempdir};

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/deploy");

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(DEPLOY).join(name)).unwrap()
}

/// The value of the first `key=value` line of a unit file.
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the unit has no {key}="))
        .to_owned()
}

/// `dravo_cmd` with the unit's or image's arguments, paths mapped into `dir`.
fn command(dir: &Path, args: &[String]) -> Command {
    let mut cmd = dravo_cmd(dir);
    cmd.env_remove("DRAVO_DATABASE_PATH")
        .env_remove("DRAVO_DATABASE_URL")
        .args(args);
    cmd
}

fn healthcheck(dir: &Path, args: &[String], env: &[(&str, String)]) -> Out {
    let mut cmd = command(dir, args);
    cmd.arg("healthcheck");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_cmd(cmd, "")
}

/// The systemd unit's ExecStart, with its config (the shipped `dravo.toml.example`, as the
/// unit's install steps copy it) and state directory in a temp dir, serves; `healthcheck`
/// with the same arguments finds it ready, and reports a stopped one.
#[test]
fn the_systemd_units_command_line_serves_and_healthcheck_sees_it() {
    let unit = read("dravo.service");
    assert_eq!(unit_value(&unit, "User"), "dravo");
    assert_eq!(unit_value(&unit, "StateDirectory"), "dravo");
    assert_eq!(unit_value(&unit, "ProtectSystem"), "strict");
    assert_eq!(unit_value(&unit, "NoNewPrivileges"), "yes");
    let dir = tempdir();
    let etc = dir.path().join("etc/dravo");
    let state = dir.path().join("var/lib/dravo");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/dravo.toml.example"),
        etc.join("dravo.toml"),
    )
    .unwrap();
    let exec = unit_value(&unit, "ExecStart")
        .replace("/etc/dravo", etc.to_str().unwrap())
        .replace("/var/lib/dravo", state.to_str().unwrap());
    let mut words: Vec<String> = exec.split_whitespace().map(str::to_owned).collect();
    assert_eq!(words.remove(0), "/usr/local/bin/dravo");
    assert_eq!(words.pop().as_deref(), Some("serve"));

    let mut server = Server::start_bound(command(&state, &words), "127.0.0.1:0");
    let bind = [("DRAVO_SERVER_BIND", server.addr.to_string())];
    let out = healthcheck(&state, &words, &bind);
    out.assert_success();
    assert_eq!(
        out.stdout.trim(),
        format!("http://{}/readyz: 200", server.addr)
    );
    assert!(state.join("dravo.db").exists() && state.join("dravo.key").exists());
    server.stop();

    let out = healthcheck(&state, &words, &bind);
    out.assert_runtime_error();
    assert!(
        out.stderr.contains("Connection refused"),
        "{}",
        out.describe()
    );
}

/// The image's environment (every interface, the database in /data), ENTRYPOINT and CMD
/// serve, and its HEALTHCHECK command asks on loopback and finds the server ready.
#[test]
fn the_images_command_and_healthcheck_work_together() {
    let dockerfile = read("Dockerfile");
    let runtime = &dockerfile[dockerfile.rfind("\nFROM ").unwrap()..];
    let env_line = |key: &str| -> String {
        let at = runtime
            .find(&format!("{key}="))
            .unwrap_or_else(|| panic!("no ENV {key}"));
        runtime[at + key.len() + 1..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    let bind = env_line("DRAVO_SERVER_BIND");
    let database = env_line("DRAVO_DATABASE_PATH");
    assert_eq!(bind, "0.0.0.0:8080");
    assert!(runtime.contains("EXPOSE 8080"));
    assert!(runtime.contains("VOLUME [\"/data\"]"));
    assert!(database.starts_with("/data/"), "{database}");
    assert!(
        runtime.contains("USER 65532:65532"),
        "runs as distroless's nonroot"
    );
    assert!(runtime.contains(r#"ENTRYPOINT ["/usr/local/bin/dravo"]"#));
    assert!(runtime.contains(r#"CMD ["serve"]"#));
    assert!(runtime.contains(r#"CMD ["/usr/local/bin/dravo", "healthcheck"]"#));

    let dir = tempdir();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut cmd = command(&data, &[]);
    cmd.env(
        "DRAVO_DATABASE_PATH",
        database.replace("/data", data.to_str().unwrap()),
    );
    let mut server = Server::start_bound(cmd, "0.0.0.0:0");
    let port = server.addr.port();
    let out = healthcheck(
        &data,
        &[],
        &[
            ("DRAVO_SERVER_BIND", format!("0.0.0.0:{port}")),
            (
                "DRAVO_DATABASE_PATH",
                database.replace("/data", data.to_str().unwrap()),
            ),
        ],
    );
    out.assert_success();
    assert_eq!(
        out.stdout.trim(),
        format!("http://127.0.0.1:{port}/readyz: 200")
    );
    server.stop();
}

/// Compose, Caddy and the image agree: Caddy proxies to the port the image exposes, the
/// volume is the image's, and Dravo trusts X-Forwarded-For from exactly the compose network.
#[test]
fn compose_caddy_and_the_image_agree() {
    let compose: serde_yaml::Value = serde_yaml::from_str(&read("docker-compose.yml")).unwrap();
    let dravo = &compose["services"]["dravo"];
    assert_eq!(dravo["build"]["dockerfile"], "examples/deploy/Dockerfile");
    assert_eq!(dravo["build"]["context"], "../..");
    assert!(
        Path::new(DEPLOY)
            .join("../..")
            .join("examples/deploy/Dockerfile")
            .exists()
    );
    assert_eq!(dravo["expose"][0], "8080");
    assert!(dravo.get("ports").is_none(), "only Caddy is published");
    assert_eq!(dravo["volumes"][0], "dravo-data:/data");
    let subnet = compose["networks"]["edge"]["ipam"]["config"][0]["subnet"]
        .as_str()
        .unwrap();
    assert_eq!(
        dravo["environment"]["DRAVO_SERVER_TRUSTED_PROXIES"], subnet,
        "Dravo believes X-Forwarded-For from the compose network only"
    );
    assert!(
        dravo["environment"]["DRAVO_SERVER_PUBLIC_URL"]
            .as_str()
            .unwrap()
            .starts_with("https://${DRAVO_DOMAIN")
    );
    let caddy = &compose["services"]["caddy"];
    assert_eq!(caddy["depends_on"]["dravo"]["condition"], "service_healthy");
    assert_eq!(caddy["volumes"][0], "./Caddyfile:/etc/caddy/Caddyfile:ro");
    let caddyfile = read("Caddyfile");
    assert!(
        caddyfile.contains("reverse_proxy dravo:8080"),
        "{caddyfile}"
    );
    assert!(caddyfile.contains("{$DRAVO_DOMAIN}"), "{caddyfile}");
}
