#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use sb_config::model::outbound::TorOutbound;

fn outbound(f: impl FnOnce(&mut TorOutbound)) -> TorOutbound {
    let mut o = TorOutbound::default();
    f(&mut o);
    o
}

fn error(o: &TorOutbound) -> String {
    match Settings::from_config("t", o) {
        Ok(_) => panic!("accepted: {o:?}"),
        Err(e) => e.to_string(),
    }
}

/// The config as arti shows it (its storage paths are not public otherwise).
fn debug(s: &Settings) -> String {
    match &s.mode {
        Mode::Arti(c) => format!("{c:?}"),
        Mode::External(e) => format!("{e:?}"),
    }
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sb-tor-settings-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn defaults_use_a_private_scratch_directory() {
    let s = Settings::from_config("my tag", &TorOutbound::default()).unwrap();
    let scratch = s.scratch.clone().expect("a scratch directory");
    let name = scratch.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("sb-tor-my_tag-"), "{name}");
    assert!(debug(&s).contains(&format!("{}/state", scratch.display())));
}

#[test]
fn data_directory_expands_the_environment_as_go_and_nothing_else() {
    // Go's os.ExpandEnv; arti's own `~` and `${ARTI_...}` expansion must not apply.
    let home = std::env::var("HOME").unwrap_or_default();
    let o = outbound(|o| o.data_directory = "/tmp/sb-${HOME}-~x-$".into());
    let s = Settings::from_config("t", &o).unwrap();
    assert!(s.scratch.is_none());
    let want = format!(r#"literal: "/tmp/sb-{home}-~x-$/state""#);
    assert!(debug(&s).contains(&want), "{}", debug(&s));
    assert_eq!(expand_env("$NO_SUCH_VAR_SB/x"), "/x");
    assert_eq!(expand_env("a$"), "a$");
}

#[test]
fn an_external_tor_is_checked_at_build() {
    let o = outbound(|o| o.executable_path = "/nonexistent/tor".into());
    assert_eq!(
        error(&o),
        "executable_path: /nonexistent/tor: no such executable"
    );
    let o = outbound(|o| {
        o.executable_path = "/bin/sh".into();
        o.arti_config = "/etc/arti.toml".into();
    });
    assert!(error(&o).starts_with("arti_config is for Tor in process"));
    let o = outbound(|o| {
        o.executable_path = "sh".into();
        o.extra_args = vec!["--TestingTorNetwork".into(), "1".into()];
        o.torrc.insert("ExitNodes".into(), "{de}".into());
    });
    let s = Settings::from_config("t", &o).unwrap();
    let Mode::External(e) = s.mode else {
        panic!("not external")
    };
    assert!(e.executable.ends_with("sh") && e.executable.is_absolute());
    // torrc goes to tor as it is: every key tor knows works.
    assert_eq!(e.torrc["ExitNodes"], "{de}");
    assert_eq!(Some(e.data_directory), s.scratch);
}

#[test]
fn torrc_keys_without_an_arti_equivalent_are_named() {
    for key in [
        "ExitNodes",
        "EntryNodes",
        "StrictNodes",
        "DataDirectory",
        "Socks5Proxy",
    ] {
        let o = outbound(|o| {
            o.torrc.insert(key.into(), "1".into());
        });
        let e = error(&o);
        assert!(
            e.starts_with(&format!("torrc.{key}: not supported by arti")),
            "{e}"
        );
    }
}

#[test]
fn torrc_keys_with_an_arti_equivalent_are_mapped() {
    let o = outbound(|o| {
        for (k, v) in [
            ("LongLivedPorts", "22, 443"),
            ("ReachableAddresses", "accept *:443, *:80"),
            ("EnforceDistinctSubnets", "0"),
            ("MaxCircuitDirtiness", "10 minutes"),
            ("ConnectionPadding", "0"),
        ] {
            o.torrc.insert(k.into(), v.into());
        }
    });
    Settings::from_config("t", &o).unwrap();
    assert_eq!(parse_seconds("10 minutes"), Some(600));
    assert_eq!(parse_seconds("600"), Some(600));
    assert_eq!(parse_seconds("ten"), None);
    assert_eq!(
        torrc_option("enforcedistinctsubnets", "0").unwrap(),
        [
            "path_rules.ipv4_subnet_family_prefix = 33",
            "path_rules.ipv6_subnet_family_prefix = 129"
        ]
    );
}

#[test]
fn bad_torrc_values_are_named() {
    let o = outbound(|o| {
        o.torrc.insert("LongLivedPorts".into(), "22,x".into());
    });
    assert_eq!(
        error(&o),
        r#"torrc.LongLivedPorts: invalid value "22,x": a comma-separated list of ports"#
    );
    let o = outbound(|o| {
        o.torrc
            .insert("ReachableAddresses".into(), "reject *:25".into());
    });
    assert!(error(&o).starts_with("torrc.ReachableAddresses: invalid value"));
}

#[test]
fn arti_config_is_read_and_its_unknown_keys_refused() {
    let good = temp_file(
        "arti.toml",
        "[path_rules]\nipv4_subnet_family_prefix = 33\n[address_filter]\nallow_local_addrs = true\n",
    );
    let o = outbound(|o| o.arti_config = good.to_string_lossy().into_owned());
    Settings::from_config("t", &o).unwrap();

    let unknown = temp_file("arti.toml", "[path_rules]\nno_such_key = 1\n");
    let o = outbound(|o| o.arti_config = unknown.to_string_lossy().into_owned());
    let e = error(&o);
    assert!(
        e.contains("unknown key") && e.contains("no_such_key"),
        "{e}"
    );

    let missing = outbound(|o| o.arti_config = "/nonexistent/arti.toml".into());
    assert!(error(&missing).starts_with(r#"arti_config "/nonexistent/arti.toml": "#));
}

#[test]
fn arti_config_cannot_route_relays_around_the_dialer() {
    let proxy = temp_file(
        "arti.toml",
        "[channel]\noutbound_proxy = \"socks5://127.0.0.1:1080\"\n",
    );
    let o = outbound(|o| o.arti_config = proxy.to_string_lossy().into_owned());
    let e = error(&o);
    assert!(e.contains("channel.outbound_proxy cannot be set"), "{e}");
}

#[test]
fn the_outbound_wins_over_arti_config() {
    let file = temp_file(
        "arti.toml",
        "[storage]\nstate_dir = \"/tmp/from-arti/state\"\ncache_dir = \"/tmp/from-arti/cache\"\n",
    );
    // Without data_directory, arti_config's storage stands (sb's scratch default is under it).
    let o = outbound(|o| o.arti_config = file.to_string_lossy().into_owned());
    let s = Settings::from_config("t", &o).unwrap();
    assert!(debug(&s).contains("/tmp/from-arti/state"), "{}", debug(&s));
    // With it, the outbound's field wins.
    let o = outbound(|o| {
        o.arti_config = file.to_string_lossy().into_owned();
        o.data_directory = "/tmp/from-sb".into();
    });
    let s = Settings::from_config("t", &o).unwrap();
    assert!(debug(&s).contains("/tmp/from-sb/state"), "{}", debug(&s));
    assert!(!debug(&s).contains("/tmp/from-arti/state"));
}
