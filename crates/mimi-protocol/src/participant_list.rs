//! The `participant_list` room component (0x0022; draft §7.1, digest §2.7).

use std::collections::HashSet;

use crate::codec::{
    Codec, MAX_BODY, Reader, put_codec_vec, put_u32_vec, read_codec_vec, wire_via_codec,
};
use crate::error::{DecodeError, ParticipantListError};
use crate::identifiers::IdentifierUri;

/// A participant and its role: `struct { opaque user<V>; uint32 role_index; }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserRolePair {
    /// The user's URI (same for all of the user's clients).
    pub user: IdentifierUri,
    /// Index into the room's roles list.
    pub role_index: u32,
}

impl Codec for UserRolePair {
    const NAME: &'static str = "UserRolePair";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            user: IdentifierUri::read(r)?,
            role_index: r.u32(Self::NAME)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.user.write(out);
        out.extend_from_slice(&self.role_index.to_be_bytes());
    }
}

/// A role change by list index: `struct { uint32 user_index; uint32 role_index; }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserindexRolePair {
    /// Index into the list before the update.
    pub user_index: u32,
    /// The new role.
    pub role_index: u32,
}

impl Codec for UserindexRolePair {
    const NAME: &'static str = "UserindexRolePair";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            user_index: r.u32(Self::NAME)?,
            role_index: r.u32(Self::NAME)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.user_index.to_be_bytes());
        out.extend_from_slice(&self.role_index.to_be_bytes());
    }
}

/// The component data: every participant with its role. Users are unique (checked on decode).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParticipantListData {
    /// The participants, in list order.
    pub participants: Vec<UserRolePair>,
}

impl ParticipantListData {
    /// The index and role of `user`, if listed.
    pub fn find(&self, user: &IdentifierUri) -> Option<(u32, u32)> {
        self.participants
            .iter()
            .position(|p| &p.user == user)
            // The list came from the wire (bounded far below u32::MAX entries) or from apply.
            .and_then(|i| u32::try_from(i).ok())
            .map(|i| (i, self.participants[i as usize].role_index))
    }

    /// Applies one update (IN-PROTO-20): indices refer to the list before the update; role
    /// changes first, then removals, then appends. Any rule violation rejects the whole update.
    pub fn apply(&self, update: &ParticipantListUpdate) -> Result<Self, ParticipantListError> {
        let len = self.participants.len();
        let check_index = |index: u32| {
            if (index as usize) < len {
                Ok(())
            } else {
                Err(ParticipantListError::IndexOutOfRange { index, len })
            }
        };

        let mut changed = HashSet::new();
        for c in &update.changed_role_participants {
            check_index(c.user_index)?;
            if !changed.insert(c.user_index) {
                return Err(ParticipantListError::DuplicateIndex {
                    index: c.user_index,
                });
            }
        }
        let mut removed = HashSet::new();
        for &index in &update.removed_indices {
            check_index(index)?;
            if !removed.insert(index) {
                return Err(ParticipantListError::DuplicateIndex { index });
            }
            if changed.contains(&index) {
                return Err(ParticipantListError::UserTouchedTwice { index });
            }
        }
        let mut present: HashSet<&IdentifierUri> =
            self.participants.iter().map(|p| &p.user).collect();
        for added in &update.added_participants {
            if !present.insert(&added.user) {
                return Err(ParticipantListError::UserAlreadyPresent {
                    user: added.user.uri.clone(),
                });
            }
        }

        let mut participants = self.participants.clone();
        for c in &update.changed_role_participants {
            participants[c.user_index as usize].role_index = c.role_index;
        }
        let mut index = 0u32;
        participants.retain(|_| {
            let keep = !removed.contains(&index);
            index += 1;
            keep
        });
        participants.extend(update.added_participants.iter().cloned());
        Ok(Self { participants })
    }
}

impl Codec for ParticipantListData {
    const NAME: &'static str = "ParticipantListData";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let participants: Vec<UserRolePair> = read_codec_vec(r, Self::NAME, MAX_BODY)?;
        let mut seen = HashSet::new();
        if !participants.iter().all(|p| seen.insert(&p.user)) {
            return Err(DecodeError::Malformed {
                ty: Self::NAME,
                reason: "user listed twice",
            });
        }
        Ok(Self { participants })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_codec_vec(out, &self.participants);
    }
}

