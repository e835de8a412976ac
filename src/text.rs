//! Short text that clones without allocating.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrayvec::ArrayString;

/// Longest text kept inline: covers generated key ids, UUIDs and Standard Webhooks message ids.
const INLINE: usize = 38;

/// Text held inline when it is at most [`INLINE`] bytes, otherwise shared.
///
/// Key ids and webhook ids are copied into every [`Verified`](crate::Verified); inline, that copy
/// is a `memcpy`, with no allocation and no reference count that two cores would fight over.
#[derive(Clone)]
pub(crate) enum ShortStr {
    Inline(ArrayString<INLINE>),
    Shared(Arc<str>),
}

impl ShortStr {
    pub(crate) fn new(text: &str) -> Self {
        ArrayString::from(text).map_or_else(|_| Self::Shared(Arc::from(text)), Self::Inline)
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::Inline(text) => text,
            Self::Shared(text) => text,
        }
    }
}

impl PartialEq for ShortStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ShortStr {}

impl Hash for ShortStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for ShortStr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ShortStr {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_inline_and_long_text_shared_with_the_same_value() {
        let short = ShortStr::new("key_3f9a0c1d2e4b5a69");
        assert!(matches!(short, ShortStr::Inline(_)));
        let long_text = "x".repeat(INLINE + 1);
        let long = ShortStr::new(&long_text);
        assert!(matches!(long, ShortStr::Shared(_)));
        assert_eq!(long.as_str(), long_text);
        assert_eq!(ShortStr::new(&"y".repeat(INLINE)).as_str().len(), INLINE);
        assert_eq!(short.clone(), ShortStr::new("key_3f9a0c1d2e4b5a69"));
        assert!(ShortStr::new("a") < ShortStr::new(&"b".repeat(INLINE + 5)));
    }
}
