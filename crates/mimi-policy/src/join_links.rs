//! Active join links: the `join_links` component and its delta update
//! (draft-ietf-mimi-room-policy-03 §6.2).

use std::collections::BTreeSet;

use mimi_protocol::DecodeError;
use mimi_protocol::tls::{Codec, Reader, put_codec_vec, put_opaque, put_u32_vec, read_codec_vec};
use serde::Serialize;

use crate::base_policy::MAX_URI_LEN;
use crate::codec::{self, MAX_COMPONENT_LEN, check_len};
use crate::error::Error;

/// Most links in `JoinLinksData` and in one `JoinLinksUpdate` (IN-POLICY-18).
const MAX_LINKS: usize = 256;
/// Longest join link, in bytes: a link is a URI.
const MAX_LINK_LEN: usize = MAX_URI_LEN;

/// One active join link (`JoinLink`, read as `opaque join_link<V>`, IN-POLICY-13).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct JoinLink {
    /// The link (a URI or invite code; not checked as text).
    pub join_link: Vec<u8>,
}

impl JoinLink {
    /// A join link from text.
    pub fn new(link: &str) -> Self {
        Self {
            join_link: link.as_bytes().to_vec(),
        }
    }
}

/// A join link serializes as a JSON string.
impl Serialize for JoinLink {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::json::lossy(&self.join_link, s)
    }
}

impl Codec for JoinLink {
    const NAME: &'static str = "JoinLink";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            join_link: r.opaque_vec(Self::NAME, MAX_COMPONENT_LEN)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_opaque(out, &self.join_link);
    }
}

/// The active join links of the room (`JoinLink JoinLinksData<V>`: the component data is the
/// vector itself).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct JoinLinksData {
    /// The links, in order; `JoinLinksUpdate.removedIndices` refer to this order.
    pub links: Vec<JoinLink>,
}

impl JoinLinksData {
    /// Component ID of `join_links` (suggested value, §10.1.7).
    pub const COMPONENT_ID: u16 = mimi_protocol::ComponentId::JOIN_LINKS.0;

    /// Decodes a whole buffer, rejecting trailing bytes, over-long vectors and duplicate links.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let data: Self = codec::decode_exact(bytes, Self::NAME)?;
        data.check()?;
        Ok(data)
    }

    /// Encodes to TLS presentation language, refusing what `decode` would reject.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.check()?;
        codec::encode(self, Self::NAME)
    }

    /// The links after `update`: its `removedIndices` (positions in `self`, each at most once)
    /// are removed, then its `added_links` appended; a link may not be added twice
    /// (IN-POLICY-14).
    pub fn apply(&self, update: &JoinLinksUpdate) -> Result<JoinLinksData, Error> {
        update.check()?;
        // POL-077: indices refer to the old list, each once and in range; no link twice.
        let invalid = |detail: String| Error::InvalidUpdate {
            type_name: JoinLinksUpdate::NAME,
            detail,
        };
        let mut removed = BTreeSet::new();
        for &index in &update.removed_indices {
            let in_range = usize::try_from(index).is_ok_and(|i| i < self.links.len());
            if !in_range {
                return Err(invalid(format!(
                    "removed index {index} out of range for {} links",
                    self.links.len()
                )));
            }
            if !removed.insert(index) {
                return Err(invalid(format!("removed index {index} listed twice")));
            }
        }
        let mut links: Vec<JoinLink> = self
            .links
            .iter()
            .enumerate()
            .filter(|(i, _)| !u32::try_from(*i).is_ok_and(|i| removed.contains(&i)))
            .map(|(_, link)| link.clone())
            .collect();
        for link in &update.added_links {
            if links.contains(link) {
                return Err(invalid(format!(
                    "added link {:?} already present",
                    String::from_utf8_lossy(&link.join_link)
                )));
            }
            links.push(link.clone());
        }
        let data = JoinLinksData { links };
        data.check()?;
        Ok(data)
    }

    fn check(&self) -> Result<(), Error> {
        check_links("links", &self.links)?;
        // POL-071: the links are a set, so that an index names one link (IN-POLICY-14).
        let mut seen = BTreeSet::new();
        if !self.links.iter().all(|link| seen.insert(&link.join_link)) {
            return Err(Error::InvalidField {
                field: "join_links",
                reason: "a link appears twice",
            });
        }
        Ok(())
    }
}

