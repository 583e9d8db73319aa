//! Join links (IN-LIFECYCLE-4): what a link in the room's `join_links` says about itself, and
//! how a joiner shows the link it uses in its external commit.
//!
//! A link is `ROOM_URI#join=CODE&expires=UNIX_SECONDS&uses=single|multi` (`expires=0`: never).
//! The joiner names it in the commit's authenticated data as a SafeAAD item (mls-extensions)
//! whose component ID is `join_links`, so every member can check it against the room's list.

use mimi_protocol::{ComponentId, SafeAad, SafeAadItem, Wire};

/// What a join link allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinLinkTerms {
    /// Unix seconds after which the link no longer works, if it expires.
    pub expires: Option<u64>,
    /// Whether it may be used more than once; a single-use link is removed by the commit that
    /// uses it.
    pub multi: bool,
}

impl JoinLinkTerms {
    /// Reads the terms of a link; `None` if the link is not one of ours.
    pub fn of(link: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(link).ok()?;
        let (_, fragment) = text.split_once("#join=")?;
        let mut expires = None;
        let mut multi = None;
        for field in fragment.split('&').skip(1) {
            match field.split_once('=')? {
                ("expires", "0") => expires = Some(None),
                ("expires", t) => expires = Some(Some(t.parse().ok()?)),
                ("uses", "single") => multi = Some(false),
                ("uses", "multi") => multi = Some(true),
                _ => return None,
            }
        }
        Some(Self {
            expires: expires?,
            multi: multi?,
        })
    }

    /// Whether the link has expired at `now` (Unix seconds).
    pub fn expired_at(&self, now: u64) -> bool {
        self.expires.is_some_and(|t| now >= t)
    }
}

/// A new join link for `room_uri` with a fresh random code.
pub fn new_join_link(room_uri: &str, expires: Option<u64>, multi: bool) -> String {
    let code: [u8; 16] = rand_code();
    let hex: String = code.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{room_uri}#join={hex}&expires={}&uses={}",
        expires.unwrap_or(0),
        if multi { "multi" } else { "single" }
    )
}

fn rand_code() -> [u8; 16] {
    use openmls_traits::random::OpenMlsRand as _;
    openmls_rust_crypto::RustCrypto::default()
        .random_array()
        .unwrap_or_else(|_| std::array::from_fn(|i| i as u8))
}

/// The SafeAAD (mls-extensions) carrying `link` as the item of component `join_links`.
pub(crate) fn safe_aad_with_link(link: &[u8]) -> Vec<u8> {
    SafeAad {
        aad_items: vec![SafeAadItem {
            component_id: ComponentId::JOIN_LINKS,
            aad_item_data: link.to_vec(),
        }],
    }
    .encode()
}

/// The join link a commit's authenticated data names, if it is a SafeAAD with a `join_links`
/// item; anything else names none.
pub(crate) fn link_in_aad(aad: &[u8]) -> Option<Vec<u8>> {
    if aad.is_empty() {
        return None;
    }
    SafeAad::decode(aad)
        .ok()?
        .item(ComponentId::JOIN_LINKS)
        .map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_link_states_its_terms() {
        let link = new_join_link("mimi://a.example/r/club", Some(1_900_000_000), false);
        assert!(link.starts_with("mimi://a.example/r/club#join="));
        let terms = JoinLinkTerms::of(link.as_bytes()).unwrap();
        assert_eq!(terms.expires, Some(1_900_000_000));
        assert!(!terms.multi);
        assert!(!terms.expired_at(1_899_999_999));
        assert!(terms.expired_at(1_900_000_000));
        let forever = new_join_link("mimi://a.example/r/club", None, true);
        let terms = JoinLinkTerms::of(forever.as_bytes()).unwrap();
        assert_eq!(terms.expires, None);
        assert!(terms.multi);
        assert_eq!(JoinLinkTerms::of(b"https://elsewhere.example/x"), None);
        assert_eq!(
            JoinLinkTerms::of(b"mimi://a/r/x#join=00&uses=many&expires=0"),
            None
        );
    }

    #[test]
    fn the_link_travels_as_a_safe_aad_item() {
        let aad = safe_aad_with_link(b"L");
        // aad_items<V>: length 4 | component_id 0x002a | aad_item_data<V>: 1 'L'
        assert_eq!(aad, [0x04, 0x00, 0x2a, 0x01, b'L']);
        assert_eq!(link_in_aad(&aad), Some(b"L".to_vec()));
        assert_eq!(link_in_aad(&[]), None);
        // Truncated: the vector claims four bytes, three follow.
        assert_eq!(link_in_aad(&[0x04, 0x00, 0x2a, 0x01]), None);
        // Another component's item is not a link.
        assert_eq!(link_in_aad(&[0x04, 0x80, 0x01, 0x01, b'L']), None);
    }
}
