//! The scalar shapes sing-box configs use everywhere: listable fields, Go durations,
//! `udp_timeout`, firewall marks, domain strategies, networks, port ranges and prefixes.
//! Each decodes exactly what Go 1.14 accepts and encodes the way `sing-box format` writes it.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

mod memory;
pub use memory::MemoryBytes;

/// A field written either as one value or as an array of values (Go's `badoption.Listable`).
/// `format` writes a one-element list back as the bare value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listable<T>(pub Vec<T>);

impl<T> Default for Listable<T> {
    fn default() -> Self {
        Listable(Vec::new())
    }
}

impl<T> Listable<T> {
    /// True when nothing was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The values.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Listable<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Listable<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value or an array of values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(Listable(out))
            }
        }
        d.deserialize_newtype_struct(crate::de::LISTABLE, V(std::marker::PhantomData))
    }
}

impl<T: Serialize> Serialize for Listable<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.len() == 1 {
            // A written one-element list is not empty, even when its element is zero.
            return Keep(&self.0[0]).serialize(s);
        }
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for v in &self.0 {
            seq.serialize_element(v)?;
        }
        seq.end()
    }
}

/// The key of the one-member object that marks a value `format` must keep even when it is a
/// zero value (Go keeps pointer fields and non-empty lists). `format::prune` unwraps it.
pub const KEEP: &str = "$sb::keep";

/// Serializes the value marked for keeping (see [`KEEP`]).
pub struct Keep<'a, T>(pub &'a T);

impl<T: Serialize> Serialize for Keep<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(KEEP, self.0)?;
        m.end()
    }
}

/// `serialize_with` for optional fields Go declares as pointers: a set zero value is kept.
pub fn keep_some<T: Serialize, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) => Keep(x).serialize(s),
        None => s.serialize_none(),
    }
}

/// Decodes a field written either as a boolean shorthand or as an object of options
/// (`udp_over_tcp`, `optimistic`, `ssh_server`): `from_bool` builds the options for the
/// shorthand.
pub fn bool_or_object<'de, D, T>(d: D, from_bool: fn(bool) -> T) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(fn(bool) -> T);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a boolean or an object")
        }
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<T, E> {
            Ok((self.0)(b))
        }
        fn visit_map<A: de::MapAccess<'de>>(self, m: A) -> Result<T, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(m))
        }
    }
    d.deserialize_any(V(from_bool))
}

/// Implements serde for a type through `FromStr`/`Display`, decoding from a JSON string.
macro_rules! string_serde {
    ($t:ty, $what:expr) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$t, E> {
                        s.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

/// A Go `time.Duration`, in nanoseconds. Written as a Go duration string (`"5m"`, `"1h30m"`,
/// `"300ms"`, and sing-box's `d` for days); `format` writes Go's canonical form (`"5m0s"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoDuration(pub i64);

impl GoDuration {
    /// Zero means "not set" throughout sing-box options.
    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }
    /// As a `std::time::Duration` (negative values become zero).
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(u64::try_from(self.0).unwrap_or(0))
    }
    /// From whole seconds.
    pub const fn from_secs(s: i64) -> GoDuration {
        GoDuration(s * 1_000_000_000)
    }
}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for GoDuration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            DurationError(format!(
                "invalid duration {input:?}: {why} (write a Go duration such as \"300ms\", \"5m\" or \"1h30m\")"
            ))
        };
        let mut s = input;
        let neg = match s.as_bytes().first() {
            Some(b'-') => {
                s = &s[1..];
                true
            }
            Some(b'+') => {
                s = &s[1..];
                false
            }
            _ => false,
        };
        if s == "0" {
            return Ok(GoDuration(0));
        }
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let mut total: u128 = 0;
        while !s.is_empty() {
            let num_len = s
                .bytes()
                .position(|b| !(b.is_ascii_digit() || b == b'.'))
                .unwrap_or(s.len());
            let (num, rest) = s.split_at(num_len);
            if num.is_empty() || num == "." || num.matches('.').count() > 1 {
                return Err(bad("expected a number"));
            }
            let unit_len = rest
                .char_indices()
                .find(|(_, c)| c.is_ascii_digit() || *c == '.')
                .map_or(rest.len(), |(i, _)| i);
            let (unit, tail) = rest.split_at(unit_len);
            let scale: u128 = match unit {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                "d" => 86_400_000_000_000,
                "" => return Err(bad("missing unit")),
                other => return Err(bad(&format!("unknown unit {other:?}"))),
            };
            let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
            let int: u128 = if int_part.is_empty() {
                0
            } else {
                int_part.parse().map_err(|_| bad("number too large"))?
            };
            let mut value = int.checked_mul(scale).ok_or_else(|| bad("overflow"))?;
            let mut div = scale;
            for d in frac_part.bytes().take(30) {
                div /= 10;
                if div == 0 {
                    break;
                }
                value += u128::from(d - b'0') * div;
            }
            total = total.checked_add(value).ok_or_else(|| bad("overflow"))?;
            if total > i64::MAX as u128 {
                return Err(bad("overflow"));
            }
            s = tail;
        }
        let v = i64::try_from(total).map_err(|_| bad("overflow"))?;
        Ok(GoDuration(if neg { -v } else { v }))
    }
}

