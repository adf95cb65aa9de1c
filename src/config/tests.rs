//! Unit tests of the configuration: defaults, file and environment layering, every
//! setting's checks and error messages, secret masking and `trunx config` output. Tests
//! must not read or mutate the process environment.

use super::*;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn defaults_are_valid() {
    let c = Config::load(None, env_of(&[])).unwrap();
    assert_eq!(c.api_addr, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.database_url.expose(), "sqlite://trunx.db");
    assert_eq!(c.rtp_ports, 10000..=20000);
    assert_eq!(c.amd_provider, AmdProviderKind::Builtin);
    assert_eq!(c.log_format, LogFormat::Text);
    assert!(!c.log_phone_numbers);
    assert!(c.trunk_uri.is_none());
    assert_eq!(c.voicemail_max_bytes, 20_000_000);
    assert_eq!((c.fetch_connect_timeout_s, c.fetch_timeout_s), (5, 30));
    assert!(c.fetch_allow_hosts.is_empty() && !c.fetch_allow_private);
    assert!(c.public_base_url.is_none());
}

#[test]
fn fetch_settings_parse_and_refuse_bad_values() {
    let c = Config::load(
        None,
        env_of(&[
            ("TRUNX_PUBLIC_BASE_URL", "https://api.trunx.io"),
            (
                "TRUNX_FETCH_ALLOW_HOSTS",
                "cdn.example.com, *.media.example",
            ),
            ("TRUNX_FETCH_ALLOW_PRIVATE", "true"),
            ("TRUNX_VOICEMAIL_MAX_BYTES", "5000000"),
        ]),
    )
    .unwrap();
    assert_eq!(
        c.public_base_url.as_ref().map(Url::as_str),
        Some("https://api.trunx.io/")
    );
    assert_eq!(
        c.fetch_allow_hosts,
        vec![
            HostPattern::Exact("cdn.example.com".into()),
            HostPattern::Subdomains("media.example".into())
        ]
    );
    assert!(c.fetch_allow_private);
    assert_eq!(c.voicemail_max_bytes, 5_000_000);
    for (env, value, key) in [
        ("TRUNX_PUBLIC_BASE_URL", "ftp://x", "public_base_url"),
        ("TRUNX_PUBLIC_BASE_URL", "https://x/?k=1", "public_base_url"),
        ("TRUNX_FETCH_ALLOW_HOSTS", "a.com, b c", "fetch_allow_hosts"),
        ("TRUNX_FETCH_ALLOW_PRIVATE", "maybe", "fetch_allow_private"),
        ("TRUNX_VOICEMAIL_MAX_BYTES", "20MB", "voicemail_max_bytes"),
        ("TRUNX_FETCH_TIMEOUT", "0", "fetch_timeout"),
        (
            "TRUNX_FETCH_CONNECT_TIMEOUT",
            "121",
            "fetch_connect_timeout",
        ),
    ] {
        let err = Config::load(None, env_of(&[(env, value)])).unwrap_err();
        assert!(
            matches!(err, ConfigError::Invalid { key: k, .. } if k == key),
            "{env}={value}: {err}"
        );
    }
}

#[test]
fn live_settings_parse_and_a_rejected_secret_is_not_echoed() {
    let c = Config::load(None, env_of(&[])).unwrap();
    assert!(!c.metrics_public && c.webhook_url.is_none() && c.webhook_secret.is_none());
    let c = Config::load(
        None,
        env_of(&[
            ("TRUNX_METRICS_PUBLIC", "true"),
            ("TRUNX_WEBHOOK_URL", "https://hooks.example.com/trunx"),
            ("TRUNX_WEBHOOK_SECRET", "0123456789abcdef0123"),
        ]),
    )
    .unwrap();
    assert!(c.metrics_public);
    assert_eq!(
        c.webhook_url.as_deref(),
        Some("https://hooks.example.com/trunx")
    );
    assert_eq!(
        c.webhook_secret.as_ref().map(Secret::expose),
        Some("0123456789abcdef0123")
    );
    assert!(!format!("{c:?}").contains("0123456789abcdef0123"));
    for (env, value, key) in [
        ("TRUNX_WEBHOOK_URL", "ftp://x.io/h", "webhook_url"),
        ("TRUNX_METRICS_PUBLIC", "yes please", "metrics_public"),
        ("TRUNX_WEBHOOK_SECRET", "short-secret", "webhook_secret"),
    ] {
        let err = Config::load(None, env_of(&[(env, value)])).unwrap_err();
        assert!(
            matches!(err, ConfigError::Invalid { key: k, .. } if k == key),
            "{env}={value}: {err}"
        );
        if key == "webhook_secret" {
            assert!(!err.to_string().contains(value), "{err}");
        }
    }
}

