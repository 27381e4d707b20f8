use super::*;

#[test]
fn go_duration_strings() {
    for (input, canonical) in [
        ("5m", "5m0s"),
        ("1h30m", "1h30m0s"),
        ("300ms", "300ms"),
        ("1d", "24h0m0s"),
        ("1.5s", "1.5s"),
        ("90s", "1m30s"),
        ("0", "0s"),
        ("1500us", "1.5ms"),
        ("2µs", "2µs"),
        ("-3s", "-3s"),
        ("1h0.5m", "1h0m30s"),
        ("10ns", "10ns"),
    ] {
        let d: GoDuration = input.parse().unwrap();
        assert_eq!(d.to_string(), canonical, "{input}");
        let again: GoDuration = canonical.parse().unwrap();
        assert_eq!(again, d, "{canonical}");
    }
}

#[test]
fn go_duration_rejects() {
    for bad in ["", "5", "5 seconds", "1x", "s", "..5s", "99999999999h"] {
        assert!(bad.parse::<GoDuration>().is_err(), "{bad:?}");
    }
    let e = "5 seconds".parse::<GoDuration>().unwrap_err().to_string();
    assert!(e.contains("unknown unit \" seconds\""), "{e}");
}

#[test]
fn port_ranges() {
    assert_eq!(
        "1000:2000".parse::<PortRange>().unwrap().to_string(),
        "1000:2000"
    );
    assert_eq!(":3000".parse::<PortRange>().unwrap().start, 0);
    assert_eq!("4000:".parse::<PortRange>().unwrap().end, 65535);
    assert!("1000-2000".parse::<PortRange>().is_err());
    assert!("2000:1000".parse::<PortRange>().is_err());
}

#[test]
fn cidrs_and_prefixes() {
    assert!("10.0.0.0/33"
        .parse::<Cidr>()
        .unwrap_err()
        .contains("out of range"));
    assert!("1.2.3.4".parse::<Cidr>().is_ok());
    assert!("172.19.0.1"
        .parse::<Prefix>()
        .unwrap_err()
        .contains("no '/'"));
    assert_eq!(
        "172.19.0.1/30".parse::<Prefix>().unwrap().to_string(),
        "172.19.0.1/30"
    );
}
