//! tor's control-protocol reply parser (`sb_adapters::proto::tor_control::Parser`), which
//! the `tor` outbound's external mode reads tor's answers with, fed the input's lines.
//!
//! Checked: no panic; a reply never has more lines than were fed, nor a line longer than
//! the parser's bound; quoting any text for SETCONF and unquoting it gives the text back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sb_adapters::proto::tor_control::{quote, unquote, Parser, MAX_LINE};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parser = Parser::default();
    let mut fed = 0;
    for line in text.split('\n') {
        fed += 1;
        match parser.line(line.trim_end_matches('\r')) {
            Ok(Some(reply)) => {
                assert!(reply.lines.len() <= fed);
                assert!(reply.lines.iter().all(|l| l.len() <= MAX_LINE));
                let _ = reply.value("net/listeners/socks");
                parser = Parser::default();
                fed = 0;
            }
            Ok(None) => {}
            Err(_) => {
                parser = Parser::default();
                fed = 0;
            }
        }
    }
    assert_eq!(unquote(&quote(&text)), text);
});
