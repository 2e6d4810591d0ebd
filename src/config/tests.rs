use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn env_keys_map_to_sections() {
    assert_eq!(
        env_key("DRAVO_SERVER_PUBLIC_URL").unwrap(),
        "server.public_url"
    );
    assert_eq!(
        env_key("DRAVO_PROVIDERS_X_CLIENT_ID").unwrap(),
        "providers.x.client_id"
    );
    assert_eq!(env_key("DRAVO_AUTH_JWT_SECRET").unwrap(), "auth.jwt_secret");
    assert_eq!(
        env_key("DRAVO_PROVIDERS_TIMEOUT_SECONDS").unwrap(),
        "providers.timeout_seconds"
    );
    assert_eq!(
        env_key("DRAVO_PROVIDERS_TIKTOK_TOKEN_URL").unwrap(),
        "providers.tiktok.token_url"
    );
}

#[test]
fn numeric_looking_env_values_stay_strings() {
    let c = Config::load_from(
        None,
        env(&[
            ("DRAVO_PROVIDERS_X_CLIENT_ID", "12345"),
            ("DRAVO_PROVIDERS_X_CLIENT_SECRET", "67890"),
        ]),
    )
    .unwrap();
    assert_eq!(
        c.providers
            .get("x".parse().unwrap())
            .unwrap()
            .client_id
            .clone()
            .unwrap(),
        "12345"
    );
}

#[test]
fn timeout_accepts_env_string_and_rejects_words() {
    let c = Config::load_from(None, env(&[("DRAVO_PROVIDERS_TIMEOUT_SECONDS", "3")])).unwrap();
    assert_eq!(c.providers.timeout_seconds, 3);
    let msg = Config::load_from(None, env(&[("DRAVO_PROVIDERS_TIMEOUT_SECONDS", "soon")]))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("providers.timeout_seconds"), "{msg}");
}

#[test]
fn client_side_dravo_variables_are_left_alone() {
    let c = Config::load_from(
        None,
        env(&[
            ("DRAVO_TOKEN", "eyJ.not.config"),
            ("DRAVO_URL", "http://127.0.0.1:8080"),
            ("DRAVO_CONFIG", "ignored-here.toml"),
            ("DRAVO_SERVERS_BIND", "x"),
            ("DRAVO_SERVER_BIND", "127.0.0.1:9009"),
        ]),
    )
    .unwrap();
    assert_eq!(c.server.bind, "127.0.0.1:9009");
}

#[test]
fn sections_are_exactly_the_configuration_tables() {
    let err = Figment::new()
        .merge(Toml::string("not_a_section = 1"))
        .extract::<Config>()
        .unwrap_err();
    let figment::error::Kind::UnknownField(_, expected) = &err.kind else {
        panic!("expected an unknown-field error, got {err}");
    };
    assert_eq!(*expected, &SECTIONS[..]);
}

#[test]
fn unknown_key_inside_a_known_section_is_still_an_error() {
    for var in ["DRAVO_DATABASE_PATHH", "DRAVO_PROVIDERS_X_CLIENTID"] {
        let msg = Config::load_from(None, env(&[(var, "x")]))
            .unwrap_err()
            .to_string();
        assert!(msg.contains(var), "{msg}");
    }
}

#[test]
fn how_the_database_path_was_chosen_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dravo.toml");
    let c = Config::load_from(None, vec![]).unwrap();
    assert_eq!(c.origin.database_path, Chosen::Default);
    std::fs::write(&file, "[server]\nbind = \"127.0.0.1:9000\"\n").unwrap();
    let c = Config::load_from(Some(&file), vec![]).unwrap();
    assert_eq!(c.origin.database_path, Chosen::Default);
    assert_eq!(c.origin.file.as_deref(), Some(file.as_path()));
    std::fs::write(&file, "[database]\npath = \"x.db\"\n").unwrap();
    let c = Config::load_from(Some(&file), vec![]).unwrap();
    assert_eq!(c.origin.database_path, Chosen::File(file.clone()));
    let c = Config::load_from(Some(&file), env(&[("DRAVO_DATABASE_PATH", "y.db")])).unwrap();
    assert_eq!(
        c.origin.database_path,
        Chosen::Env("DRAVO_DATABASE_PATH".into())
    );
    assert_eq!(c.database.path, PathBuf::from("y.db"));
}

