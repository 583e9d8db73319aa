//! Local users' profile fields and which of them peers may search (identifierQuery,
//! draft-ietf-mimi-protocol-06 §5.8): a handle, an email address, a phone number and a display
//! name, each with its own searchable flag (off until the user turns it on), and the flag of
//! the user's nick, whose value is always the user name.
//!
//! The store keeps values as the caller gives them (`mimid` checks and normalizes them first)
//! and, next to each, its lowercase form, which substring searches compare against. A search
//! sees only searchable fields with a value: a field that is set but not searchable and a user
//! that does not exist look the same to it.

use crate::db::{Db, ToValue, Value, params};
use crate::{Dialect, StoreError, StoreGuard, Tx};

/// A profile field a user can set or make searchable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProfileKey {
    /// An `im:` handle URI.
    Handle,
    /// An email address.
    Email,
    /// A phone number in E.164 form with its `+`.
    Phone,
    /// A display name.
    Name,
    /// The user name of the user's URI; it cannot be set, only made searchable.
    Nick,
}

impl ProfileKey {
    /// Every key, in the order profiles list them.
    pub const ALL: [ProfileKey; 5] = [
        ProfileKey::Handle,
        ProfileKey::Email,
        ProfileKey::Phone,
        ProfileKey::Name,
        ProfileKey::Nick,
    ];

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Handle => "handle",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Name => "name",
            Self::Nick => "nick",
        }
    }

    /// The key named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One field of a user's profile as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileEntry {
    /// Which field.
    pub key: ProfileKey,
    /// Its value, if set (the nick's is the user name once the row exists).
    pub value: Option<String>,
    /// Whether peers' identifier queries may match it.
    pub searchable: bool,
}

/// How one condition of a search compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileMatch {
    /// The field's value equals the text exactly.
    Exact(ProfileKey),
    /// The field's value contains the text, compared in lowercase.
    Contains(ProfileKey),
    /// Any searchable field's value contains the text, compared in lowercase.
    ContainsAny,
}

/// A user a search found, with every searchable field that has a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundProfile {
    /// The local user name.
    pub user_name: String,
    /// Its searchable fields and their values, in [`ProfileKey`] order.
    pub fields: Vec<(ProfileKey, String)>,
}

impl Tx<'_> {
    /// Sets (`Some`) or clears (`None`) a field of local user `user_name`; its searchable flag
    /// stays as it was. The nick cannot be set: the database refuses any value but the user
    /// name.
    pub fn set_profile_value(
        &self,
        user_name: &str,
        key: ProfileKey,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        let folded = value.map(fold);
        let set = |db: &Db| {
            db.execute(
                "INSERT INTO profile_fields (user_name, field, value, folded, searchable)
                 VALUES (?1, ?2, ?3, ?4, 0)
                 ON CONFLICT (user_name, field)
                 DO UPDATE SET value = excluded.value, folded = excluded.folded",
                params![user_name, key.as_str(), value, folded],
            )
        };
        if key != ProfileKey::Nick {
            set(self.conn())?;
            return Ok(());
        }
        // The refusal must leave the transaction usable, which PostgreSQL does only for what
        // a savepoint fenced off.
        self.conn().batch("SAVEPOINT profile_nick")?;
        match set(self.conn()) {
            Ok(_) => self.conn().batch("RELEASE SAVEPOINT profile_nick"),
            Err(e) => {
                self.conn()
                    .batch("ROLLBACK TO SAVEPOINT profile_nick; RELEASE SAVEPOINT profile_nick")?;
                Err(e)
            }
        }
    }

    /// Turns the searchable flag of a field of local user `user_name` on or off.
    pub fn set_profile_searchable(
        &self,
        user_name: &str,
        key: ProfileKey,
        searchable: bool,
    ) -> Result<(), StoreError> {
        // The nick's value is the user name, there from the row's creation.
        let value = (key == ProfileKey::Nick).then_some(user_name);
        self.conn().execute(
            "INSERT INTO profile_fields (user_name, field, value, folded, searchable)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (user_name, field) DO UPDATE SET searchable = excluded.searchable",
            params![user_name, key.as_str(), value, value.map(fold), searchable],
        )?;
        Ok(())
    }

    /// Local user `user_name`'s profile, every field in [`ProfileKey`] order.
    pub fn profile(&self, user_name: &str) -> Result<Vec<ProfileEntry>, StoreError> {
        profile(self.conn(), user_name)
    }
}