impl Codec for JoinLinksData {
    const NAME: &'static str = "JoinLinksData";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            links: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_codec_vec(out, &self.links);
    }
}

/// A delta update of `join_links` (`JoinLinksUpdate`): removals by index, then additions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct JoinLinksUpdate {
    /// Positions, in the list before the update, of the links to remove.
    #[serde(rename = "removedIndices")]
    pub removed_indices: Vec<u32>,
    /// Links to append.
    pub added_links: Vec<JoinLink>,
}

impl JoinLinksUpdate {
    /// Decodes a whole buffer, rejecting trailing bytes and over-long vectors.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let update: Self = codec::decode_exact(bytes, Self::NAME)?;
        update.check()?;
        Ok(update)
    }

    /// Encodes to TLS presentation language, refusing what `decode` would reject.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.check()?;
        codec::encode(self, Self::NAME)
    }

    fn check(&self) -> Result<(), Error> {
        check_len("removedIndices", self.removed_indices.len(), MAX_LINKS)?;
        check_links("added_links", &self.added_links)
    }
}

impl Codec for JoinLinksUpdate {
    const NAME: &'static str = "JoinLinksUpdate";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            removed_indices: r.u32_vec(Self::NAME, MAX_COMPONENT_LEN)?,
            added_links: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_u32_vec(out, &self.removed_indices);
        put_codec_vec(out, &self.added_links);
    }
}

