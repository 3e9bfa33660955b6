//! Request paths as Kadeploy reads them: empty segments are ignored (`//deployment/` is `/deployment`)
//! and each segment is percent-decoded on its own (`%2F` stays inside its segment, a broken escape such
//! as `%`, `%4` or `%zz` is kept as is, invalid UTF-8 becomes U+FFFD). [`normalize`] rewrites the path
//! before routing so that axum's router and `Path` extractor see exactly these segments: each one is
//! decoded as above, then encoded again canonically (every byte but letters, digits and `-._~` escaped),
//! which axum's decoding reverses exactly.

use axum::extract::Request;
use axum::http::Uri;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The bytes escaped in a canonical segment: all but RFC 3986's unreserved characters.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-decodes one path segment; an invalid escape (`%`, `%4`, `%zz`) is kept as is and invalid
/// UTF-8 becomes U+FFFD.
pub fn decode(seg: &str) -> String {
    percent_encoding::percent_decode_str(seg)
        .decode_utf8_lossy()
        .into_owned()
}

/// The canonical form of `path`: its non-empty segments, each decoded then escaped again, after a `/`.
pub fn canonical(path: &str) -> String {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| utf8_percent_encode(&decode(s), ESCAPED).to_string())
        .collect();
    format!("/{}", segments.join("/"))
}

/// Gives the request its canonical path (the query string is kept as sent).
pub fn normalize(mut req: Request) -> Request {
    let path = canonical(req.uri().path());
    let target = match req.uri().query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    // Cannot fail: the path is made of escapes and unreserved characters, the query was valid.
    if let Ok(uri) = target.parse::<Uri>() {
        *req.uri_mut() = uri;
    }
    req
}

#[cfg(test)]
mod tests {
    use super::{canonical, decode};
    use proptest::prelude::*;

    #[test]
    fn decodes_percent_escapes_and_keeps_broken_ones() {
        assert_eq!(decode("node%2D1"), "node-1");
        assert_eq!(decode("a%20b"), "a b");
        assert_eq!(decode("%C3%A9"), "é");
        assert_eq!(
            decode("%"),
            "%",
            "before f72496d this read past the end and panicked"
        );
        assert_eq!(decode("abc%"), "abc%");
        assert_eq!(decode("%4"), "%4");
        assert_eq!(decode("%zz%41"), "%zzA");
        assert_eq!(decode("%FF"), "\u{FFFD}");
    }

    #[test]
    fn canonical_paths_drop_empty_segments_and_keep_escaped_slashes() {
        assert_eq!(canonical(""), "/");
        assert_eq!(canonical("//"), "/");
        assert_eq!(canonical("//deployment//D-1/"), "/deployment/D-1");
        assert_eq!(canonical("/%76ersion"), "/version");
        assert_eq!(canonical("/auth_headers_prefix"), "/auth_headers_prefix");
        assert_eq!(canonical("/environments/a%2Fb/c"), "/environments/a%2Fb/c");
        assert_eq!(canonical("/%"), "/%25");
        assert_eq!(canonical("/nodes/node-1%"), "/nodes/node-1%25");
        assert_eq!(canonical("/%FF"), "/%EF%BF%BD");
        assert_eq!(canonical("/a b/é"), "/a%20b/%C3%A9");
    }

    proptest! {
        /// Any segment decodes without panicking, and decoding is the identity on text without `%`.
        #[test]
        fn decode_never_panics(seg in "[%0-9a-fA-FgG/é\u{0}-\u{7f}]{0,40}") {
            let out = decode(&seg);
            if !seg.contains('%') {
                prop_assert_eq!(out, seg);
            }
        }

        /// Encoded then decoded text is the text.
        #[test]
        fn decode_reverses_encoding(text in "\\PC{0,30}") {
            let encoded: String = text.bytes().map(|b| format!("%{b:02X}")).collect();
            prop_assert_eq!(decode(&encoded), text);
        }

        /// Decoding each segment of a canonical path gives the segments Kadeploy reads in the original
        /// path (non-empty ones, each decoded on its own), and the canonical form is stable.
        #[test]
        fn canonical_segments_decode_to_kadeploys_segments(path in "[/%0-9a-fA-Fz.é -]{0,40}") {
            let kadeploy: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(decode).collect();
            let canon = canonical(&path);
            let ours: Vec<String> = canon.split('/').filter(|s| !s.is_empty()).map(decode).collect();
            prop_assert_eq!(&ours, &kadeploy);
            prop_assert_eq!(canonical(&canon), canon.clone());
            prop_assert!(canon.parse::<axum::http::Uri>().is_ok(), "{}", canon);
        }
    }
}
