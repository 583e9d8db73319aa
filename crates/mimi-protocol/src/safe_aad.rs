//! Safe AAD (draft-ietf-mls-extensions §4.9): the
//! framing MIMI uses for `frank_aad` in a PrivateMessage's `authenticated_data`, and for
//! `abuse_extensions` in an abuse report.

use crate::codec::{Codec, MAX_MLS_OBJECT, Reader, put_opaque, put_vec, wire_via_codec};
use crate::components::ComponentId;
use crate::error::DecodeError;

/// `struct { ComponentID component_id; opaque aad_item_data<V>; } SafeAADItem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeAadItem {
    /// Which component the item belongs to.
    pub component_id: ComponentId,
    /// The component's data.
    pub aad_item_data: Vec<u8>,
}

/// `struct { SafeAADItem aad_items<V>; } SafeAAD`, items in strictly increasing component order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SafeAad {
    /// The items, sorted by component ID without repeats (checked when decoding).
    pub aad_items: Vec<SafeAadItem>,
}

impl SafeAad {
    /// The data of the item for `id`, if present.
    pub fn item(&self, id: ComponentId) -> Option<&[u8]> {
        self.aad_items
            .iter()
            .find(|i| i.component_id == id)
            .map(|i| i.aad_item_data.as_slice())
    }
}

impl Codec for SafeAad {
    const NAME: &'static str = "SafeAAD";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let aad_items = r.vec(Self::NAME, MAX_MLS_OBJECT, |r| {
            Ok(SafeAadItem {
                component_id: ComponentId::read(r)?,
                aad_item_data: r.opaque_vec(Self::NAME, MAX_MLS_OBJECT)?,
            })
        })?;
        check_increasing(aad_items.iter().map(|i| i.component_id), Self::NAME)?;
        Ok(Self { aad_items })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_vec(out, &self.aad_items, |i, o| {
            i.component_id.write(o);
            put_opaque(o, &i.aad_item_data);
        });
    }
}

wire_via_codec!(SafeAad);

/// Both structures require strictly increasing component IDs (mls-extensions §4.6, §4.9).
fn check_increasing(
    ids: impl Iterator<Item = ComponentId>,
    ty: &'static str,
) -> Result<(), DecodeError> {
    let mut last: Option<ComponentId> = None;
    for id in ids {
        if last.is_some_and(|l| l >= id) {
            return Err(DecodeError::Malformed {
                ty,
                reason: "component IDs not in strictly increasing order",
            });
        }
        last = Some(id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Wire;
    use crate::codec::testing::check_wire;

    #[test]
    fn safe_aad_with_one_frank_item_matches_hand_written_bytes() {
        let aad = SafeAad {
            aad_items: vec![SafeAadItem {
                component_id: ComponentId::FRANK_AAD,
                aad_item_data: vec![0xab; 32],
            }],
        };
        // aad_items<V>: 35 bytes = uint16 0x0020, then opaque<V> of 32 bytes.
        let mut want = vec![35, 0x00, 0x20, 32];
        want.extend_from_slice(&[0xab; 32]);
        assert_eq!(aad.encode(), want);
        assert_eq!(SafeAad::decode(&want).unwrap(), aad);
        assert_eq!(aad.item(ComponentId::FRANK_AAD), Some(&[0xab; 32][..]));
        check_wire(&aad);
        check_wire(&SafeAad::default());
        assert_eq!(SafeAad::default().encode(), vec![0]);
    }

    #[test]
    fn rejects_unsorted_or_repeated_components() {
        // Items 0x0021 then 0x0020; then 0x0020 twice.
        for bytes in [
            [6, 0x00, 0x21, 0, 0x00, 0x20, 0],
            [6, 0x00, 0x20, 0, 0x00, 0x20, 0],
        ] {
            assert!(matches!(
                SafeAad::decode(&bytes),
                Err(DecodeError::Malformed { .. })
            ));
            assert!(matches!(
                crate::messages::AppDataDictionary::decode(&bytes),
                Err(DecodeError::Malformed { .. })
            ));
        }
    }
}