/// The `AppDataUpdate.update` payload for the participant list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParticipantListUpdate {
    /// Role changes, by index into the list before the update.
    pub changed_role_participants: Vec<UserindexRolePair>,
    /// Removals, by index into the list before the update.
    pub removed_indices: Vec<u32>,
    /// New participants, appended in order.
    pub added_participants: Vec<UserRolePair>,
}

impl Codec for ParticipantListUpdate {
    const NAME: &'static str = "ParticipantListUpdate";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            changed_role_participants: read_codec_vec(r, Self::NAME, MAX_BODY)?,
            removed_indices: r.u32_vec(Self::NAME, MAX_BODY)?,
            added_participants: read_codec_vec(r, Self::NAME, MAX_BODY)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_codec_vec(out, &self.changed_role_participants);
        put_u32_vec(out, &self.removed_indices);
        put_codec_vec(out, &self.added_participants);
    }
}

wire_via_codec!(
    UserRolePair,
    UserindexRolePair,
    ParticipantListData,
    ParticipantListUpdate
);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::codec::Wire;
    use crate::codec::testing::check_wire;

    fn pair(name: &str, role: u32) -> UserRolePair {
        UserRolePair {
            user: IdentifierUri::new(format!("mimi://a.example/u/{name}")),
            role_index: role,
        }
    }

    fn list(names: &[&str]) -> ParticipantListData {
        ParticipantListData {
            participants: names.iter().map(|n| pair(n, 2)).collect(),
        }
    }

    #[test]
    fn applies_changes_then_removals_then_adds() {
        let before = list(&["alice", "bob", "cathy", "dave"]);
        let update = ParticipantListUpdate {
            changed_role_participants: vec![UserindexRolePair {
                user_index: 2,
                role_index: 5,
            }],
            removed_indices: vec![3, 1],
            added_participants: vec![pair("erin", 3)],
        };
        check_wire(&update);
        let after = before.apply(&update).unwrap();
        assert_eq!(
            after.participants,
            vec![pair("alice", 2), pair("cathy", 5), pair("erin", 3)]
        );
        check_wire(&after);
        assert_eq!(after.find(&pair("cathy", 0).user), Some((1, 5)));
        assert_eq!(after.find(&pair("bob", 0).user), None);
    }

    #[test]
    fn accepts_empty_participant_list_and_empty_update() {
        let empty = ParticipantListData::default();
        check_wire(&empty);
        assert_eq!(
            empty.apply(&ParticipantListUpdate::default()).unwrap(),
            empty
        );
    }

    #[test]
    fn rejects_each_rule_violation_naming_the_culprit() {
        let before = list(&["alice", "bob"]);
        let change = |i| UserindexRolePair {
            user_index: i,
            role_index: 1,
        };
        let cases = [
            (
                ParticipantListUpdate {
                    removed_indices: vec![2],
                    ..Default::default()
                },
                ParticipantListError::IndexOutOfRange { index: 2, len: 2 },
            ),
            (
                ParticipantListUpdate {
                    changed_role_participants: vec![change(5)],
                    ..Default::default()
                },
                ParticipantListError::IndexOutOfRange { index: 5, len: 2 },
            ),
            (
                ParticipantListUpdate {
                    removed_indices: vec![1, 1],
                    ..Default::default()
                },
                ParticipantListError::DuplicateIndex { index: 1 },
            ),
            (
                ParticipantListUpdate {
                    changed_role_participants: vec![change(0), change(0)],
                    ..Default::default()
                },
                ParticipantListError::DuplicateIndex { index: 0 },
            ),
            (
                ParticipantListUpdate {
                    changed_role_participants: vec![change(1)],
                    removed_indices: vec![1],
                    ..Default::default()
                },
                ParticipantListError::UserTouchedTwice { index: 1 },
            ),
            (
                ParticipantListUpdate {
                    removed_indices: vec![0],
                    added_participants: vec![pair("alice", 3)],
                    ..Default::default()
                },
                ParticipantListError::UserAlreadyPresent {
                    user: "mimi://a.example/u/alice".into(),
                },
            ),
            (
                ParticipantListUpdate {
                    added_participants: vec![pair("zed", 3), pair("zed", 4)],
                    ..Default::default()
                },
                ParticipantListError::UserAlreadyPresent {
                    user: "mimi://a.example/u/zed".into(),
                },
            ),
        ];
        for (update, expected) in cases {
            assert_eq!(before.apply(&update), Err(expected));
        }
        // Refusals leave the input untouched.
        assert_eq!(before, list(&["alice", "bob"]));
    }

    #[test]
    fn rejects_duplicate_users_on_decode() {
        let dup = ParticipantListData {
            participants: vec![pair("alice", 1), pair("alice", 2)],
        };
        assert!(matches!(
            ParticipantListData::decode(&dup.encode()),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn rejects_removed_indices_not_a_multiple_of_four() {
        assert!(matches!(
            ParticipantListUpdate::decode(&[0, 3, 0, 0, 1, 0]),
            Err(DecodeError::Malformed { .. })
        ));
    }

    fn arb_case() -> impl Strategy<Value = (ParticipantListData, ParticipantListUpdate)> {
        (0usize..12).prop_flat_map(|len| {
            let before = ParticipantListData {
                participants: (0..len).map(|i| pair(&format!("u{i}"), 2)).collect(),
            };
            let n = len as u32 + 2; // some indices out of range
            (
                Just(before),
                proptest::collection::vec((0..n, 0u32..6), 0..4),
                proptest::collection::vec(0..n, 0..4),
                proptest::collection::vec((0usize..16, 0u32..6), 0..4),
            )
                .prop_map(|(before, changes, removed, added)| {
                    let update = ParticipantListUpdate {
                        changed_role_participants: changes
                            .into_iter()
                            .map(|(user_index, role_index)| UserindexRolePair {
                                user_index,
                                role_index,
                            })
                            .collect(),
                        removed_indices: removed,
                        added_participants: added
                            .into_iter()
                            .map(|(u, r)| pair(&format!("u{u}"), r))
                            .collect(),
                    };
                    (before, update)
                })
        })
    }

    proptest! {
        #[test]
        fn apply_keeps_its_invariants((before, update) in arb_case()) {
            match before.apply(&update) {
                Ok(after) => {
                    let removed: HashSet<u32> = update.removed_indices.iter().copied().collect();
                    prop_assert_eq!(
                        after.participants.len(),
                        before.participants.len() - removed.len()
                            + update.added_participants.len()
                    );
                    // Users stay unique, so the result encodes and decodes.
                    let decoded = ParticipantListData::decode(&after.encode()).unwrap();
                    prop_assert_eq!(decoded, after.clone());
                    for (i, p) in before.participants.iter().enumerate() {
                        let i = i as u32;
                        let found = after.find(&p.user);
                        if removed.contains(&i) {
                            prop_assert!(found.is_none());
                        } else {
                            let role = update
                                .changed_role_participants
                                .iter()
                                .find(|c| c.user_index == i)
                                .map_or(p.role_index, |c| c.role_index);
                            prop_assert_eq!(found.map(|f| f.1), Some(role));
                        }
                    }
                    // Survivors keep their relative order, and adds come last in order.
                    let kept: Vec<&IdentifierUri> = before
                        .participants
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !removed.contains(&(*i as u32)))
                        .map(|(_, p)| &p.user)
                        .chain(update.added_participants.iter().map(|p| &p.user))
                        .collect();
                    let got: Vec<&IdentifierUri> =
                        after.participants.iter().map(|p| &p.user).collect();
                    prop_assert_eq!(kept, got);
                }
                Err(_) => {
                    // Refusal is pure: the input is unchanged (it is borrowed immutably), and a
                    // refusal always has a reason the update itself shows.
                    let len = before.participants.len() as u32;
                    let out_of_range = update.removed_indices.iter().any(|&i| i >= len)
                        || update.changed_role_participants.iter().any(|c| c.user_index >= len);
                    let mut seen = HashSet::new();
                    let dup_removed = !update.removed_indices.iter().all(|i| seen.insert(*i));
                    let mut seen = HashSet::new();
                    let dup_changed = !update
                        .changed_role_participants
                        .iter()
                        .all(|c| seen.insert(c.user_index));
                    let both = update
                        .changed_role_participants
                        .iter()
                        .any(|c| update.removed_indices.contains(&c.user_index));
                    let mut users: HashSet<&IdentifierUri> =
                        before.participants.iter().map(|p| &p.user).collect();
                    let bad_add = !update.added_participants.iter().all(|p| users.insert(&p.user));
                    prop_assert!(out_of_range || dup_removed || dup_changed || both || bad_add);
                }
            }
        }
    }
}