#[test]
fn env_overrides_file_overrides_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trunx.toml");
    std::fs::write(
        &file,
        "api_addr = \"0.0.0.0:9000\"\nsip_addr = \"127.0.0.1:5070\"\ntrunk_max_cps = 25\n",
    )
    .unwrap();
    let c = Config::load(Some(&file), env_of(&[("TRUNX_API_ADDR", "127.0.0.1:9100")])).unwrap();
    assert_eq!(c.api_addr.port(), 9100);
    assert_eq!(c.sip_addr.port(), 5070);
    assert_eq!(c.trunk_max_cps, 25.0);
    let shown = c.render();
    assert!(
        shown.contains("api_addr = \"127.0.0.1:9100\"  # env TRUNX_API_ADDR"),
        "{shown}"
    );
    assert!(
        shown.contains("sip_addr = \"127.0.0.1:5070\"  # file"),
        "{shown}"
    );
}

#[test]
fn errors_name_the_key_the_source_and_the_value() {
    let err = Config::load(None, env_of(&[("TRUNX_RTP_PORTS", "9-5")])).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("rtp_ports"), "{text}");
    assert!(text.contains("TRUNX_RTP_PORTS"), "{text}");
    assert!(text.contains("\"9-5\""), "{text}");

    let err = Config::load(None, env_of(&[("ACTIVE_AMD_PROVIDER", "magic")])).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                key: "amd_provider",
                ..
            }
        ),
        "{err}"
    );

    let err = Config::load(None, env_of(&[("TRUNX_API_ADDR", "localhost")])).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                key: "api_addr",
                ..
            }
        ),
        "{err}"
    );

    let err = Config::load(None, env_of(&[("TRUNX_TRUNK_URI", "http://x")])).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                key: "trunk_uri",
                ..
            }
        ),
        "{err}"
    );

    let err = Config::load(None, env_of(&[("TRUNX_TRUNK_MAX_CPS", "0")])).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                key: "trunk_max_cps",
                ..
            }
        ),
        "{err}"
    );

    let err = Config::load(None, env_of(&[("TRUNX_AGENT_URL", "http://a")])).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                key: "agent_url",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn file_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "api_adr = \"1.2.3.4:5\"\n").unwrap();
    let err = Config::load(Some(&bad), env_of(&[])).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKey { ref key, .. } if key == "api_adr"));

    std::fs::write(&bad, "api_addr = [1, 2]\n").unwrap();
    assert!(matches!(
        Config::load(Some(&bad), env_of(&[])),
        Err(ConfigError::File { .. })
    ));
    let missing = dir.path().join("missing.toml");
    assert!(matches!(
        Config::load(Some(&missing), env_of(&[])),
        Err(ConfigError::File { .. })
    ));
}

#[test]
fn secrets_are_masked_in_render_and_debug() {
    let c = Config::load(
        None,
        env_of(&[
            ("TRUNX_TRUNK_PASSWORD", "hunter2"),
            ("TRUNX_DATABASE_URL", "sqlite://secret-file.db"),
        ]),
    )
    .unwrap();
    let shown = c.render();
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("trunk_password = \"****\""), "{shown}");
    assert!(!format!("{c:?}").contains("hunter2"));
    assert_eq!(c.trunk_password.as_ref().unwrap().expose(), "hunter2");
    assert_eq!(
        mask_secret("database_url", "postgres://u:pw@db:5432/x"),
        "postgres://u:****@db:5432/x"
    );
}

#[test]
fn caller_id_policy_file_sets_the_figures_and_names_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("cid.toml");
    std::fs::write(&good, "max_calls_per_hour = 5\ncooling_rest_s = 600\n").unwrap();
    let path = good.display().to_string();
    let c = Config::load(None, env_of(&[("TRUNX_CALLER_ID_POLICY", &path)])).unwrap();
    assert_eq!(c.caller_id.max_calls_per_hour, 5);
    assert_eq!(c.caller_id.cooling_rest_s, 600);
    assert_eq!(c.caller_id.health_window, 50);
    assert_eq!(
        Config::load(None, env_of(&[]))
            .unwrap()
            .caller_id
            .max_calls_per_hour,
        30
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "max_calls_per_hr = 5\n").unwrap();
    let path = bad.display().to_string();
    let err = Config::load(None, env_of(&[("TRUNX_CALLER_ID_POLICY", &path)])).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                key: "caller_id_policy",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("max_calls_per_hr"), "{err}");
}