#[test]
fn unknown_env_key_is_named() {
    let err = Config::load_from(None, env(&[("DRAVO_SERVER_BINDD", "x")])).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("server.bindd"), "{msg}");
    assert!(msg.contains("DRAVO_SERVER_BINDD"), "{msg}");
}

#[test]
fn env_overrides_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dravo.toml");
    std::fs::write(&file, "[server]\nbind = \"127.0.0.1:9000\"\n").unwrap();
    let c = Config::load_from(Some(&file), vec![]).unwrap();
    assert_eq!(c.server.bind, "127.0.0.1:9000");
    let c =
        Config::load_from(Some(&file), env(&[("DRAVO_SERVER_BIND", "127.0.0.1:9001")])).unwrap();
    assert_eq!(c.server.bind, "127.0.0.1:9001");
}

#[test]
fn wrong_type_in_file_names_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dravo.toml");
    std::fs::write(&file, "[server]\nbind = 8080\n").unwrap();
    let msg = Config::load_from(Some(&file), vec![])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("server.bind"), "{msg}");
    assert!(msg.contains("dravo.toml"), "{msg}");
}

fn with_bind(bind: &str) -> Result<Config> {
    Config::load_from(None, env(&[("DRAVO_SERVER_BIND", bind)]))
}

#[test]
fn bind_accepts_addresses_and_host_names() {
    for (bind, public) in [
        ("127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("localhost:8080", "http://localhost:8080"),
        ("dravo.internal:9000", "http://dravo.internal:9000"),
        ("[::1]:8080", "http://[::1]:8080"),
    ] {
        let c = with_bind(bind).unwrap_or_else(|e| panic!("{bind}: {e}"));
        assert_eq!(c.public_url(None), public);
        assert_eq!(c.public_url_warning(), None, "{bind}");
    }
    // The port actually bound replaces 0; the host stays as written.
    let c = with_bind("localhost:0").unwrap();
    let bound: SocketAddr = "127.0.0.1:43210".parse().unwrap();
    assert_eq!(c.public_url(Some(bound)), "http://localhost:43210");
    for bad in [
        "localhost",
        "8080",
        ":8080",
        "local host:80",
        "a:b",
        "127.0.0.1:99999",
    ] {
        let msg = with_bind(bad).unwrap_err().to_string();
        assert!(msg.contains("server.bind"), "{bad}: {msg}");
        assert!(msg.contains("localhost:8080"), "{bad}: {msg}");
    }
}

#[test]
fn every_interface_without_a_public_url_is_warned_about() {
    for bind in ["0.0.0.0:8080", "[::]:8080"] {
        let warning = with_bind(bind).unwrap().public_url_warning().unwrap();
        assert!(warning.contains("server.public_url"), "{warning}");
        assert!(warning.contains(bind), "{warning}");
    }
    let c = Config::load_from(
        None,
        env(&[
            ("DRAVO_SERVER_BIND", "0.0.0.0:8080"),
            ("DRAVO_SERVER_PUBLIC_URL", "https://dravo.example.com"),
        ]),
    )
    .unwrap();
    assert_eq!(c.public_url_warning(), None);
}

#[test]
fn secret_keys_are_known_by_name() {
    for key in [
        "security.master_key",
        "auth.jwt_secret",
        "providers.x.client_secret",
        "providers.tiktok.client_secret",
        "some.future_api_key",
    ] {
        assert!(is_secret_key(key), "{key}");
    }
    for key in [
        "security.master_key_file",
        "auth.jwt_public_key_file",
        "server.bind",
        "providers.timeout_seconds",
    ] {
        assert!(!is_secret_key(key), "{key}");
    }
}

#[test]
fn a_secret_of_the_wrong_type_is_named_but_not_shown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dravo.toml");
    std::fs::write(
        &file,
        "[providers.x]\nclient_id = \"cid\"\nclient_secret = 7365021894563210987\n",
    )
    .unwrap();
    let msg = Config::load_from(Some(&file), vec![])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("`providers.x.client_secret`"), "{msg}");
    assert!(msg.contains("expected a string, found an integer"), "{msg}");
    assert!(!msg.contains("7365021894563210987"), "{msg}");
}

fn load_toml(text: &str, vars: &[(&str, &str)]) -> Result<Config> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dravo.toml");
    std::fs::write(&file, text).unwrap();
    Config::load_from(Some(&file), env(vars))
}

