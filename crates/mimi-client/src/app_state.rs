//! Application state in a room: values in the private-use components 0x8000–0xFFFF
//! (IN-ROOMSTATE-3), in plaintext or encrypted under a random per-value key that members pass
//! to each other in MLS application messages, so the providers hold ciphertext only
//! (IN-ROOMSTATE-7).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use mimi_protocol::tls::{Codec, Reader, put_codec_vec};
use mimi_protocol::{DecodeError, SubmitMessageResponse, SubmitOutcome, Wire};
use sha2::{Digest, Sha256};

use crate::api::Repeat;
use crate::client::{Client, room_path};
use crate::error::ClientError;
use crate::profile;

/// The first application component ID (mls-extensions private use).
const FIRST_APP_COMPONENT: u16 = 0x8000;
/// The first bytes of an encrypted value (IN-ROOMSTATE-7).
pub(crate) const VALUE_MAGIC: &[u8; 8] = b"MIMI-E1\0";
/// The first bytes of a key-share message's plaintext (IN-ROOMSTATE-7).
/// Whether component `id` holds a value encrypted as IN-ROOMSTATE-7 describes (a private-use
/// ID whose bytes start with the value marker).
pub fn is_encrypted_app_value(id: u16, bytes: &[u8]) -> bool {
    mimi_protocol::ComponentId(id).is_private_use() && bytes.starts_with(VALUE_MAGIC)
}

pub(crate) const SHARE_MAGIC: &[u8; 8] = b"MIMI-K1\0";
/// The fixed start of an encrypted value's AAD; the component ID and room URI follow.
const AAD_LABEL: &[u8] = b"mimi-rs app component";
/// Bytes of a value key, a key ID, a nonce and an AES-GCM tag.
const KEY_LEN: usize = 16;
const KEY_ID_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The shortest encrypted value: the header and the tag of an empty plaintext.
const MIN_SEALED_LEN: usize = VALUE_MAGIC.len() + KEY_ID_LEN + NONCE_LEN + TAG_LEN;
/// Bytes of one encoded `AppKey`.
const APP_KEY_LEN: usize = 2 + KEY_ID_LEN + KEY_LEN;
/// Bound on a key share's `keys` vector: one key for each application component a room may
/// hold, which is all a member ever needs to pass on at once.
const MAX_SHARE_BYTES: usize = mimi_room::MAX_APP_COMPONENTS * APP_KEY_LEN;
/// The `sent` row of a key share: not a message ID (those are 64 hex digits), so its echo is
/// recognised and never dates or shows an event.
pub(crate) const KEY_SHARE_SENT: &str = "key-share";

/// An application component's value as this client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppStateValue {
    /// The plaintext; `None` if the value is encrypted and this client holds no key for it.
    pub value: Option<Vec<u8>>,
    /// Whether the value is encrypted (starts with `MIMI-E1\0`).
    pub encrypted: bool,
    /// The component's bytes as they are in the room's state.
    pub raw: Vec<u8>,
}

/// The key of one encrypted value: `struct { uint16 component_id; opaque key_id[16];
/// opaque key[16]; } AppKey;` (IN-ROOMSTATE-7).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct AppKey {
    pub(crate) component_id: u16,
    pub(crate) key_id: [u8; KEY_ID_LEN],
    pub(crate) key: [u8; KEY_LEN],
}

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material, even in a test failure.
        f.debug_struct("AppKey")
            .field("component_id", &format_args!("{:#06x}", self.component_id))
            .field("key_id", &hex::encode(self.key_id))
            .finish_non_exhaustive()
    }
}

impl Codec for AppKey {
    const NAME: &'static str = "AppKey";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let component_id = r.u16(Self::NAME)?;
        let mut key_id = [0; KEY_ID_LEN];
        key_id.copy_from_slice(r.bytes(KEY_ID_LEN, Self::NAME)?);
        let mut key = [0; KEY_LEN];
        key.copy_from_slice(r.bytes(KEY_LEN, Self::NAME)?);
        Ok(Self {
            component_id,
            key_id,
            key,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.component_id.to_be_bytes());
        out.extend_from_slice(&self.key_id);
        out.extend_from_slice(&self.key);
    }
}