/// Writes `v / 10^prec` with its fraction, trailing zeros dropped (Go's `fmtFrac`+`fmtInt`).
fn frac(v: u64, prec: u32) -> String {
    let p = 10u64.pow(prec);
    let (int, rem) = (v / p, v % p);
    if rem == 0 {
        return int.to_string();
    }
    let digits = format!("{rem:0width$}", width = prec as usize);
    format!("{int}.{}", digits.trim_end_matches('0'))
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = self.0.unsigned_abs();
        if self.0 < 0 {
            f.write_str("-")?;
        }
        if u == 0 {
            return f.write_str("0s");
        }
        if u < 1_000 {
            return write!(f, "{u}ns");
        }
        if u < 1_000_000 {
            return write!(f, "{}µs", frac(u, 3));
        }
        if u < 1_000_000_000 {
            return write!(f, "{}ms", frac(u, 6));
        }
        let secs = u / 1_000_000_000;
        let sub = u % 1_000_000_000;
        let mins = secs / 60;
        if mins > 0 {
            let hours = mins / 60;
            if hours > 0 {
                write!(f, "{hours}h")?;
            }
            write!(f, "{}m", mins % 60)?;
        }
        write!(f, "{}s", frac((secs % 60) * 1_000_000_000 + sub, 9))
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = GoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"5m\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<GoDuration, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Zero is "unset": written as 0 so that `format` drops it as Go's omitempty does.
        if self.0 == 0 {
            return s.serialize_u8(0);
        }
        s.collect_str(self)
    }
}

/// `udp_timeout`: a Go duration string, or an integer number of seconds (Go's
/// `UDPTimeoutCompat`). `format` writes the duration form.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct UdpTimeout(pub GoDuration);

