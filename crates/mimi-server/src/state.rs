//! What every handler shares: config, store, keys, the peer client and the fan-out wake-up.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use mimi_identity::ProviderIdentity;
use mimi_room::TrustAnchor;
use mimi_store::{Store, Tx};
use tokio::sync::Notify;

use crate::config::Config;
use crate::error::ApiError;
use crate::peers::Peers;
use crate::tls::TlsMaterial;

/// Shared server state.
pub(crate) struct AppState {
    pub(crate) config: Config,
    pub(crate) store: Store,
    pub(crate) anchor: TrustAnchor,
    pub(crate) identity: ProviderIdentity,
    pub(crate) hub_public_key: Vec<u8>,
    /// The hub's external-sender key, which also signs GroupInfo responses.
    pub(crate) hub_key: ring::signature::Ed25519KeyPair,
    pub(crate) peers: Peers,
    /// Woken whenever the outbox gains entries.
    pub(crate) outbox_wake: Notify,
}

impl AppState {
    pub(crate) fn new(config: Config, tls: &TlsMaterial) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(&config.dir)?;
        let store = Store::open(&config.dir.join("mimid.sqlite"))?;
        let identity = ProviderIdentity::from_pem(
            &std::fs::read_to_string(config.path(&config.identity_cert))?,
            &std::fs::read_to_string(config.path(&config.identity_key))?,
        )
        .context("cannot load the identity CA")?;
        if identity.domain() != config.domain {
            anyhow::bail!(
                "identity certificate is for {}, not {}",
                identity.domain(),
                config.domain
            );
        }
        let seed = hex::decode(std::fs::read_to_string(config.path(&config.hub_key))?.trim())
            .context("hub key is not hex")?;
        let hub = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| anyhow::anyhow!("hub key is not an Ed25519 seed"))?;
        let hub_public_key = ring::signature::KeyPair::public_key(&hub).as_ref().to_vec();
        let peers = Peers::new(&config, tls)?;
        Ok(Arc::new(Self {
            anchor: TrustAnchor::from_der(tls.anchor_der.clone()),
            config,
            store,
            identity,
            hub_public_key,
            hub_key: hub,
            peers,
            outbox_wake: Notify::new(),
        }))
    }

    pub(crate) fn domain(&self) -> &str {
        &self.config.domain
    }

    /// This hub's entry in a room's `external_senders`: its key with the basic credential
    /// `mimi://DOMAIN` (IN-SERVER-5), TLS-encoded.
    pub(crate) fn hub_sender(&self) -> mimi_protocol::ExternalSender {
        mimi_protocol::ExternalSender {
            signature_key: mimi_protocol::SignaturePublicKey(self.hub_public_key.clone()),
            credential: mimi_protocol::Credential::Basic {
                identity: format!("mimi://{}", self.domain()).into_bytes(),
            },
        }
    }

    /// Runs `work` in one store transaction on the blocking pool and commits it if `work`
    /// succeeds; the caller answers only after this returns.
    pub(crate) async fn write<T, F>(self: &Arc<Self>, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T, ApiError> + Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = state.store.lock()?;
            let tx = guard.begin()?;
            let value = work(&tx)?;
            tx.commit()?;
            Ok(value)
        })
        .await?
    }
}

/// Milliseconds since the UNIX epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Seconds since the UNIX epoch.
pub(crate) fn now_secs() -> u64 {
    now_ms() / 1000
}