/// A key-share message's plaintext: `"MIMI-K1" 0x00` ‖ `AppKey keys<V>`.
pub(crate) fn encode_share(keys: &[AppKey]) -> Vec<u8> {
    let mut out = SHARE_MAGIC.to_vec();
    put_codec_vec(&mut out, keys);
    out
}

/// Decodes a key-share plaintext exactly (APP-001): the magic, then `AppKey keys<V>` within
/// its bound and nothing after it.
pub(crate) fn decode_share(plaintext: &[u8]) -> Result<Vec<AppKey>, DecodeError> {
    const NAME: &str = "KeyShare";
    let body = plaintext
        .strip_prefix(SHARE_MAGIC.as_slice())
        .ok_or(DecodeError::Malformed {
            ty: NAME,
            reason: "does not start with MIMI-K1",
        })?;
    let mut r = Reader::new(body);
    let keys = r.vec(NAME, MAX_SHARE_BYTES, AppKey::read)?;
    r.finish(NAME)?;
    Ok(keys)
}

/// Whether a plaintext is a key share rather than MIMI content (CBOR content starts with an
/// array header, never with `M`).
pub(crate) fn is_key_share(plaintext: &[u8]) -> bool {
    plaintext.starts_with(SHARE_MAGIC)
}

/// The parts of an encrypted value.
#[derive(Debug, PartialEq, Eq)]
struct Sealed<'a> {
    key_id: [u8; KEY_ID_LEN],
    nonce: [u8; NONCE_LEN],
    ciphertext: &'a [u8],
}

