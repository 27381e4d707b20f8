use super::*;

fn obj(n: &Node) -> &Vec<Member> {
    match &n.kind {
        Kind::Object(m) => m,
        other => panic!("not an object: {other:?}"),
    }
}

#[test]
fn comments_and_trailing_commas() {
    let src = "// top\n{\"a\": 1, // one\n /* before b */ \"b\": [true, null,],}\n";
    let root = parse(src).unwrap();
    assert_eq!(root.leading, vec!["// top"]);
    let m = obj(&root);
    assert_eq!(m[0].key, "a");
    assert_eq!(m[0].value.trailing, vec!["// one"]);
    assert_eq!(m[1].value.leading, vec!["/* before b */"]);
    assert!(matches!(&m[1].value.kind, Kind::Array(v) if v.len() == 2));
}

#[test]
fn spans_point_at_values() {
    let src = "{\n  \"port\": \"80\"\n}";
    let root = parse(src).unwrap();
    let m = obj(&root);
    assert_eq!(line_col(src, m[0].value.span.start), (2, 11));
    assert_eq!(line_col(src, m[0].key_span.start), (2, 3));
}

#[test]
fn numbers_keep_their_text() {
    let root = parse("[18446744073709551617, -0, 1.5e3]").unwrap();
    let Kind::Array(v) = &root.kind else { panic!() };
    let Kind::Number(n) = &v[0].kind else {
        panic!()
    };
    assert_eq!(n.text, "18446744073709551617");
    assert_eq!(n.as_i128(), Some(18446744073709551617));
}

#[test]
fn escapes() {
    let root = parse(r#""a\"b\u00e9\ud83d\ude00\n""#).unwrap();
    assert_eq!(root.as_str(), Some("a\"bé😀\n"));
}

#[test]
fn syntax_errors_have_offsets() {
    for (src, at) in [
        ("{\"a\" 1}", 5),
        ("{\"a\": 1 \"b\": 2}", 8),
        ("[1,", 3),
        ("", 0),
        ("{} x", 3),
        ("01", 0),
        ("\"abc", 4),
        ("/* open", 0),
    ] {
        let e = parse(src).unwrap_err();
        assert_eq!(e.offset, at, "{src:?}: {e}");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let src = "[".repeat(100_000);
    assert!(parse(&src).unwrap_err().message.contains("nesting"));
}
