//! Refuses outbounds that depend on themselves before anything runs. A group member or a
//! `detour` that leads back to the outbound would make every connection through it call
//! itself without end; Go refuses such a config at start with
//! `circular outbound dependency: a -> b -> a`, and so does sb.

use std::collections::HashMap;

/// The first dependency cycle among `outbounds` (tag, tags it depends on), looked for in
/// config order, as the path `[a, b, a]`. Tags that name no outbound are ignored (the
/// config checker reports them). Iterative, so a long chain cannot exhaust the stack.
pub fn find_cycle(outbounds: &[(String, Vec<String>)]) -> Option<Vec<String>> {
    let index: HashMap<&str, usize> = outbounds
        .iter()
        .enumerate()
        .map(|(i, (tag, _))| (tag.as_str(), i))
        .collect();
    // 0: not seen, 1: on the current path, 2: done (no cycle through it).
    let mut state = vec![0u8; outbounds.len()];
    for start in 0..outbounds.len() {
        if state[start] != 0 {
            continue;
        }
        state[start] = 1;
        // The current path: (outbound, how many of its dependencies were looked at).
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some(&(node, next)) = path.last() {
            let Some(dep) = outbounds[node].1.get(next) else {
                state[node] = 2;
                path.pop();
                continue;
            };
            if let Some(top) = path.last_mut() {
                top.1 += 1;
            }
            let Some(&j) = index.get(dep.as_str()) else {
                continue;
            };
            match state[j] {
                0 => {
                    state[j] = 1;
                    path.push((j, 0));
                }
                1 => {
                    let from = path.iter().position(|&(n, _)| n == j).unwrap_or(0);
                    let mut cycle: Vec<String> = path[from..]
                        .iter()
                        .map(|&(n, _)| outbounds[n].0.clone())
                        .collect();
                    cycle.push(outbounds[j].0.clone());
                    return Some(cycle);
                }
                _ => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        edges
            .iter()
            .map(|(t, d)| (t.to_string(), d.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn cycles_are_found_with_their_path() {
        assert_eq!(
            find_cycle(&graph(&[("u", &["u", "d"]), ("d", &[])])).unwrap(),
            ["u", "u"]
        );
        let g = graph(&[("d", &[]), ("a", &["b", "d"]), ("b", &["a"])]);
        assert_eq!(find_cycle(&g).unwrap(), ["a", "b", "a"]);
        // Entered from outside the cycle: the path is the cycle itself.
        let g = graph(&[("x", &["a"]), ("a", &["s"]), ("s", &["a"])]);
        assert_eq!(find_cycle(&g).unwrap(), ["a", "s", "a"]);
    }

    #[test]
    fn shared_members_and_unknown_tags_are_not_cycles() {
        let g = graph(&[
            ("g1", &["d", "p"]),
            ("g2", &["g1", "d", "missing"]),
            ("p", &["d"]),
            ("d", &[]),
        ]);
        assert_eq!(find_cycle(&g), None);
        let long: Vec<(String, Vec<String>)> = (0..100_000)
            .map(|i| (format!("o{i}"), vec![format!("o{}", i + 1)]))
            .collect();
        assert_eq!(find_cycle(&long), None);
    }
}
