//! The domain item of a binary rule set: Go's "succinct" trie (a LOUDS-encoded set of
//! reversed domains), read back into `domain` and `domain_suffix` lists.
//!
//! Facts from Go's `sing/common/domain` (read, not copied): the set is a header byte, a
//! `leaves` bitmap, a `labelBitmap` (each a uvarint count of big-endian u64 words) and the
//! `labels` bytes. Nodes are numbered breadth-first from the root (0). Walking the label
//! bitmap from bit 0, each 0 bit is an edge from the current node to the next new node,
//! labelled by the next byte of `labels`; a 1 bit closes the current node. A node whose
//! `leaves` bit is set ends a key. Keys are domains reversed; a key ending in `\r` is a
//! literal suffix (`\r.example.com`: subdomains only), one ending in `\n` is a domain-suffix
//! rule (`example.com` and its subdomains), others are exact domains. Version 1 files spell
//! a suffix rule `x` as the exact domain `x` plus the literal suffix `.x`; both spellings are
//! folded back into `x`, as Go's `Dump` does.
//!
//! We rebuild the keys instead of matching on the trie: the router already has a domain
//! matcher, and one model for every rule set keeps the rest of sb simple.

use super::srs::Reader;
use std::collections::BTreeSet;

const PREFIX_LABEL: char = '\r';
const ROOT_LABEL: char = '\n';

fn words(r: &mut Reader<'_>) -> Result<Vec<u64>, String> {
    let n = r.count(8)?;
    (0..n).map(|_| r.u64_be()).collect()
}

fn bit(words: &[u64], i: usize) -> bool {
    words.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
}

/// Reads a domain set; returns `(domain, domain_suffix)`, each sorted.
pub(super) fn read_domains(r: &mut Reader<'_>) -> Result<(Vec<String>, Vec<String>), String> {
    let _header = r.u8()?;
    let leaves = words(r)?;
    let bitmap = words(r)?;
    let n_labels = r.count(1)?;
    let labels = r.bytes(n_labels)?;

    // parent[i] and label[i] of node i+1 (the root has neither).
    let mut parent: Vec<u32> = Vec::new();
    let mut node = 0usize;
    for i in 0..bitmap.len().saturating_mul(64) {
        if node > parent.len() {
            break;
        }
        if bit(&bitmap, i) {
            node += 1;
        } else {
            if parent.len() >= labels.len() {
                return Err("domain set: more edges than labels".into());
            }
            let p = u32::try_from(node).map_err(|_| "domain set too large")?;
            parent.push(p);
        }
    }
    if node <= parent.len() {
        return Err("domain set: truncated label bitmap".into());
    }
    if parent.len() != labels.len() {
        return Err("domain set: fewer edges than labels".into());
    }

    let mut exact = BTreeSet::new();
    let mut literal = BTreeSet::new();
    let mut suffix = BTreeSet::new();
    let mut key = Vec::new();
    for id in 0..=parent.len() {
        if !bit(&leaves, id) {
            continue;
        }
        // Walk up to the root: the bytes come out last first, which undoes the byte order of
        // the reversed key; the characters are then reversed back below.
        key.clear();
        let mut at = id;
        while at > 0 {
            key.push(labels[at - 1]);
            r.spend(1)?;
            at = parent[at - 1] as usize;
        }
        key.reverse();
        let reversed = std::str::from_utf8(&key).map_err(|_| "domain set: key is not UTF-8")?;
        let domain: String = reversed.chars().rev().collect();
        let mut chars = domain.chars();
        match chars.next() {
            Some(PREFIX_LABEL) => literal.insert(chars.as_str().to_string()),
            Some(ROOT_LABEL) => suffix.insert(chars.as_str().to_string()),
            Some(_) => exact.insert(domain),
            None => return Err("domain set: empty key".into()),
        };
    }
    for p in literal {
        // Version 1 spelling of a suffix rule: exact `x` plus literal `.x`.
        match p.strip_prefix('.') {
            Some(root) if exact.remove(root) => suffix.insert(root.to_string()),
            _ => suffix.insert(p),
        };
    }
    if suffix.iter().any(String::is_empty) {
        return Err("domain set: empty suffix".into());
    }
    Ok((exact.into_iter().collect(), suffix.into_iter().collect()))
}
