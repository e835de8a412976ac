//! Reading header values: one lookup per name that refuses duplicates, text that must be short
//! visible ASCII, and the small parsers the schemes share.

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::MAX_HEADER_LEN;
use crate::error::{HeaderProblem, SignError, VerifyError};

/// Reads header `name`, if present, as text.
///
/// # Errors
///
/// [`VerifyError::DuplicateHeader`] when it appears more than once (an attacker could otherwise
/// choose which copy is checked); [`VerifyError::MalformedHeader`] when it is longer than
/// [`MAX_HEADER_LEN`] or not visible ASCII.
pub fn header<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'h str>, VerifyError> {
    let [text] = self::headers(headers, [name]);
    text
}

/// Header `name`'s first value, and whether it has another, by hashed lookup.
fn looked_up<'h>(map: &'h HeaderMap, name: &HeaderName) -> (Option<&'h HeaderValue>, bool) {
    let mut values = map.get_all(name).iter();
    (values.next(), values.next().is_some())
}

/// What [`header`] answers for header `name` with `found` as its first value and whether it
/// has another. Inlined: its result is large, and copying it out of a call's frame costs a
/// store-forwarding stall per header.
#[inline(always)]
fn checked<'h>(
    name: &HeaderName,
    found: (Option<&'h HeaderValue>, bool),
) -> Result<Option<&'h str>, VerifyError> {
    match found {
        (_, true) => Err(VerifyError::DuplicateHeader { name: name.clone() }),
        (value, false) => value.map(|value| header_text(name, value)).transpose(),
    }
}

/// Map sizes up to which [`headers`] compares every entry's name with the wanted ones rather
/// than looking each wanted name up: a lookup hashes the name a byte at a time. Measured with
/// 8 to 32 values: for one name scanning is cheaper up to 14 values, for three up to about 21;
/// hence 10 plus 4 per name.
const fn scans(values: usize, names: usize) -> bool {
    values <= 10 + 4 * names
}

/// Reads the headers `names`, each exactly as [`header`] would: slot `i` holds what
/// `header(map, names[i])` returns, so a caller that applies `?` to the slots in its own order
/// gets the same result and the same first error as reading them one by one. A map of up to
/// 10 values plus 4 per wanted name is read in one pass instead of one lookup per name: a
/// lookup hashes the name a byte at a time, which costs more than comparing that many names.
///
/// # Examples
///
/// ```
/// use http::{HeaderMap, HeaderName};
/// use webhook_guard::scheme::headers;
///
/// const ID: HeaderName = HeaderName::from_static("webhook-id");
/// const TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
/// let mut map = HeaderMap::new();
/// map.insert(ID, "msg_1".parse()?);
/// let [id, timestamp] = headers(&map, [&ID, &TIMESTAMP]);
/// assert_eq!((id?, timestamp?), (Some("msg_1"), None));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[inline(always)]
pub fn headers<'h, const N: usize>(
    map: &'h HeaderMap,
    names: [&HeaderName; N],
) -> [Result<Option<&'h str>, VerifyError>; N] {
    // Each wanted name's first value, and whether it has another.
    let mut found: [(Option<&'h HeaderValue>, bool); N] = [(None, false); N];
    if scans(map.len(), N) {
        for (name, value) in map {
            // Every slot that wants this name, should a name be asked for twice.
            for ((first, repeated), wanted) in found.iter_mut().zip(names) {
                if name == wanted {
                    *repeated |= first.replace(value).is_some();
                }
            }
        }
    } else {
        for (slot, wanted) in found.iter_mut().zip(names) {
            *slot = looked_up(map, wanted);
        }
    }
    let mut texts = [const { Ok(None) }; N];
    for ((text, found), name) in texts.iter_mut().zip(found).zip(names) {
        *text = checked(name, found);
    }
    texts
}

/// The text of one value of header `name`, trimmed, if it is short enough and visible ASCII.
#[inline(always)]
fn header_text<'h>(name: &HeaderName, value: &'h HeaderValue) -> Result<&'h str, VerifyError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(malformed(
            name,
            HeaderProblem::TooLong {
                len: value.len(),
                max: MAX_HEADER_LEN,
            },
        ));
    }
    value
        .to_str()
        .map(str::trim_ascii)
        .map_err(|_| malformed(name, HeaderProblem::NotAscii))
}

/// `text` read by [`headers`] for header `name`, which must be present.
pub(crate) fn required<'h>(
    text: Option<&'h str>,
    name: &HeaderName,
) -> Result<&'h str, VerifyError> {
    text.ok_or_else(|| VerifyError::MissingHeader { name: name.clone() })
}

