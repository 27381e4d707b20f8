//! DNS names the config language uses: record types (`query_type`), response codes
//! (`rcode`), and zone-format records of the `predefined` action, which Go re-renders as
//! `name<TAB>ttl<TAB>IN<TAB>TYPE<TAB>rdata` with a default TTL of 3600.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Record type names and numbers, as Go's DNS library names them.
const TYPES: &[(&str, u16)] = &[
    ("None", 0),
    ("A", 1),
    ("NS", 2),
    ("MD", 3),
    ("MF", 4),
    ("CNAME", 5),
    ("SOA", 6),
    ("MB", 7),
    ("MG", 8),
    ("MR", 9),
    ("NULL", 10),
    ("PTR", 12),
    ("HINFO", 13),
    ("MINFO", 14),
    ("MX", 15),
    ("TXT", 16),
    ("RP", 17),
    ("AFSDB", 18),
    ("X25", 19),
    ("ISDN", 20),
    ("RT", 21),
    ("NSAP-PTR", 23),
    ("SIG", 24),
    ("KEY", 25),
    ("PX", 26),
    ("GPOS", 27),
    ("AAAA", 28),
    ("LOC", 29),
    ("NXT", 30),
    ("EID", 31),
    ("NIMLOC", 32),
    ("SRV", 33),
    ("ATMA", 34),
    ("NAPTR", 35),
    ("KX", 36),
    ("CERT", 37),
    ("DNAME", 39),
    ("OPT", 41),
    ("APL", 42),
    ("DS", 43),
    ("SSHFP", 44),
    ("IPSECKEY", 45),
    ("RRSIG", 46),
    ("NSEC", 47),
    ("DNSKEY", 48),
    ("DHCID", 49),
    ("NSEC3", 50),
    ("NSEC3PARAM", 51),
    ("TLSA", 52),
    ("SMIMEA", 53),
    ("HIP", 55),
    ("NINFO", 56),
    ("RKEY", 57),
    ("TALINK", 58),
    ("CDS", 59),
    ("CDNSKEY", 60),
    ("OPENPGPKEY", 61),
    ("CSYNC", 62),
    ("ZONEMD", 63),
    ("SVCB", 64),
    ("HTTPS", 65),
    ("SPF", 99),
    ("UINFO", 100),
    ("UID", 101),
    ("GID", 102),
    ("UNSPEC", 103),
    ("NID", 104),
    ("L32", 105),
    ("L64", 106),
    ("LP", 107),
    ("EUI48", 108),
    ("EUI64", 109),
    ("NXNAME", 128),
    ("TKEY", 249),
    ("TSIG", 250),
    ("IXFR", 251),
    ("AXFR", 252),
    ("MAILB", 253),
    ("MAILA", 254),
    ("ANY", 255),
    ("URI", 256),
    ("CAA", 257),
    ("AVC", 258),
    ("AMTRELAY", 260),
    ("RESINFO", 261),
    ("TA", 32768),
    ("DLV", 32769),
    ("Reserved", 65535),
];

/// Response codes by name.
const RCODES: &[(&str, u16)] = &[
    ("NOERROR", 0),
    ("FORMERR", 1),
    ("SERVFAIL", 2),
    ("NXDOMAIN", 3),
    ("NOTIMP", 4),
    ("NOTIMPL", 4),
    ("REFUSED", 5),
    ("YXDOMAIN", 6),
    ("YXRRSET", 7),
    ("NXRRSET", 8),
    ("NOTAUTH", 9),
    ("NOTZONE", 10),
    ("DSOTYPENI", 11),
    ("BADSIG", 16),
    ("BADKEY", 17),
    ("BADTIME", 18),
    ("BADMODE", 19),
    ("BADNAME", 20),
    ("BADALG", 21),
    ("BADTRUNC", 22),
    ("BADCOOKIE", 23),
];

/// A record type from `query_type`: a name (case-sensitive, as in Go) or a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueryType(pub u16);

impl QueryType {
    /// The type's name, when it has one.
    pub fn name(self) -> Option<&'static str> {
        TYPES.iter().find(|(_, n)| *n == self.0).map(|(s, _)| *s)
    }
}