impl<'de> Deserialize<'de> for UdpTimeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = UdpTimeout;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string or an integer number of seconds")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<UdpTimeout, E> {
                let secs = i64::try_from(n)
                    .ok()
                    .filter(|s| *s <= i64::MAX / 1_000_000_000)
                    .ok_or_else(|| E::custom(format!("udp_timeout {n} seconds is too large")))?;
                Ok(UdpTimeout(GoDuration::from_secs(secs)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<UdpTimeout, E> {
                Err(E::custom(format!(
                    "expected a duration string or an integer number of seconds, found number {n}"
                )))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<UdpTimeout, E> {
                Err(E::custom(format!(
                    "expected a duration string or an integer number of seconds, found number {n}"
                )))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<UdpTimeout, E> {
                s.parse().map(UdpTimeout).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A Linux firewall mark: an integer, or a string parsed like Go's `strconv.ParseUint(s, 0, 32)`
/// (`"0x2023"`, `"8227"`, `"0o17"`). `format` writes `"0x…"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FwMark(pub u32);

impl<'de> Deserialize<'de> for FwMark {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FwMark;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer 0-4294967295 or a string such as \"0x2023\"")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<FwMark, E> {
                u32::try_from(n).map(FwMark).map_err(|_| {
                    E::custom(format!(
                        "expected an integer 0-4294967295 or a string such as \"0x2023\", found number {n}"
                    ))
                })
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<FwMark, E> {
                // Go's ParseUint(s, 0, 32) also allows digit-separating underscores.
                let t = s.trim_start_matches('+');
                let lower = t.to_ascii_lowercase().replace('_', "");
                let parsed = if let Some(h) = lower.strip_prefix("0x") {
                    u32::from_str_radix(h, 16)
                } else if let Some(o) = lower.strip_prefix("0o") {
                    u32::from_str_radix(o, 8)
                } else if let Some(b) = lower.strip_prefix("0b") {
                    u32::from_str_radix(b, 2)
                } else if lower.len() > 1 && lower.starts_with('0') {
                    u32::from_str_radix(&lower[1..], 8)
                } else {
                    lower.parse()
                };
                parsed.map(FwMark).map_err(|_| {
                    E::custom(format!(
                        "invalid mark {s:?}: expected a 32-bit number such as \"0x2023\""
                    ))
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for FwMark {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == 0 {
            return s.serialize_u8(0);
        }
        s.collect_str(&format_args!("{:#x}", self.0))
    }
}

/// How a domain is turned into addresses (Go's `DomainStrategy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum DomainStrategy {
    /// Use what the resolver returns.
    #[default]
    #[serde(rename = "", alias = "as_is")]
    AsIs,
    /// Both, IPv4 first.
    #[serde(rename = "prefer_ipv4")]
    PreferIpv4,
    /// Both, IPv6 first.
    #[serde(rename = "prefer_ipv6")]
    PreferIpv6,
    /// IPv4 only.
    #[serde(rename = "ipv4_only")]
    Ipv4Only,
    /// IPv6 only.
    #[serde(rename = "ipv6_only")]
    Ipv6Only,
}

/// A transport network for inbounds/outbounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// A network a route rule can match (adds ICMP, 1.13+).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleNetwork {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP.
    Icmp,
}

/// A port range written `"1000:2000"`, `":3000"` or `"4000:"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// First port (0 when open).
    pub start: u16,
    /// Last port (65535 when open).
    pub end: u16,
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("bad port range: {s} (write \"1000:2000\", \":3000\" or \"4000:\")");
        let (a, b) = s.split_once(':').ok_or_else(bad)?;
        let start = if a.is_empty() {
            0
        } else {
            a.parse().map_err(|_| bad())?
        };
        let end = if b.is_empty() {
            u16::MAX
        } else {
            b.parse().map_err(|_| bad())?
        };
        if start > end {
            return Err(bad());
        }
        Ok(PortRange { start, end })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.start, self.end) {
            (0, e) => write!(f, ":{e}"),
            (s, u16::MAX) => write!(f, "{s}:"),
            (s, e) => write!(f, "{s}:{e}"),
        }
    }
}

/// An IP prefix that must carry its length (`10.0.0.1/24`); the address bits are kept as written,
/// like Go's `netip.Prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix(pub ipnet::IpNet);

impl FromStr for Prefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if !s.contains('/') {
            return Err(format!("invalid prefix {s:?}: no '/' (write an address with its prefix length, such as \"172.19.0.1/30\")"));
        }
        s.parse::<ipnet::IpNet>()
            .map(Prefix)
            .map_err(|_| format!("invalid prefix {s:?}: expected an IP address with a prefix length such as \"10.0.0.0/8\""))
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A rule CIDR: a prefix, or a bare address meaning a single host (Go's rule `ip_cidr`).
/// Kept as written, because `format` writes these strings back unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The text as written.
    pub text: String,
    /// The parsed network.
    pub net: ipnet::IpNet,
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let net = if s.contains('/') {
            s.parse::<ipnet::IpNet>().map_err(|_| {
                let len_bad = s
                    .split_once('/')
                    .is_some_and(|(a, _)| a.parse::<IpAddr>().is_ok());
                if len_bad {
                    format!("invalid CIDR {s:?}: prefix length out of range")
                } else {
                    format!("invalid CIDR {s:?}: expected an IP address or prefix such as \"10.0.0.0/8\"")
                }
            })?
        } else {
            let ip: IpAddr = s.parse().map_err(|_| {
                format!(
                    "invalid CIDR {s:?}: expected an IP address or prefix such as \"10.0.0.0/8\""
                )
            })?;
            ipnet::IpNet::from(ip)
        };
        Ok(Cidr {
            text: s.to_string(),
            net,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// An IP address written as a string (listen addresses, bind addresses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ip(pub IpAddr);

impl FromStr for Ip {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse::<IpAddr>()
            .map(Ip)
            .map_err(|_| format!("invalid IP address {s:?}"))
    }
}

impl fmt::Display for Ip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

string_serde!(PortRange, "a port range such as \"1000:2000\"");
string_serde!(Prefix, "an IP prefix such as \"10.0.0.0/8\"");
string_serde!(Cidr, "an IP address or prefix");
string_serde!(Ip, "an IP address");

#[cfg(test)]
mod tests;