#[test]
fn timeout_accepts_a_number_or_a_string_holding_one() {
    let c = load_toml("[providers]\ntimeout_seconds = 20\n", &[]).unwrap();
    assert_eq!(c.providers.timeout_seconds, 20);
    let c = load_toml("[providers]\ntimeout_seconds = \"21\"\n", &[]).unwrap();
    assert_eq!(c.providers.timeout_seconds, 21);
    assert_eq!(Config::default().providers.timeout_seconds, 15);
    for (toml, found) in [
        ("timeout_seconds = -5", "found signed int `-5`"),
        ("timeout_seconds = 1.5", "found float `1.5`"),
        ("timeout_seconds = \"soon\"", "found string \"soon\""),
        ("timeout_seconds = [1]", "found sequence"),
    ] {
        let msg = load_toml(&format!("[providers]\n{toml}\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("configuration key `providers.timeout_seconds` has "),
            "{msg}"
        );
        assert!(msg.contains("expected a whole number"), "{msg}");
        assert!(msg.contains(found), "{msg}");
        assert!(!msg.contains('\n') && !msg.contains("PickFirst"), "{msg}");
    }
}

#[test]
fn lists_accept_a_list_or_a_separated_string() {
    let want = vec!["https://a.example", "https://b.example"];
    for toml in [
        "allowed_return_urls = [\"https://a.example\", \"https://b.example\"]",
        "allowed_return_urls = \"https://a.example https://b.example\"",
        "allowed_return_urls = \"https://a.example,https://b.example\"",
    ] {
        let c = load_toml(&format!("[dashboard]\n{toml}\n"), &[]).unwrap();
        assert_eq!(c.dashboard.allowed_return_urls, want, "{toml}");
    }
    let c = load_toml(
        "",
        &[(
            "DRAVO_DASHBOARD_ALLOWED_RETURN_URLS",
            "https://a.example, https://b.example",
        )],
    )
    .unwrap();
    assert_eq!(c.dashboard.allowed_return_urls, want);
    assert!(Config::default().dashboard.allowed_return_urls.is_empty());

    let c = load_toml("[providers.x]\nscopes = [\"a\", \"b\"]\n", &[]).unwrap();
    assert_eq!(
        c.providers.get("x".parse().unwrap()).unwrap().scopes,
        Some(vec!["a".to_string(), "b".to_string()])
    );
    let c = load_toml(
        "[providers.x]\nclient_id = \"cid\"\nclient_secret = \"s\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.providers.get("x".parse().unwrap()).unwrap().scopes, None);

    let msg = load_toml("[providers.x]\nscopes = 5\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with(
            "configuration key `providers.x.scopes` has the wrong type: expected a list of strings or a space- or comma-separated string, found "
        ) && msg.contains("int `5`"),
        "{msg}"
    );
}

#[test]
fn allow_insecure_key_file_accepts_a_boolean_or_a_string_holding_one() {
    assert!(!Config::default().security.allow_insecure_key_file);
    for (toml, vars, want) in [
        ("allow_insecure_key_file = true", vec![], true),
        ("allow_insecure_key_file = false", vec![], false),
        ("allow_insecure_key_file = \"true\"", vec![], true),
        (
            "",
            vec![("DRAVO_SECURITY_ALLOW_INSECURE_KEY_FILE", "true")],
            true,
        ),
        (
            "",
            vec![("DRAVO_SECURITY_ALLOW_INSECURE_KEY_FILE", "false")],
            false,
        ),
        (
            "allow_insecure_key_file = true",
            vec![("DRAVO_SECURITY_ALLOW_INSECURE_KEY_FILE", "false")],
            false,
        ),
    ] {
        let c = load_toml(&format!("[security]\n{toml}\n"), &vars).unwrap();
        assert_eq!(c.security.allow_insecure_key_file, want, "{toml} {vars:?}");
    }
    for value in ["yes", "1", ""] {
        let msg = load_toml("", &[("DRAVO_SECURITY_ALLOW_INSECURE_KEY_FILE", value)])
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            format!(
                "configuration key `security.allow_insecure_key_file` has an invalid value: expected true or false, found string {value:?} (from environment variable DRAVO_SECURITY_ALLOW_INSECURE_KEY_FILE)"
            )
        );
    }
}

#[test]
fn scopes_accept_string_or_list() {
    let c = Config::load_from(
        None,
        env(&[("DRAVO_PROVIDERS_LINKEDIN_SCOPES", "openid profile")]),
    )
    .unwrap();
    assert_eq!(
        c.providers
            .get("linkedin".parse().unwrap())
            .unwrap()
            .scopes
            .clone()
            .unwrap(),
        vec!["openid", "profile"]
    );
}