impl<'de> Deserialize<'de> for QueryType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = QueryType;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a DNS record type name such as \"A\" or a number 0-65535")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<QueryType, E> {
                u16::try_from(n)
                    .map(QueryType)
                    .map_err(|_| E::custom(format!("DNS query type {n} is out of range 0-65535")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<QueryType, E> {
                TYPES
                    .iter()
                    .find(|(name, _)| *name == s)
                    .map(|(_, n)| QueryType(*n))
                    .ok_or_else(|| {
                        let hint = TYPES
                            .iter()
                            .find(|(name, _)| name.eq_ignore_ascii_case(s))
                            .map(|(name, _)| {
                                format!(" (names are case-sensitive: did you mean {name:?}?)")
                            })
                            .unwrap_or_default();
                        E::custom(format!("unknown DNS query type: {s:?}{hint}"))
                    })
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for QueryType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.name() {
            Some(n) => s.serialize_str(n),
            None => s.serialize_u16(self.0),
        }
    }
}

/// A response code: a name from Go's table or a number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rcode(pub String);

impl Rcode {
    /// The numeric code (names from Go's table, or the number as written).
    pub fn code(&self) -> Option<u16> {
        RCODES
            .iter()
            .find(|(name, _)| *name == self.0)
            .map(|(_, c)| *c)
            .or_else(|| self.0.parse().ok())
    }
}

impl<'de> Deserialize<'de> for Rcode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Rcode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a response code such as \"NXDOMAIN\"")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Rcode, E> {
                Ok(Rcode(n.to_string()))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Rcode, E> {
                if RCODES.iter().any(|(name, _)| *name == s) {
                    Ok(Rcode(s.to_string()))
                } else {
                    Err(E::custom(format!("unknown rcode: {s}")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Rcode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.parse::<u64>() {
            Ok(n) => s.serialize_u64(n),
            Err(_) => s.serialize_str(&self.0),
        }
    }
}

/// One zone-format record of a `predefined` answer, kept in Go's canonical rendering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record(pub String);

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// Parses `name [ttl] [class] type rdata...` and renders it as Go does.
pub fn parse_record(text: &str) -> Result<String, String> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let Some((name, rest)) = tokens.split_first() else {
        return Err("dns: empty record".into());
    };
    let mut rest = rest;
    let mut ttl: u32 = 3600;
    let mut class = "IN";
    loop {
        match rest.first() {
            Some(t) if t.bytes().all(|b| b.is_ascii_digit()) => {
                ttl = t.parse().map_err(|_| format!("dns: not a TTL: {t:?}"))?;
                rest = &rest[1..];
            }
            Some(t)
                if ["IN", "CH", "HS", "CS", "NONE", "ANY"]
                    .contains(&t.to_ascii_uppercase().as_str())
                    && rest.len() > 1 =>
            {
                class = t;
                rest = &rest[1..];
            }
            _ => break,
        }
    }
    let Some((ty, rdata)) = rest.split_first() else {
        return Err(format!("dns: not a TTL: {:?}", name));
    };
    let ty_upper = ty.to_ascii_uppercase();
    if !TYPES.iter().any(|(n, _)| *n == ty_upper) {
        return Err(format!("dns: not a TTL: {ty:?}"));
    }
    let rdata = match ty_upper.as_str() {
        "A" => {
            let ip: Ipv4Addr = rdata
                .first()
                .and_then(|a| a.parse().ok())
                .ok_or("dns: bad A A")?;
            ip.to_string()
        }
        "AAAA" => {
            let ip: Ipv6Addr = rdata
                .first()
                .and_then(|a| a.parse().ok())
                .ok_or("dns: bad AAAA AAAA")?;
            ip.to_string()
        }
        "CNAME" | "NS" | "PTR" | "DNAME" => fqdn(rdata.first().ok_or("dns: bad name")?),
        "MX" => match rdata {
            [pref, host] => format!("{pref}\t{}", fqdn(host)),
            _ => return Err("dns: bad MX Mx".into()),
        },
        _ => rdata.join(" "),
    };
    if rdata.is_empty() && ty_upper != "TXT" {
        return Err(format!("dns: bad {ty_upper} rdata"));
    }
    Ok(format!(
        "{}\t{ttl}\t{}\t{ty_upper}\t{rdata}",
        fqdn(name),
        class.to_ascii_uppercase()
    ))
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_record(&s).map(Record).map_err(de::Error::custom)
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_render_like_go() {
        assert_eq!(
            parse_record("a.example. IN A 127.0.0.1").unwrap(),
            "a.example.\t3600\tIN\tA\t127.0.0.1"
        );
        assert_eq!(
            parse_record("aaaa.example. 60 IN AAAA ::1").unwrap(),
            "aaaa.example.\t60\tIN\tAAAA\t::1"
        );
        assert_eq!(
            parse_record("txt.example. 300 IN TXT \"hello world\"").unwrap(),
            "txt.example.\t300\tIN\tTXT\t\"hello world\""
        );
        assert!(parse_record("garbage").is_err());
    }
}