impl<'a> Sealed<'a> {
    /// Splits a component's bytes into an encrypted value's parts; `None` if they are not one.
    fn parse(raw: &'a [u8]) -> Option<Self> {
        let rest = raw.strip_prefix(VALUE_MAGIC.as_slice())?;
        if raw.len() < MIN_SEALED_LEN {
            return None;
        }
        let (key_id, rest) = rest.split_at(KEY_ID_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        Some(Self {
            key_id: key_id.try_into().ok()?,
            nonce: nonce.try_into().ok()?,
            ciphertext,
        })
    }
}

/// `"mimi-rs app component" ‖ uint16 component_id ‖ room URI`.
fn aad(component_id: u16, room: &str) -> Vec<u8> {
    let mut aad = AAD_LABEL.to_vec();
    aad.extend_from_slice(&component_id.to_be_bytes());
    aad.extend_from_slice(room.as_bytes());
    aad
}

/// Encrypts `plaintext` for component `id` of `room` under `key`; returns the component bytes.
fn seal(
    room: &str,
    id: u16,
    key: &AppKey,
    nonce: [u8; NONCE_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, ClientError> {
    let cipher = aes_gcm::Aes128Gcm::new(&key.key.into());
    let ciphertext = cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plaintext,
                aad: &aad(id, room),
            },
        )
        .map_err(|_| ClientError::Internal("cannot encrypt the application value".into()))?;
    let mut out = Vec::with_capacity(MIN_SEALED_LEN + plaintext.len());
    out.extend_from_slice(VALUE_MAGIC);
    out.extend_from_slice(&key.key_id);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// [`seal`] with a random nonce, for tests that build a room's state by hand.
#[cfg(test)]
pub(crate) fn seal_for_test(room: &str, id: u16, key: &AppKey, plaintext: &[u8]) -> Vec<u8> {
    seal(room, id, key, rand::random(), plaintext).expect("AES-GCM encrypts any short input")
}

/// Decrypts an encrypted value of component `id` of `room`; `None` if `key` does not open it
/// (another key, another room or component, or altered bytes: APP-002).
fn open(room: &str, id: u16, sealed: &Sealed<'_>, key: &[u8; KEY_LEN]) -> Option<Vec<u8>> {
    aes_gcm::Aes128Gcm::new(&(*key).into())
        .decrypt(
            &sealed.nonce.into(),
            Payload {
                msg: sealed.ciphertext,
                aad: &aad(id, room),
            },
        )
        .ok()
}

/// APP-004: only application components go through these operations.
fn check_app_id(id: u16) -> Result<(), ClientError> {
    if id < FIRST_APP_COMPONENT {
        return Err(ClientError::Usage(format!(
            "component {id:#06x} is not an application component (0x8000..=0xffff)"
        )));
    }
    Ok(())
}

impl Client {
    /// Sets application component `id` (0x8000..=0xFFFF) of `room` to `value` in one commit.
    /// With `encrypted`, the value is encrypted under a fresh key that is then sent to the
    /// room's members in the new epoch (IN-ROOMSTATE-7); the hub sees ciphertext only.
    pub async fn put_app_state(
        &mut self,
        room: &str,
        id: u16,
        value: &[u8],
        encrypted: bool,
    ) -> Result<(), ClientError> {
        check_app_id(id)?;
        if !encrypted {
            // APP-004: a plaintext that looks encrypted would read as "no key" everywhere.
            if value.starts_with(VALUE_MAGIC) {
                return Err(ClientError::Usage(
                    "a plaintext value may not start with MIMI-E1\\0, the mark of an encrypted one"
                        .into(),
                ));
            }
            return self.set_component(room, id, Some(value.to_vec())).await;
        }
        let limit = mimi_room::MAX_APP_COMPONENT_LEN - MIN_SEALED_LEN;
        if value.len() > limit {
            return Err(ClientError::Usage(format!(
                "an encrypted value holds at most {limit} bytes, not {}",
                value.len()
            )));
        }
        let key = AppKey {
            component_id: id,
            key_id: rand::random(),
            key: rand::random(),
        };
        let sealed = seal(room, id, &key, rand::random(), value)?;
        // The key is stored before the commit leaves: if the hub's verdict is lost and the
        // commit was accepted after all, we still hold the key of the room's value.
        let tx = self.profile.transaction()?;
        profile::save_app_keys(&tx, room, std::slice::from_ref(&key))?;
        tx.commit()?;
        if let Err(e) = self.set_component(room, id, Some(sealed)).await {
            if !matches!(e, ClientError::Provider(_)) {
                let tx = self.profile.transaction()?;
                profile::drop_app_key(&tx, room, &key.key_id)?;
                tx.commit()?;
            }
            return Err(e);
        }
        self.share_keys(room, &[key]).await.map_err(|e| {
            after_commit(
                e,
                "the value is set, but its key was not sent to the members",
            )
        })
    }

    /// Application component `id` of `room` as this client last saw it, decrypted if it is
    /// encrypted and this client holds its key; `None` if the room has no such component.
    pub fn app_state(&self, room: &str, id: u16) -> Result<Option<AppStateValue>, ClientError> {
        check_app_id(id)?;
        let view = self.room_state(room)?;
        let Some((_, raw)) = view.components.into_iter().find(|(c, _)| *c == id) else {
            return Ok(None);
        };
        if !raw.starts_with(VALUE_MAGIC) {
            return Ok(Some(AppStateValue {
                value: Some(raw.clone()),
                encrypted: false,
                raw,
            }));
        }
        let value = match Sealed::parse(&raw) {
            Some(sealed) => match self.profile.app_key(room, &sealed.key_id)? {
                Some(key) => {
                    let opened = open(room, id, &sealed, &key);
                    if opened.is_none() {
                        tracing::warn!(room, component = id, "encrypted value does not open");
                    }
                    opened
                }
                None => None,
            },
            None => {
                tracing::warn!(room, component = id, "encrypted value too short");
                None
            }
        };
        Ok(Some(AppStateValue {
            value,
            encrypted: true,
            raw,
        }))
    }

    /// Removes application component `id` (0x8000..=0xFFFF) from `room` in one commit.
    pub async fn delete_app_state(&mut self, room: &str, id: u16) -> Result<(), ClientError> {
        check_app_id(id)?;
        self.set_component(room, id, None).await
    }

    /// The keys this client holds for the room's current encrypted application values.
    pub(crate) fn held_keys(&self, room: &str) -> Result<Vec<AppKey>, ClientError> {
        let view = self.room_state(room)?;
        let mut keys = Vec::new();
        for (id, raw) in &view.components {
            if *id < FIRST_APP_COMPONENT {
                continue;
            }
            let Some(sealed) = Sealed::parse(raw) else {
                continue;
            };
            if let Some(key) = self.profile.app_key(room, &sealed.key_id)? {
                keys.push(AppKey {
                    component_id: *id,
                    key_id: sealed.key_id,
                    key,
                });
            }
        }
        Ok(keys)
    }

    /// Sends one key share with every key of the room's current encrypted values this client
    /// holds, if it holds any: after a commit that added clients, or for a new device that
    /// joined by itself (IN-ROOMSTATE-7).
    pub(crate) async fn share_held_keys(&mut self, room: &str) -> Result<(), ClientError> {
        let keys = self.held_keys(room)?;
        if keys.is_empty() {
            return Ok(());
        }
        self.share_keys(room, &keys).await
    }

    /// Sends `keys` to the room's current members in one MLS application message. Like a
    /// message, it is recorded as sent so its echo is skipped, but it is not shown in history.
    async fn share_keys(&mut self, room: &str, keys: &[AppKey]) -> Result<(), ClientError> {
        if !self.state.is_active(room) || self.state.is_leaving(room) {
            return Err(ClientError::NotAllowed(format!(
                "{} cannot send keys in {room}",
                self.account.user_uri
            )));
        }
        self.commit_pending(room).await?;
        let me = self.me();
        let plaintext = encode_share(keys);
        let (ciphertext, _epoch) = self.attempt(|s| s.encrypt(&me, room, &plaintext))?;
        let hash = Sha256::digest(&ciphertext).to_vec();
        // The sender ratchet moved: save that before anything leaves, as for messages.
        profile::store(&mut self.profile, &mut self.state, |tx| {
            profile::mark_sent_only(tx, &hash, room, KEY_SHARE_SENT)
        })?;
        let path = format!("/client/v1/submit/{}", room_path(room)?);
        // Repeated after a lost answer: the hub answers a message it already has as before
        // and does not deliver it twice (FED-016).
        let answer = self.api.post_bytes(&path, ciphertext, Repeat::Safe).await?;
        let response = SubmitMessageResponse::decode(&answer)
            .map_err(|e| ClientError::Provider(format!("malformed submit answer: {e}")))?;
        match response.outcome {
            SubmitOutcome::Accepted { .. } => Ok(()),
            SubmitOutcome::NotAllowed => Err(ClientError::Refused(format!(
                "the hub does not allow {} to send keys in {room} (canSendMessage)",
                self.account.user_uri
            ))),
            SubmitOutcome::EpochTooOld { current_epoch } => Err(ClientError::Refused(format!(
                "the room moved on to epoch {current_epoch} before the keys were sent"
            ))),
            SubmitOutcome::Other(code) => Err(ClientError::Refused(format!(
                "the hub answered {code:?} to the key share"
            ))),
        }
    }
}

/// A failure after the commit went through: the same kind of error, saying what did happen.
pub(crate) fn after_commit(e: ClientError, what_happened: &str) -> ClientError {
    let say = |m: String| format!("{what_happened}: {m}");
    match e {
        ClientError::Usage(m) => ClientError::Usage(say(m)),
        ClientError::Refused(m) => ClientError::Refused(say(m)),
        // Not to be retried as a whole: the commit is done.
        ClientError::Stale(m) => ClientError::Refused(say(m)),
        ClientError::NotAllowed(m) => ClientError::NotAllowed(say(m)),
        ClientError::Provider(m) => ClientError::Provider(say(m)),
        ClientError::Profile(m) => ClientError::Profile(say(m)),
        ClientError::Internal(m) => ClientError::Internal(say(m)),
        // Encrypting the share failed in MLS after our own commit merged: not the caller's
        // fault nor the provider's.
        ClientError::Room(r) => ClientError::Internal(say(r.to_string())),
    }
}

#[cfg(test)]
mod tests;