/// POL-062 for a list of links.
fn check_links(field: &'static str, links: &[JoinLink]) -> Result<(), Error> {
    check_len(field, links.len(), MAX_LINKS)?;
    links
        .iter()
        .try_for_each(|link| check_len("join_link", link.join_link.len(), MAX_LINK_LEN))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(names: &[&str]) -> JoinLinksData {
        JoinLinksData {
            links: names.iter().map(|n| JoinLink::new(n)).collect(),
        }
    }

    #[test]
    fn encodes_join_links_data_byte_for_byte() {
        // Written out by hand from draft-ietf-mimi-room-policy-03 §6.2: `JoinLink
        // JoinLinksData<V>` with `opaque join_link<V>` (IN-POLICY-13).
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x06,             // JoinLinksData<V>: 6 bytes
            0x02, b'a', b'b', //   join_link<V> "ab"
            0x02, b'c', b'd', //   join_link<V> "cd"
        ];
        let data = links(&["ab", "cd"]);
        assert_eq!(data.encode().unwrap(), expected);
        assert_eq!(JoinLinksData::decode(expected).unwrap(), data);
        assert_eq!(JoinLinksData::default().encode().unwrap(), [0x00]);
    }

    #[test]
    fn encodes_join_links_update_byte_for_byte() {
        let update = JoinLinksUpdate {
            removed_indices: vec![0, 2],
            added_links: vec![JoinLink::new("z")],
        };
        // Written out by hand from draft-ietf-mimi-room-policy-03 §6.2 (JoinLinksUpdate).
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x08,                   // removedIndices<V>: 8 bytes
            0x00, 0x00, 0x00, 0x00, //   0
            0x00, 0x00, 0x00, 0x02, //   2
            0x02,                   // added_links<V>: 2 bytes
            0x01, b'z',             //   join_link<V> "z"
        ];
        assert_eq!(update.encode().unwrap(), expected);
        assert_eq!(JoinLinksUpdate::decode(expected).unwrap(), update);
    }

    #[test]
    fn rejects_bad_input() {
        let bytes = links(&["ab", "cd"]).encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(JoinLinksData::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
        assert!(matches!(
            JoinLinksData::decode(&[0x00, 0x00]),
            Err(Error::TrailingData { .. })
        ));
        // removedIndices whose length is not a multiple of 4.
        assert!(matches!(
            JoinLinksUpdate::decode(&[0x03, 0, 0, 0, 0x00]),
            Err(Error::Decode { .. })
        ));
        // A duplicate link in the data.
        assert!(matches!(
            JoinLinksData::decode(&[0x04, 0x01, b'a', 0x01, b'a']),
            Err(Error::InvalidField { .. })
        ));
        let many = JoinLinksData {
            links: (0..=MAX_LINKS)
                .map(|i| JoinLink::new(&i.to_string()))
                .collect(),
        };
        let bytes = codec::encode(&many, "JoinLinksData").unwrap();
        assert!(matches!(
            JoinLinksData::decode(&bytes),
            Err(Error::VectorTooLong { field: "links", .. })
        ));
        let update = JoinLinksUpdate {
            removed_indices: vec![0; MAX_LINKS + 1],
            added_links: Vec::new(),
        };
        let bytes = codec::encode(&update, "JoinLinksUpdate").unwrap();
        assert!(matches!(
            JoinLinksUpdate::decode(&bytes),
            Err(Error::VectorTooLong {
                field: "removedIndices",
                ..
            })
        ));
    }

    #[test]
    fn apply_removes_by_old_index_then_appends() {
        let data = links(&["a", "b", "c", "d"]);
        let update = JoinLinksUpdate {
            removed_indices: vec![3, 1],
            added_links: vec![JoinLink::new("e"), JoinLink::new("b2")],
        };
        assert_eq!(data.apply(&update).unwrap(), links(&["a", "c", "e", "b2"]));
        // An update may re-add a link it removes.
        let readd = JoinLinksUpdate {
            removed_indices: vec![0],
            added_links: vec![JoinLink::new("a")],
        };
        assert_eq!(data.apply(&readd).unwrap(), links(&["b", "c", "d", "a"]));
        assert_eq!(
            data.apply(&JoinLinksUpdate::default()).unwrap(),
            data,
            "an empty update changes nothing"
        );
    }

    #[test]
    fn apply_rejects_bad_updates_and_leaves_the_data_alone() {
        let data = links(&["a", "b"]);
        let before = data.clone();
        let out_of_range = JoinLinksUpdate {
            removed_indices: vec![2],
            added_links: Vec::new(),
        };
        let duplicate = JoinLinksUpdate {
            removed_indices: vec![1, 1],
            added_links: Vec::new(),
        };
        let present = JoinLinksUpdate {
            removed_indices: Vec::new(),
            added_links: vec![JoinLink::new("b")],
        };
        let added_twice = JoinLinksUpdate {
            removed_indices: Vec::new(),
            added_links: vec![JoinLink::new("c"), JoinLink::new("c")],
        };
        for update in [out_of_range, duplicate, present, added_twice] {
            assert!(
                matches!(data.apply(&update), Err(Error::InvalidUpdate { .. })),
                "{update:?}"
            );
        }
        assert_eq!(
            data.apply(&JoinLinksUpdate {
                removed_indices: vec![u32::MAX],
                added_links: Vec::new()
            })
            .unwrap_err()
            .to_string(),
            "cannot apply JoinLinksUpdate: removed index 4294967295 out of range for 2 links"
        );
        assert_eq!(data, before);
    }

    #[test]
    fn serializes_links_as_strings() {
        let json = serde_json::to_value(links(&["https://j/1"])).unwrap();
        assert_eq!(json, serde_json::json!(["https://j/1"]));
        let update = JoinLinksUpdate {
            removed_indices: vec![1],
            added_links: vec![JoinLink::new("x")],
        };
        assert_eq!(
            serde_json::to_value(update).unwrap(),
            serde_json::json!({"removedIndices": [1], "added_links": ["x"]})
        );
    }
}