impl StoreGuard<'_> {
    /// Local user `user_name`'s profile, every field in [`ProfileKey`] order: unset fields
    /// have no value and are not searchable.
    pub fn profile(&self, user_name: &str) -> Result<Vec<ProfileEntry>, StoreError> {
        profile(&self.conn, user_name)
    }

    /// The local users, by name, for whom every condition holds on a searchable field with a
    /// value (IDQ-004); at most `limit` of them, each with its searchable fields. No condition
    /// finds nobody.
    pub fn search_profiles(
        &self,
        conditions: &[(ProfileMatch, &str)],
        limit: usize,
    ) -> Result<Vec<FoundProfile>, StoreError> {
        if conditions.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut sql = String::from("SELECT name FROM users u WHERE 1 = 1");
        // The engines name the substring search differently.
        let contains = match self.conn.dialect() {
            Dialect::Sqlite => "instr",
            Dialect::Postgres => "strpos",
        };
        let mut values: Vec<String> = Vec::new();
        for (how, text) in conditions {
            // Each condition is one EXISTS over the user's searchable fields; the text is
            // always a bound parameter, so nothing in it is SQL or a pattern.
            let n = values.len() + 1;
            let test = match how {
                ProfileMatch::Exact(key) => {
                    values.push(key.as_str().to_owned());
                    values.push((*text).to_owned());
                    format!("f.field = ?{n} AND f.value = ?{}", n + 1)
                }
                ProfileMatch::Contains(key) => {
                    values.push(key.as_str().to_owned());
                    values.push(fold(text));
                    format!("f.field = ?{n} AND {contains}(f.folded, ?{}) > 0", n + 1)
                }
                ProfileMatch::ContainsAny => {
                    values.push(fold(text));
                    format!("{contains}(f.folded, ?{n}) > 0")
                }
            };
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM profile_fields f WHERE f.user_name = u.name \
                 AND f.searchable = 1 AND f.value IS NOT NULL AND {test})"
            ));
        }
        // The limit is bound too, so each shape of search is one cached statement.
        sql.push_str(&format!(" ORDER BY name LIMIT ?{}", values.len() + 1));
        let mut values: Vec<Value<'_>> = values.iter().map(|v| v.to_value()).collect();
        values.push(Value::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
        let names: Vec<String> = self.conn.query(&sql, &values, |r| r.get(0))?;
        let mut found = Vec::with_capacity(names.len());
        for user_name in names {
            let fields = profile(&self.conn, &user_name)?
                .into_iter()
                .filter(|e| e.searchable)
                .filter_map(|e| Some((e.key, e.value?)))
                .collect();
            found.push(FoundProfile { user_name, fields });
        }
        Ok(found)
    }
}

fn profile(db: &Db, user_name: &str) -> Result<Vec<ProfileEntry>, StoreError> {
    let rows = db.query(
        "SELECT field, value, searchable FROM profile_fields WHERE user_name = ?1",
        params![user_name],
        |r| {
            Ok((
                r.get::<String>(0)?,
                r.get::<Option<String>>(1)?,
                r.get::<bool>(2)?,
            ))
        },
    )?;
    let mut entries: Vec<ProfileEntry> = ProfileKey::ALL
        .into_iter()
        .map(|key| ProfileEntry {
            key,
            value: None,
            searchable: false,
        })
        .collect();
    for (field, value, searchable) in rows {
        // The table's CHECK admits only the five names.
        let key = ProfileKey::parse(&field)
            .ok_or_else(|| StoreError::NotFound(format!("profile field {field:?}")))?;
        if let Some(entry) = entries.iter_mut().find(|e| e.key == key) {
            entry.value = value;
            entry.searchable = searchable;
        }
    }
    Ok(entries)
}

