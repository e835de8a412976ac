//! The rules every call checks: page sizes and cursors, names, scopes, and a store's "not
//! found" after the memory check.

use super::{AdminError, MAX_NAME_CHARS};
use crate::admin::credentials::Caller;
use crate::store::StoreError;

/// A page size in `1..=max`.
pub(super) fn page_size(limit: usize, max: usize) -> Result<usize, AdminError> {
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(AdminError::Field {
            field: "limit",
            reason: format!("must be from 1 to {max}"),
        })
    }
}

pub(super) fn bad_cursor() -> AdminError {
    AdminError::Field {
        field: "cursor",
        reason: "must be the nextCursor of a previous page".into(),
    }
}

/// A store's "no such …" after the memory check passed means the resource went away meanwhile
/// (a concurrent delete): a 404, as for any unknown id, never a 500.
pub(super) fn gone<'a>(
    resource: &'static str,
    id: &'a str,
) -> impl FnOnce(AdminError) -> AdminError + 'a {
    move |e| match e {
        AdminError::Store(StoreError::NotFound { .. }) => AdminError::NotFound {
            resource,
            id: id.to_owned(),
        },
        e => e,
    }
}

/// A name for people, checked: 1 to [`MAX_NAME_CHARS`] characters, nothing that hides or
/// reorders text where it is shown (controls, bidirectional overrides, invisible characters),
/// and no space at either end. The OpenAPI document states the same rule as a pattern
/// (`wire::NAME_PATTERN`); change both together.
pub(super) fn check_name(name: Option<String>) -> Result<Option<String>, AdminError> {
    let Some(name) = name else {
        return Ok(None);
    };
    let bad = |reason: String| {
        Err(AdminError::Field {
            field: "name",
            reason,
        })
    };
    if name.is_empty() {
        return bad("must not be empty".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return bad(format!("must be at most {MAX_NAME_CHARS} characters"));
    }
    if let Some(c) = name.chars().find(|&c| is_hidden(c)) {
        return bad(format!(
            "must not contain U+{:04X}: no control, bidirectional or invisible characters",
            u32::from(c)
        ));
    }
    if name.starts_with(is_space) || name.ends_with(is_space) {
        return bad("must not begin or end with a space".into());
    }
    Ok(Some(name))
}

/// Characters that are not seen, or change how the text around them is shown. The joiners
/// U+200C and U+200D stay allowed: scripts and emoji sequences need them.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
            | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}' | '\u{200E}' | '\u{200F}'
            | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FEFF}'
            | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}')
}

/// Spaces a name may hold inside but not at either end.
fn is_space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\u{00A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// Project and key management needs a credential that is not limited to some projects.
pub(super) fn require_unlimited(caller: &Caller) -> Result<(), AdminError> {
    match caller.projects() {
        None => Ok(()),
        Some(_) => Err(AdminError::Forbidden {
            scope: "integrator".into(),
        }),
    }
}
