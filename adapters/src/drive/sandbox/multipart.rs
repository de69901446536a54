//! `multipart/related` bodies (RFC 2387), as Drive's multipart upload takes them: parts
//! separated by `--boundary`, each with its headers, a blank line, and its bytes.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    pub(crate) content_type: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// The parts of `body`, given the request's `Content-Type`.
pub(crate) fn parse_related(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let mut pieces = content_type.split(';').map(str::trim);
    let kind = pieces.next().unwrap_or_default().to_ascii_lowercase();
    if kind != "multipart/related" {
        return Err(format!(
            "the content type is `{kind}`, not multipart/related"
        ));
    }
    let boundary = pieces
        .find_map(|p| {
            let (key, value) = p.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("boundary")
                .then(|| value.trim().trim_matches('"').to_owned())
        })
        .filter(|b| !b.is_empty())
        .ok_or("no boundary in the content type")?;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut positions = Vec::new();
    let mut at = 0;
    while let Some(found) = find(&body[at..], &delimiter) {
        positions.push(at + found);
        at += found + delimiter.len();
    }
    if positions.len() < 2 {
        return Err("no parts between boundaries".into());
    }
    let mut parts = Vec::new();
    for window in positions.windows(2) {
        let start = window[0] + delimiter.len();
        let mut piece = &body[start..window[1]];
        if piece.starts_with(b"--") {
            break;
        }
        piece = piece.strip_prefix(b"\r\n").unwrap_or(piece);
        // The CRLF before the next delimiter belongs to the delimiter.
        piece = piece.strip_suffix(b"\r\n").unwrap_or(piece);
        let split = find(piece, b"\r\n\r\n").ok_or("a part has no blank line after its headers")?;
        let headers = String::from_utf8_lossy(&piece[..split]);
        let content_type = headers.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_owned())
        });
        parts.push(Part {
            content_type,
            body: piece[split + 4..].to_vec(),
        });
    }
    let last = positions[positions.len() - 1] + delimiter.len();
    if !body[last..].starts_with(b"--") {
        return Err("the closing boundary is missing".into());
    }
    Ok(parts)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut at = 0;
    while at + needle.len() <= haystack.len() {
        let offset = haystack[at..].iter().position(|&b| b == first)?;
        at += offset;
        if haystack.get(at..at + needle.len()) == Some(needle) {
            return Some(at);
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_metadata_and_binary_media() {
        let body = b"--b1\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{\"name\":\"a\"}\r\n--b1\r\nContent-Type: application/octet-stream\r\n\r\n\x00\r\n--b\x01\r\n--b1--\r\n";
        let parts = parse_related("multipart/related; boundary=\"b1\"", body).expect("parses");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].body, b"{\"name\":\"a\"}");
        assert_eq!(
            parts[1].content_type.as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(parts[1].body, b"\x00\r\n--b\x01");
    }

    #[test]
    fn rejects_other_bodies() {
        assert!(parse_related("multipart/form-data; boundary=x", b"").is_err());
        assert!(parse_related("multipart/related; boundary=x", b"--x\r\n\r\nno end").is_err());
    }
}
