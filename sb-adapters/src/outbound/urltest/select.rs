//! Which member a `urltest` group uses, decided from the members' last test results. This is
//! Go's `URLTestGroup.Select` and `performUpdateCheck` as pure functions, so the tolerance
//! and fallback rules are tested without sockets or clocks.
//!
//! The rules: the current member keeps its place unless another one is faster by more than
//! `tolerance` milliseconds; members are looked at in config order, so among members within
//! the tolerance of each other the earlier one wins; a member without a successful result is
//! never chosen; when no member has one, the first member that carries the network is used.

/// One member as the selection sees it.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// Its tag.
    pub tag: &'a str,
    /// Whether it carries the network being selected for (TCP or UDP).
    pub carries: bool,
    /// Its last successful delay in milliseconds; `None` when untested or failed.
    pub delay: Option<u16>,
}

/// The member to use and whether that choice rests on a test result (`false`: the fallback
/// to the first member carrying the network). `None` when no member carries the network.
pub fn select<'a>(
    members: &[Candidate<'a>],
    current: Option<&str>,
    tolerance: u16,
) -> Option<(&'a str, bool)> {
    // The current member starts as the best, with its own last delay.
    let mut best: Option<(&'a str, u32)> = current.and_then(|cur| {
        members
            .iter()
            .find(|m| m.tag == cur && m.carries)
            .and_then(|m| m.delay.map(|d| (m.tag, u32::from(d))))
    });
    for m in members.iter().filter(|m| m.carries) {
        let Some(delay) = m.delay.map(u32::from) else {
            continue;
        };
        match best {
            Some((_, min)) if min <= delay + u32::from(tolerance) => {}
            _ => best = Some((m.tag, delay)),
        }
    }
    match best {
        Some((tag, _)) => Some((tag, true)),
        None => members.iter().find(|m| m.carries).map(|m| (m.tag, false)),
    }
}

/// Go's update rule: the first decision is always taken (even a fallback); later, the member
/// changes only to a tested choice different from the current one. Returns the new member,
/// or `None` when the current one stays.
pub fn update<'a>(current: Option<&str>, choice: Option<(&'a str, bool)>) -> Option<&'a str> {
    let (tag, tested) = choice?;
    match current {
        None => Some(tag),
        Some(cur) if tested && cur != tag => Some(tag),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(tag: &str, delay: Option<u16>) -> Candidate<'_> {
        Candidate {
            tag,
            carries: true,
            delay,
        }
    }

    #[test]
    fn the_fastest_tested_member_wins_and_failed_ones_are_skipped() {
        let m = [c("dead", None), c("slow", Some(300)), c("fast", Some(20))];
        assert_eq!(select(&m, None, 50), Some(("fast", true)));
    }

    #[test]
    fn tolerance_keeps_the_current_member() {
        let m = [c("a", Some(100)), c("b", Some(60))];
        // 100 is not worse than 60 by more than 50: stay on a.
        assert_eq!(select(&m, Some("a"), 50), Some(("a", true)));
        // Worse by more than the tolerance: move.
        assert_eq!(select(&m, Some("a"), 39), Some(("b", true)));
    }

    #[test]
    fn tolerance_applies_in_config_order_on_the_first_choice() {
        let m = [c("slow", Some(320)), c("fast", Some(20))];
        assert_eq!(select(&m, None, 1000), Some(("slow", true)));
        assert_eq!(select(&m, None, 50), Some(("fast", true)));
    }

    #[test]
    fn a_zero_delay_is_a_delay() {
        let m = [c("lan", Some(0)), c("far", Some(300))];
        assert_eq!(select(&m, None, 50), Some(("lan", true)));
    }

    #[test]
    fn a_current_member_that_failed_gives_way() {
        let m = [c("a", None), c("b", Some(300))];
        assert_eq!(select(&m, Some("a"), 50), Some(("b", true)));
    }

    #[test]
    fn without_results_the_first_carrying_member_is_the_fallback() {
        let mut m = [c("tcp-only", None), c("both", None)];
        assert_eq!(select(&m, None, 50), Some(("tcp-only", false)));
        m[0].carries = false;
        assert_eq!(select(&m, None, 50), Some(("both", false)));
        m[1].carries = false;
        assert_eq!(select(&m, None, 50), None);
    }

    #[test]
    fn updates_follow_go() {
        // The first decision is taken even when it is only the fallback.
        assert_eq!(update(None, Some(("a", false))), Some("a"));
        // A fallback never replaces a chosen member (all failed: keep it).
        assert_eq!(update(Some("b"), Some(("a", false))), None);
        assert_eq!(update(Some("b"), Some(("a", true))), Some("a"));
        assert_eq!(update(Some("a"), Some(("a", true))), None);
        assert_eq!(update(Some("a"), None), None);
    }
}