/// The lowercase form substring searches compare (Unicode-aware, unlike SQLite's `lower`).
fn fold(text: &str) -> String {
    text.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, engine_test};

    fn add_users(store: &Store, users: &[&str]) {
        let mut guard = store.lock().unwrap();
        let tx = guard.begin().unwrap();
        for user in users {
            tx.ensure_user(user, 0).unwrap();
        }
        tx.commit().unwrap();
    }

    fn edit(store: &Store, f: impl FnOnce(&Tx<'_>)) {
        let mut guard = store.lock().unwrap();
        let tx = guard.begin().unwrap();
        f(&tx);
        tx.commit().unwrap();
    }

    fn names(found: &[FoundProfile]) -> Vec<&str> {
        found.iter().map(|f| f.user_name.as_str()).collect()
    }

    engine_test! {
        fn a_new_users_profile_is_empty_and_nothing_is_searchable(store) {
            add_users(store, &["alice"]);
            let profile = store.read().unwrap().profile("alice").unwrap();
            assert_eq!(profile.len(), 5);
            assert!(profile.iter().all(|e| e.value.is_none() && !e.searchable));
            let reader = store.read().unwrap();
            for how in [
                ProfileMatch::Exact(ProfileKey::Nick),
                ProfileMatch::ContainsAny,
            ] {
                assert!(
                    reader
                        .search_profiles(&[(how, "alice")], 10)
                        .unwrap()
                        .is_empty()
                );
            }
        }
    }

    engine_test! {
        fn only_searchable_fields_with_a_value_are_found_and_disclosed(store) {
            add_users(store, &["alice", "bob"]);
            edit(store, |tx| {
                tx.set_profile_value("alice", ProfileKey::Email, Some("al@a.example"))
                    .unwrap();
                tx.set_profile_value("alice", ProfileKey::Phone, Some("+15550001"))
                    .unwrap();
                tx.set_profile_value("alice", ProfileKey::Name, Some("Alice Ångström"))
                    .unwrap();
                tx.set_profile_searchable("alice", ProfileKey::Email, true)
                    .unwrap();
                tx.set_profile_searchable("alice", ProfileKey::Name, true)
                    .unwrap();
                // Searchable before it has a value: matches nothing yet.
                tx.set_profile_searchable("bob", ProfileKey::Phone, true)
                    .unwrap();
            });
            let reader = store.read().unwrap();
            let email = reader
                .search_profiles(
                    &[(ProfileMatch::Exact(ProfileKey::Email), "al@a.example")],
                    10,
                )
                .unwrap();
            assert_eq!(
                email,
                [FoundProfile {
                    user_name: "alice".into(),
                    fields: vec![
                        (ProfileKey::Email, "al@a.example".into()),
                        (ProfileKey::Name, "Alice Ångström".into()),
                    ],
                }]
            );
            // The phone is set but not searchable; exact means exact.
            for (how, text) in [
                (ProfileMatch::Exact(ProfileKey::Phone), "+15550001"),
                (ProfileMatch::Exact(ProfileKey::Email), "AL@a.example"),
                (ProfileMatch::ContainsAny, "5550001"),
                (ProfileMatch::Exact(ProfileKey::Nick), "alice"),
            ] {
                assert!(
                    reader
                        .search_profiles(&[(how, text)], 10)
                        .unwrap()
                        .is_empty(),
                    "{how:?} {text}"
                );
            }
            // Substrings compare in lowercase, Unicode included.
            for text in ["ÅNGST", "lice å", "alice"] {
                let found = reader
                    .search_profiles(&[(ProfileMatch::Contains(ProfileKey::Name), text)], 10)
                    .unwrap();
                assert_eq!(names(&found), ["alice"], "{text}");
            }
        }
    }

    engine_test! {
        fn every_condition_must_hold_and_the_limit_caps_the_answer(store) {
            add_users(store, &["ann", "anna", "annie", "bo"]);
            edit(store, |tx| {
                for (user, name) in [
                    ("ann", "Ann Lee"),
                    ("anna", "Anna Lee"),
                    ("annie", "Annie Wu"),
                    ("bo", "Bo Lee"),
                ] {
                    tx.set_profile_value(user, ProfileKey::Name, Some(name))
                        .unwrap();
                    tx.set_profile_searchable(user, ProfileKey::Name, true)
                        .unwrap();
                    tx.set_profile_searchable(user, ProfileKey::Nick, true)
                        .unwrap();
                }
            });
            let reader = store.read().unwrap();
            let ann = [(ProfileMatch::Contains(ProfileKey::Name), "ann")];
            assert_eq!(
                names(&reader.search_profiles(&ann, 10).unwrap()),
                ["ann", "anna", "annie"]
            );
            assert_eq!(
                names(&reader.search_profiles(&ann, 2).unwrap()),
                ["ann", "anna"]
            );
            let both = [
                (ProfileMatch::Contains(ProfileKey::Name), "ann"),
                (ProfileMatch::ContainsAny, "lee"),
            ];
            assert_eq!(
                names(&reader.search_profiles(&both, 10).unwrap()),
                ["ann", "anna"]
            );
            let nick = [(ProfileMatch::Exact(ProfileKey::Nick), "bo")];
            let found = reader.search_profiles(&nick, 10).unwrap();
            assert_eq!(
                found[0].fields,
                [
                    (ProfileKey::Name, "Bo Lee".to_owned()),
                    (ProfileKey::Nick, "bo".to_owned())
                ]
            );
            assert!(reader.search_profiles(&[], 10).unwrap().is_empty());
            // Patterns are text, not wildcards.
            assert!(
                reader
                    .search_profiles(&[(ProfileMatch::ContainsAny, "%")], 10)
                    .unwrap()
                    .is_empty()
            );
        }
    }

    engine_test! {
        fn clearing_a_field_or_its_flag_makes_its_user_unfindable_by_it(store) {
            add_users(store, &["alice"]);
            let by_handle = [(ProfileMatch::Exact(ProfileKey::Handle), "im:al@a.example")];
            edit(store, |tx| {
                tx.set_profile_value("alice", ProfileKey::Handle, Some("im:al@a.example"))
                    .unwrap();
                tx.set_profile_searchable("alice", ProfileKey::Handle, true)
                    .unwrap();
            });
            assert_eq!(
                store
                    .read()
                    .unwrap()
                    .search_profiles(&by_handle, 10)
                    .unwrap()
                    .len(),
                1
            );
            edit(store, |tx| {
                tx.set_profile_searchable("alice", ProfileKey::Handle, false)
                    .unwrap()
            });
            assert!(
                store
                    .read()
                    .unwrap()
                    .search_profiles(&by_handle, 10)
                    .unwrap()
                    .is_empty()
            );
            edit(store, |tx| {
                tx.set_profile_searchable("alice", ProfileKey::Handle, true)
                    .unwrap();
                tx.set_profile_value("alice", ProfileKey::Handle, None)
                    .unwrap();
            });
            let reader = store.read().unwrap();
            assert!(reader.search_profiles(&by_handle, 10).unwrap().is_empty());
            let handle = &reader.profile("alice").unwrap()[0];
            assert_eq!((handle.value.as_deref(), handle.searchable), (None, true));
        }
    }

    engine_test! {
        fn the_nick_holds_the_user_name_and_nothing_else(store) {
            add_users(store, &["alice"]);
            edit(store, |tx| {
                tx.set_profile_searchable("alice", ProfileKey::Nick, true)
                    .unwrap();
            });
            let mut guard = store.lock().unwrap();
            let tx = guard.begin().unwrap();
            assert!(
                tx.set_profile_value("alice", ProfileKey::Nick, Some("mallory"))
                    .is_err()
            );
            let nick = tx.profile("alice").unwrap()[4].clone();
            assert_eq!(nick.value.as_deref(), Some("alice"));
        }
    }

    engine_test! {
        fn a_removed_users_profile_goes_with_it(store) {
            add_users(store, &["alice"]);
            edit(store, |tx| {
                tx.set_profile_value("alice", ProfileKey::Email, Some("al@a.example"))
                    .unwrap();
                tx.set_profile_searchable("alice", ProfileKey::Email, true)
                    .unwrap();
                assert!(tx.remove_user("alice").unwrap());
            });
            let reader = store.read().unwrap();
            assert!(
                reader
                    .search_profiles(
                        &[(ProfileMatch::Exact(ProfileKey::Email), "al@a.example")],
                        10
                    )
                    .unwrap()
                    .is_empty()
            );
            assert!(reader.profile("alice").unwrap()[1].value.is_none());
        }
    }
}