#[test]
fn trusted_proxies_accept_addresses_and_ranges_as_a_list_or_a_string() {
    assert!(Config::default().server.trusted_proxies.is_empty());
    for (toml, vars) in [
        (
            "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\", \"192.168.1.7\"]\n",
            vec![],
        ),
        (
            "[server]\ntrusted_proxies = \"10.0.0.0/8 ::1,192.168.1.7\"\n",
            vec![],
        ),
        (
            "",
            vec![(
                "DRAVO_SERVER_TRUSTED_PROXIES",
                "10.0.0.0/8, ::1, 192.168.1.7",
            )],
        ),
    ] {
        let c = load_toml(toml, &vars).unwrap_or_else(|e| panic!("{toml} {vars:?}: {e}"));
        let proxies = &c.server.trusted_proxies;
        for inside in ["10.1.2.3", "::1", "192.168.1.7", "::ffff:10.9.9.9"] {
            assert!(proxies.contains(inside.parse().unwrap()), "{inside}");
        }
        for outside in ["11.0.0.1", "192.168.1.8", "::2", "127.0.0.1"] {
            assert!(!proxies.contains(outside.parse().unwrap()), "{outside}");
        }
    }
}

#[test]
fn a_bad_trusted_proxy_names_the_key_and_the_entry() {
    for (toml, vars, bad) in [
        (
            "[server]\ntrusted_proxies = [\"10.0.0.1\", \"proxy.internal\"]\n",
            vec![],
            "proxy.internal",
        ),
        (
            "[server]\ntrusted_proxies = \"10.0.0.0/33\"\n",
            vec![],
            "10.0.0.0/33",
        ),
        ("", vec![("DRAVO_SERVER_TRUSTED_PROXIES", "1.2.3.4,*")], "*"),
    ] {
        let msg = load_toml(toml, &vars).unwrap_err().to_string();
        assert!(
            msg.starts_with("configuration key `server.trusted_proxies` has an invalid value: expected IP addresses or CIDR ranges such as 10.0.0.0/8"),
            "{msg}"
        );
        assert!(msg.contains(&format!("{bad:?}")), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
    let msg = load_toml("[server]\ntrusted_proxies = 5\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`server.trusted_proxies` has the wrong type"),
        "{msg}"
    );
}

#[test]
fn limits_default_to_the_contract_and_accept_whole_numbers() {
    let d = Config::default().limits;
    assert_eq!(
        (
            d.start_per_second,
            d.callback_per_second,
            d.create_per_second,
            d.token_per_second,
            d.change_per_second
        ),
        (10, 10, 5, 50, 10)
    );
    let c = load_toml(
        "[limits]\nstart_per_second = 1\ntoken_per_second = 100000\n",
        &[("DRAVO_LIMITS_CREATE_PER_SECOND", "7")],
    )
    .unwrap();
    assert_eq!(c.limits.start_per_second, 1);
    assert_eq!(c.limits.create_per_second, 7);
    assert_eq!(c.limits.token_per_second, 100_000);
    assert_eq!(c.limits.callback_per_second, 10);
}

#[test]
fn limits_out_of_range_or_not_whole_are_refused_by_key() {
    for (toml, vars, key, says) in [
        (
            "start_per_second = 0",
            vec![],
            "limits.start_per_second",
            "from 1 to 100000, not 0",
        ),
        (
            "token_per_second = 100001",
            vec![],
            "limits.token_per_second",
            "from 1 to 100000",
        ),
        (
            "",
            vec![("DRAVO_LIMITS_CALLBACK_PER_SECOND", "0")],
            "limits.callback_per_second",
            "not 0",
        ),
        (
            "create_per_second = 2.5",
            vec![],
            "limits.create_per_second",
            "expected a whole number",
        ),
        (
            "create_per_second = -1",
            vec![],
            "limits.create_per_second",
            "expected a whole number",
        ),
        (
            "",
            vec![("DRAVO_LIMITS_START_PER_SECOND", "0.5")],
            "limits.start_per_second",
            "expected a whole number",
        ),
    ] {
        let msg = load_toml(&format!("[limits]\n{toml}\n"), &vars)
            .unwrap_err()
            .to_string();
        assert!(msg.contains(key), "{toml} {vars:?}: {msg}");
        assert!(msg.contains(says), "{toml} {vars:?}: {msg}");
        assert!(!msg.contains('\n') && !msg.contains("PickFirst"), "{msg}");
    }
    let msg = load_toml("[limits]\nstart_per_minute = 5\n", &[])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("`limits.start_per_minute`"), "{msg}");
}