#[test]
fn smpp_and_sms_settings_parse_keep_the_password_secret_and_name_bad_values() {
    let c = Config::load(None, env_of(&[])).unwrap();
    assert!(c.smpp_addr.is_none());
    assert_eq!(
        c.sms_pacing,
        crate::campaign::sms_pacing::SmsPacingConfig::default(),
        "the defaults are the contract's pacing"
    );
    assert_eq!(c.smpp_window, 10);
    assert!(c.sms_stop_reply.is_some() && c.sms_help_reply.is_none());
    let c = Config::load(
        None,
        env_of(&[
            ("TRUNX_SMPP_ADDR", "smsc.example.net:2775"),
            ("TRUNX_SMPP_SYSTEM_ID", "acme"),
            ("TRUNX_SMPP_PASSWORD", "pw5678"),
            ("TRUNX_SMS_DID_PER_HOUR", "60"),
            ("TRUNX_SMS_MIN_GAP", "0"),
            ("TRUNX_SMS_GAP_JITTER", "2"),
            ("TRUNX_SMS_HELP_REPLY", "Acme: call 555-0100"),
        ]),
    )
    .unwrap();
    assert_eq!(c.smpp_addr.as_deref(), Some("smsc.example.net:2775"));
    assert_eq!(c.smpp_password.as_ref().unwrap().expose(), "pw5678");
    assert!(!format!("{c:?}").contains("pw5678"));
    assert!(c.render().contains("smpp_password = \"****\""));
    assert_eq!(
        (
            c.sms_pacing.max_per_hour,
            c.sms_pacing.min_gap_ms,
            c.sms_pacing.max_jitter_ms
        ),
        (60, 0, 2000)
    );
    for (env, value, key) in [
        ("TRUNX_SMPP_ADDR", "smsc.example.net", "smpp_addr"),
        ("TRUNX_SMPP_ADDR", "smsc:0", "smpp_addr"),
        ("TRUNX_SMPP_SYSTEM_ID", "sixteen-chars-xx", "smpp_system_id"),
        ("TRUNX_SMPP_PASSWORD", "ninechars", "smpp_password"),
        ("TRUNX_SMPP_WINDOW", "0", "smpp_window"),
        ("TRUNX_SMS_DID_PER_HOUR", "0", "sms_did_per_hour"),
        ("TRUNX_SMS_MIN_GAP", "-1", "sms_min_gap"),
        ("TRUNX_SMS_GAP_JITTER", "86401", "sms_gap_jitter"),
    ] {
        let err = Config::load(None, env_of(&[(env, value)])).unwrap_err();
        assert!(
            matches!(err, ConfigError::Invalid { key: k, .. } if k == key),
            "{env}={value}: {err}"
        );
    }
}

#[test]
fn agent_headers_parse_and_stay_secret() {
    let c = Config::load(
        None,
        env_of(&[(
            "TRUNX_AGENT_HEADERS",
            "Authorization: Bearer s3cr3t; X-Tenant: a",
        )]),
    )
    .unwrap();
    let h: Vec<(&str, &str)> = c
        .agent_headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.expose()))
        .collect();
    assert_eq!(h, [("Authorization", "Bearer s3cr3t"), ("X-Tenant", "a")]);
    assert!(!format!("{c:?}").contains("s3cr3t"));
    assert!(!c.render().contains("s3cr3t"));
    for bad in ["no colon", "Bad Name: x", ": x"] {
        let err = Config::load(None, env_of(&[("TRUNX_AGENT_HEADERS", bad)])).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    key: "agent_headers",
                    ..
                }
            ),
            "{bad}: {err}"
        );
    }
}

#[test]
fn the_external_amd_engine_needs_a_url_and_keeps_its_headers_secret() {
    let err = Config::load(None, env_of(&[("ACTIVE_AMD_PROVIDER", "external")])).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                key: "amd_external_url",
                ..
            }
        ),
        "{err}"
    );
    let c = Config::load(
        None,
        env_of(&[
            ("ACTIVE_AMD_PROVIDER", "external"),
            (
                "TRUNX_AMD_EXTERNAL_URL",
                "ws://127.0.0.1:9310/amd/v1/stream",
            ),
            (
                "TRUNX_AMD_EXTERNAL_HEADERS",
                "Authorization: Bearer amd-s3cr3t",
            ),
            ("TRUNX_AMD_EXTERNAL_TIMEOUT", "1.5"),
        ]),
    )
    .unwrap();
    assert_eq!(c.amd_provider, AmdProviderKind::External);
    assert_eq!(c.amd_external_timeout_ms, 1500);
    assert_eq!(c.amd_external_headers[0].1.expose(), "Bearer amd-s3cr3t");
    assert!(!format!("{c:?}").contains("amd-s3cr3t"));
    assert!(!c.render().contains("amd-s3cr3t"));
    assert!(c.render().contains("amd_external_headers = \"****\""));
    assert_eq!(
        Config::load(None, env_of(&[]))
            .unwrap()
            .amd_external_timeout_ms,
        4000
    );
    for (key, env, bad) in [
        ("amd_external_url", "TRUNX_AMD_EXTERNAL_URL", "http://x"),
        ("amd_external_timeout", "TRUNX_AMD_EXTERNAL_TIMEOUT", "0"),
        ("amd_external_timeout", "TRUNX_AMD_EXTERNAL_TIMEOUT", "61"),
    ] {
        let err = Config::load(None, env_of(&[(env, bad)])).unwrap_err();
        assert!(
            matches!(err, ConfigError::Invalid { key: k, .. } if k == key),
            "{bad}: {err}"
        );
    }
}
