//! What the `tailscale` endpoint reads from tailscaled's Local API
//! (`sb_adapters::endpoint::tailscale`): the IPN bus split into lines (`Lines`, fed the
//! input in pieces the first byte chooses) and each line decoded as an `ipn.Notify`; the
//! whole input decoded as `status` and taken into the endpoint's view, which rules then
//! ask about addresses and names; an error body read as the daemon's text.
//!
//! Checked: no panic; no line handed out is longer than the bound; a line is never empty.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sb_adapters::endpoint::tailscale::view::View;
use sb_adapters::endpoint::tailscale::wire::{error_text, Status};
use sb_adapters::endpoint::tailscale::{decode_notify, Lines, MAX_NOTIFY};
use sb_core::adapter::PreferredRoutes;

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let mut lines = Lines::default();
    for piece in rest.chunks(usize::from(step).max(1)) {
        lines.push(piece);
        while let Ok(Some(line)) = lines.next_line() {
            assert!(!line.is_empty() && line.len() <= MAX_NOTIFY);
            let _ = decode_notify(&line);
        }
    }
    let _ = error_text(rest);
    if let Ok(status) = serde_json::from_slice::<Status>(rest) {
        let view = View::default();
        view.set_status(&status);
        let text = String::from_utf8_lossy(rest);
        let _ = view.preferred_domain(&text);
        let _ = view.preferred_domain("host.tail1234.ts.net");
        let _ = view.preferred_address("100.100.0.2".parse().unwrap_or([0, 0, 0, 0].into()));
        view.read(|s| {
            let _ = s.lookup(&text);
            let _ = s.why_not();
        });
    }
});