/// Splits ASCII `text` around the first `separator` byte.
pub(crate) fn split_once_byte(text: &str, separator: u8) -> Option<(&str, &str)> {
    let at = text.bytes().position(|b| b == separator)?;
    let (before, rest) = text.split_at_checked(at)?;
    Some((before, rest.get(1..)?))
}

/// Reads header `name`, which must be present.
///
/// # Errors
///
/// [`VerifyError::MissingHeader`] when it is absent, otherwise as for [`header`].
pub fn required_header<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<&'h str, VerifyError> {
    header(headers, name)?.ok_or_else(|| VerifyError::MissingHeader { name: name.clone() })
}

pub(crate) fn malformed(name: &HeaderName, problem: HeaderProblem) -> VerifyError {
    VerifyError::MalformedHeader {
        name: name.clone(),
        problem,
    }
}

/// Builds a header value, naming the header on failure.
pub(crate) fn value(name: &HeaderName, text: &str) -> Result<HeaderValue, SignError> {
    HeaderValue::from_str(text).map_err(|_| SignError::InvalidHeaderValue { name: name.clone() })
}

/// The part of header `name`'s `text` after its fixed `prefix` (`sha256=`, `v0=`).
pub(crate) fn after_prefix<'h>(
    name: &HeaderName,
    text: &'h str,
    prefix: &'static str,
) -> Result<&'h str, VerifyError> {
    text.strip_prefix(prefix)
        .ok_or_else(|| malformed(name, HeaderProblem::MissingPrefix { prefix }))
}

/// `a == b` for the short field names of signature headers, compared inline: slice equality
/// calls `memcmp`, which costs more than the compare for one or two bytes.
#[inline(always)]
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// Splits a `k=v` list item.
pub(crate) fn key_value(item: &str, separator: char) -> Option<(&str, &str)> {
    item.split_once(separator)
        .map(|(k, v)| (k.trim_ascii(), v.trim_ascii()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_in_one_pass_read_what_one_lookup_per_name_reads() {
        const A: HeaderName = HeaderName::from_static("webhook-signature");
        const B: HeaderName = HeaderName::from_static("webhook-id");
        const C: HeaderName = HeaderName::from_static("x-forwarded-proto");
        // Same length and last eight bytes as A, another name.
        const D: HeaderName = HeaderName::from_static("xebhook-signature");
        fn by_lookup<'h>(
            map: &'h HeaderMap,
            name: &HeaderName,
        ) -> Result<Option<&'h str>, VerifyError> {
            checked(name, looked_up(map, name))
        }
        // Below and above the scan thresholds (14 values for one name, 22 for three), with
        // each wanted header absent, present, duplicated, too long or not ASCII.
        let long = "a".repeat(MAX_HEADER_LEN + 1);
        let cases: [&[&str]; 5] = [&[], &["v1,abc"], &["one", "two"], &[&long], &["caf\u{e9}"]];
        let (mut seen_scan, mut seen_lookup) = ([false; 2], [false; 2]);
        for fillers in [0, 5, 10, 11, 12, 13, 17, 18, 19, 20, 40] {
            for a in cases {
                for b in [&[][..], &[" msg_1 "][..], &["x", "y"][..]] {
                    let mut map = HeaderMap::new();
                    for i in 0..fillers {
                        let name = HeaderName::from_bytes(format!("x-filler-{i}").as_bytes());
                        map.append(name.unwrap(), HeaderValue::from_static("1"));
                    }
                    for value in a {
                        map.append(A, HeaderValue::from_bytes(value.as_bytes()).unwrap());
                    }
                    for value in b {
                        map.append(B, HeaderValue::from_str(value).unwrap());
                    }
                    map.append(http::header::HOST, HeaderValue::from_static("example.com"));
                    map.append(D, HeaderValue::from_static("decoy"));
                    for (i, names) in [1, 3].into_iter().enumerate() {
                        seen_scan[i] |= scans(map.len(), names);
                        seen_lookup[i] |= !scans(map.len(), names);
                    }
                    for name in [&A, &B, &C, &D] {
                        assert_eq!(header(&map, name), by_lookup(&map, name));
                    }
                    let [first, again] = headers(&map, [&A, &A]);
                    assert_eq!(first, by_lookup(&map, &A), "a repeated name, first slot");
                    assert_eq!(again, by_lookup(&map, &A), "a repeated name, second slot");
                    let one_pass = headers(&map, [&A, &B, &C]);
                    let each = [&A, &B, &C].map(|name| by_lookup(&map, name));
                    assert_eq!(one_pass, each);
                }
            }
        }
        assert_eq!((seen_scan, seen_lookup), ([true; 2], [true; 2]));
    }
}