#[test]
fn cors_origins_accept_exact_origins_as_a_list_or_a_string() {
    assert!(Config::default().dashboard.cors_origins.is_empty());
    let want = vec!["https://dash.example.com", "http://localhost:3000"];
    for (toml, vars) in [
        (
            "[dashboard]\ncors_origins = [\"https://dash.example.com\", \"http://localhost:3000\"]\n",
            vec![],
        ),
        (
            "",
            vec![(
                "DRAVO_DASHBOARD_CORS_ORIGINS",
                "https://dash.example.com, http://localhost:3000",
            )],
        ),
    ] {
        let c = load_toml(toml, &vars).unwrap_or_else(|e| panic!("{toml} {vars:?}: {e}"));
        assert_eq!(c.dashboard.cors_origins, want);
    }
    let msg = load_toml(
        "[dashboard]\ncors_origins = [\"https://a.example\", \"*\"]\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.starts_with("dashboard.cors_origins does not accept `*`"),
        "{msg}"
    );
    let msg = load_toml("[dashboard]\ncors_origins = 5\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("configuration key `dashboard.cors_origins` has the wrong type: expected a list of strings"),
        "{msg}"
    );
}

#[test]
fn log_format_is_text_or_json() {
    assert_eq!(Config::default().log.format, LogFormat::Text);
    let c = load_toml("[log]\nformat = \"json\"\n", &[]).unwrap();
    assert_eq!(c.log.format, LogFormat::Json);
    let c = load_toml("", &[("DRAVO_LOG_FORMAT", "text")]).unwrap();
    assert_eq!(c.log.format, LogFormat::Text);
    let msg = load_toml("", &[("DRAVO_LOG_FORMAT", "JSON")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "configuration key `log.format` has an invalid value: expected `text` or `json`, found `JSON` (from environment variable DRAVO_LOG_FORMAT)"
    );
}

#[test]
fn metrics_bind_is_a_host_and_port() {
    assert_eq!(Config::default().server.metrics_bind, None);
    let c = load_toml("", &[("DRAVO_SERVER_METRICS_BIND", "127.0.0.1:9100")]).unwrap();
    assert_eq!(c.server.metrics_bind.as_deref(), Some("127.0.0.1:9100"));
    let msg = load_toml("[server]\nmetrics_bind = \":9100\"\n", &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "server.metrics_bind must be a host and port like 127.0.0.1:8080 or localhost:8080, not `:9100`"
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any text as a configuration file gives a config or an error, never a panic.
        #[test]
        fn any_toml_text_loads_or_fails_cleanly(text in "\\PC{0,300}") {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("dravo.toml");
            std::fs::write(&file, &text).unwrap();
            let _ = Config::load_from(Some(&file), Vec::new());
        }

        /// Any value of any known key from the environment: a config or a one-sentence
        /// error naming the key, never a panic.
        #[test]
        fn any_env_value_loads_or_names_the_key(
            key in proptest::sample::select(vec![
                "DRAVO_SERVER_BIND", "DRAVO_SERVER_PUBLIC_URL", "DRAVO_DATABASE_PATH",
                "DRAVO_SECURITY_MASTER_KEY", "DRAVO_AUTH_JWT_SECRET", "DRAVO_AUTH_TENANT_CLAIM",
                "DRAVO_DASHBOARD_ALLOWED_RETURN_URLS", "DRAVO_PROVIDERS_TIMEOUT_SECONDS",
                "DRAVO_PROVIDERS_X_SCOPES", "DRAVO_REFRESH_SKEW_SECONDS",
                "DRAVO_CONNECT_REQUIRE_CONFIRMATION", "DRAVO_WEBHOOKS_URL",
                "DRAVO_SERVER_TRUSTED_PROXIES", "DRAVO_LIMITS_START_PER_SECOND",
            ]),
            value in "\\PC{0,120}",
        ) {
            if let Err(e) = Config::load_from(None, env(&[(key, &value)])) {
                let message = e.to_string();
                let dotted = key
                    .trim_start_matches("DRAVO_")
                    .to_ascii_lowercase()
                    .replacen('_', ".", 1);
                let section = dotted.split('.').next().unwrap().to_owned();
                prop_assert!(
                    message.contains(&section),
                    "{key}={value:?}: {message}"
                );
            }
        }
    }
}
