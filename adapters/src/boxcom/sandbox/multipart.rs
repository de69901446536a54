//! A minimal `multipart/form-data` reader for the upload endpoint (parts split on the boundary,
//! headers from the body at the first blank line), enough for what clients send Box.

/// One part: its `name` from `Content-Disposition` and its bytes.
pub(crate) struct Part {
    pub name: String,
    pub body: Vec<u8>,
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// The parts of `body` for the boundary in `content_type`, in order; `None` when malformed.
pub(crate) fn parse(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut at = find(body, &delimiter, 0)? + delimiter.len();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Some(parts);
        }
        let start = at + 2; // the CRLF after the delimiter
        let next = find(body, &delimiter, start)?;
        let part = body.get(start..next.checked_sub(2)?)?; // drop the CRLF before the delimiter
        let split = find(part, b"\r\n\r\n", 0)?;
        let head = String::from_utf8_lossy(&part[..split]);
        let name = head
            .split(';')
            .map(str::trim)
            .find_map(|p| p.strip_prefix("name="))?
            .trim_matches('"')
            .to_owned();
        parts.push(Part {
            name,
            body: part[split + 4..].to_vec(),
        });
        at = next + delimiter.len();
    }
}
