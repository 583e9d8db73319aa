//! Several `mimid` nodes serving one domain from one PostgreSQL database (docs/architecture.md,
//! "Cluster"). Any node takes any request; what must happen in one place happens on the node
//! holding its lease (`mimi_store` `leases`):
//!
//! * a hosted room's owner (`hub`): the node that holds `room:URI`. Another node asks it over
//!   the internal endpoint ([`forward`], [`serve_internal`]), with the domain's own mutual-TLS
//!   certificate, which only the domain's nodes hold;
//! * a peer's fan-out sender (`fanout`): the node that holds `peer:DOMAIN`.
//!
//! Leases are renewed every third of `cluster.lease_ms` ([`run_renewals`]); a node that dies
//! loses them when they lapse, and the next request takes them over. Each takeover has a new
//! generation, which a room's writes check inside their transaction ([`fence`]), so a node
//! that lost a room cannot write over its successor.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mimi_protocol::{
    GroupInfoRequest, GroupInfoResponse, HandshakeBundle, SubmitMessageRequest,
    SubmitMessageResponse, UpdateRoomResponse, Wire,
};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{ApiError, ErrorKind};
use crate::hub::Hub;
use crate::state::{AppState, now_ms};
use crate::tls::TlsMaterial;

/// The path of the internal endpoint, on the same listener as the federation API.
pub(crate) const INTERNAL_PATH: &str = "/internal/v1/hub";

/// This node's part in the cluster.
pub(crate) struct Cluster {
    node: String,
    address: String,
    lease_ms: i64,
    /// The leases this node holds, by resource, with their generations, and when the set was
    /// last confirmed by a renewal. Trusted only while that is recent (see [`Cluster::held`]).
    held: Mutex<Held>,
    /// Leases other nodes hold, as last read: resource → (node, expiry in ms). Trusted until
    /// the expiry, or until the node stops answering.
    elsewhere: Mutex<HashMap<String, (String, i64)>>,
    /// The other nodes' addresses by name, as last read.
    addresses: Mutex<HashMap<String, String>>,
    /// One HTTPS client per other node, by its address.
    clients: Mutex<HashMap<String, reqwest::Client>>,
    domain: String,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    /// The largest answer read from another node (`limits.max_body_bytes`).
    max_answer: usize,
}

struct Held {
    leases: HashMap<String, i64>,
    confirmed: Instant,
}

/// Where a room's commands are handled.
pub(crate) enum Place {
    /// Here, by an owner of this lease generation (`None`: not in a cluster).
    Here(Option<i64>),
    /// On the node at this address.
    Node(String),
}

/// The lease resource of a hosted room.
pub(crate) fn room_resource(room_uri: &str) -> String {
    format!("room:{room_uri}")
}

/// The lease resource of a peer's fan-out queue.
pub(crate) fn peer_resource(peer: &str) -> String {
    format!("peer:{peer}")
}

impl Cluster {
    /// The cluster part of `config`, if it names one.
    pub(crate) fn new(config: &Config, tls: &TlsMaterial) -> anyhow::Result<Option<Self>> {
        let Some(cluster) = &config.cluster else {
            return Ok(None);
        };
        if !matches!(config.store_location(), mimi_store::Location::Postgres(_)) {
            anyhow::bail!("cluster needs a PostgreSQL database the nodes share");
        }
        Ok(Some(Self {
            node: cluster.node.clone(),
            address: cluster.address.to_string(),
            lease_ms: i64::try_from(cluster.lease_ms).unwrap_or(i64::MAX),
            held: Mutex::new(Held {
                leases: HashMap::new(),
                confirmed: Instant::now(),
            }),
            elsewhere: Mutex::new(HashMap::new()),
            addresses: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            domain: config.domain.clone(),
            tls: Arc::new(tls.client_config()?),
            timeout: Duration::from_secs(config.limits.peer_timeout_secs),
            max_answer: config.limits.max_body_bytes,
        }))
    }

    /// The generation of `resource` if this node holds it, as far as the last renewal knows.
    /// After a renewal is overdue by half a lease nothing is trusted: the lease may have lapsed.
    fn held(&self, resource: &str) -> Option<i64> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = held.confirmed.elapsed() < Duration::from_millis(self.lease_ms as u64 / 2);
        fresh.then(|| held.leases.get(resource).copied()).flatten()
    }

    /// Takes `resource` if it is free or lapsed (or extends it if it is ours); returns the
    /// holder's name and the lease generation.
    async fn take(state: &Arc<AppState>, resource: &str) -> Result<(String, i64), ApiError> {
        let cluster = state.cluster()?;
        if let Some(generation) = cluster.held(resource) {
            return Ok((cluster.node.clone(), generation));
        }
        // Held elsewhere: a read tells, without queueing a write behind the whole domain's.
        let now = now_ms() as i64;
        let known = {
            let elsewhere = cluster.elsewhere.lock().unwrap_or_else(|e| e.into_inner());
            elsewhere
                .get(resource)
                .filter(|(_, until)| *until > now)
                .cloned()
        };
        let holder = match known {
            Some((node, until)) => Some((node, until)),
            None => {
                let (s, r) = (state.clone(), resource.to_owned());
                tokio::task::spawn_blocking(move || s.store.read()?.lease_holder(&r, now))
                    .await??
                    .map(|lease| (lease.node, lease.expires_at_ms))
            }
        };
        if let Some((node, until)) = holder
            && node != cluster.node
        {
            let mut elsewhere = cluster.elsewhere.lock().unwrap_or_else(|e| e.into_inner());
            elsewhere.insert(resource.to_owned(), (node.clone(), until));
            return Ok((node, 0));
        }
        let (node, ttl, r) = (cluster.node.clone(), cluster.lease_ms, resource.to_owned());
        let lease = state
            .write(move |tx| Ok(tx.take_lease(&r, &node, now_ms() as i64, ttl)?))
            .await?;
        if lease.node == cluster.node {
            let mut held = cluster.held.lock().unwrap_or_else(|e| e.into_inner());
            held.leases.insert(resource.to_owned(), lease.generation);
        } else {
            let mut elsewhere = cluster.elsewhere.lock().unwrap_or_else(|e| e.into_inner());
            elsewhere.insert(
                resource.to_owned(),
                (lease.node.clone(), lease.expires_at_ms),
            );
        }
        Ok((lease.node, lease.generation))
    }

    /// Where the commands of the hosted room `room_uri` go: here (taking its lease if it is
    /// free), or the node that holds it.
    pub(crate) async fn place_room(
        state: &Arc<AppState>,
        room_uri: &str,
    ) -> Result<Place, ApiError> {
        let Some(cluster) = &state.cluster else {
            return Ok(Place::Here(None));
        };
        let (node, generation) = Self::take(state, &room_resource(room_uri)).await?;
        if node == cluster.node {
            return Ok(Place::Here(Some(generation)));
        }
        let known = {
            let addresses = cluster.addresses.lock().unwrap_or_else(|e| e.into_inner());
            addresses.get(&node).cloned()
        };
        if let Some(address) = known {
            return Ok(Place::Node(address));
        }
        let s = state.clone();
        let nodes = tokio::task::spawn_blocking(move || s.store.read()?.cluster_nodes()).await??;
        let mut addresses = cluster.addresses.lock().unwrap_or_else(|e| e.into_inner());
        addresses.extend(nodes.into_iter().map(|n| (n.node, n.address)));
        match addresses.get(&node) {
            Some(address) => Ok(Place::Node(address.clone())),
            None => Err(ApiError::unavailable(
                format!("{room_uri} is held by node {node}, which has not reported where it is"),
                1,
            )),
        }
    }

    /// Whether this node may send `peer`'s fan-out now (taking the lease if it is free).
    pub(crate) async fn may_send_to(state: &Arc<AppState>, peer: &str) -> Result<bool, ApiError> {
        let Some(cluster) = &state.cluster else {
            return Ok(true);
        };
        let (node, _) = Self::take(state, &peer_resource(peer)).await?;
        Ok(node == cluster.node)
    }

    /// The HTTPS client for the node at `address` (the domain's name, that node's address).
    fn client(&self, address: &str) -> Result<reqwest::Client, ApiError> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(address) {
            return Ok(client.clone());
        }
        let addr: std::net::SocketAddr = address
            .parse()
            .map_err(|e| ApiError::internal(format!("node address {address:?}: {e}")))?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls((*self.tls).clone())
            .resolve(&self.domain, addr)
            .timeout(self.timeout)
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(ApiError::internal)?;
        clients.insert(address.to_owned(), client.clone());
        Ok(client)
    }
}

/// A room command another node of the cluster forwards to the room's owner.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Op {
    /// `Hub::update`.
    Update {
        bundle: String,
        forwarded_by: Option<String>,
    },
    /// `Hub::submit`.
    Submit { request: String },
    /// `Hub::group_info`.
    GroupInfo {
        request: String,
        requester_domain: String,
    },
    /// `Hub::member_domains`.
    MemberDomains,
    /// `Hub::clients`.
    Clients,
    /// `Hub::remove_clients`.
    RemoveClients { devices: Vec<String> },
    /// `Hub::remove_user`.
    RemoveUser { user: String },
    /// `Hub::rules`.
    Rules { user: String },
}

/// The body of an internal request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Forwarded {
    room: String,
    #[serde(flatten)]
    op: Op,
}

/// The owner's answer (bytes hex-encoded).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Answer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    list: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    epoch: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    components: BTreeMap<u16, String>,
}

/// Sends `op` about `room_uri` to the node at `address` that owns the room.
async fn forward(
    state: &Arc<AppState>,
    address: &str,
    room_uri: &str,
    op: Op,
) -> Result<Answer, ApiError> {
    let cluster = state.cluster()?;
    let client = cluster.client(address)?;
    let url = format!(
        "https://{}:{}{INTERNAL_PATH}",
        cluster.domain,
        address.rsplit(':').next().unwrap_or("443")
    );
    let body = Forwarded {
        room: room_uri.to_owned(),
        op,
    };
    let sent = client
        .post(url)
        .header("From", format!("mimi@{}", cluster.domain))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&body).map_err(ApiError::internal)?)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        // The owner is gone or unreachable: its lease lapses soon and another node takes the
        // room; the requester may repeat (submissions are safe to repeat, FED-016).
        Err(e) => {
            tracing::warn!(node = address, error = %e, "the room's owner node is unreachable");
            // Read the lease again next time: the node may have given it up or lost it.
            cluster
                .elsewhere
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&room_resource(room_uri));
            return Err(ApiError::unavailable(
                format!("the node that owns {room_uri} is unreachable; try again"),
                1,
            ));
        }
    };
    let status = response.status();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // Perhaps "moved": read the lease again next time.
        cluster
            .elsewhere
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&room_resource(room_uri));
    }
    // The answer is read with the same cap as a peer's.
    let bytes = crate::upstream::read_capped(address, response, cluster.max_answer)
        .await
        .map_err(|e| {
            ApiError::unavailable(format!("the owner of {room_uri} did not answer: {e:#}"), 1)
        })?;
    if status.is_success() {
        serde_json::from_slice(&bytes).map_err(ApiError::internal)
    } else {
        // The owner's refusal keeps its kind: one status per kind (`ErrorKind::status`).
        let message = String::from_utf8_lossy(&bytes).trim().to_owned();
        Err(ApiError::new(ErrorKind::from_status(status), message))
    }
}

fn unhex(field: &str, value: &str) -> Result<Vec<u8>, ApiError> {
    hex::decode(value).map_err(|e| ApiError::bad_request(format!("{field}: {e}")))
}

fn answer_bytes(answer: Answer) -> Result<Vec<u8>, ApiError> {
    unhex(
        "answer",
        &answer
            .bytes
            .ok_or_else(|| ApiError::internal("the owner node answered no bytes"))?,
    )
}

/// `Hub::update` on the owner node.
pub(crate) async fn update(
    state: &Arc<AppState>,
    address: &str,
    room_uri: &str,
    bundle: &HandshakeBundle,
    forwarded_by: Option<String>,
) -> Result<UpdateRoomResponse, ApiError> {
    let op = Op::Update {
        bundle: hex::encode(bundle.encode()),
        forwarded_by,
    };
    let answer = forward(state, address, room_uri, op).await?;
    Ok(UpdateRoomResponse::decode(&answer_bytes(answer)?)?)
}

/// `Hub::submit` on the owner node.
pub(crate) async fn submit(
    state: &Arc<AppState>,
    address: &str,
    room_uri: &str,
    request: &SubmitMessageRequest,
) -> Result<SubmitMessageResponse, ApiError> {
    let op = Op::Submit {
        request: hex::encode(request.encode()),
    };
    let answer = forward(state, address, room_uri, op).await?;
    Ok(SubmitMessageResponse::decode(&answer_bytes(answer)?)?)
}

/// `Hub::group_info` on the owner node.
pub(crate) async fn group_info(
    state: &Arc<AppState>,
    address: &str,
    room_uri: &str,
    request: &GroupInfoRequest,
    requester_domain: &str,
) -> Result<GroupInfoResponse, ApiError> {
    let op = Op::GroupInfo {
        request: hex::encode(request.encode()),
        requester_domain: requester_domain.to_owned(),
    };
    let answer = forward(state, address, room_uri, op).await?;
    Ok(GroupInfoResponse::decode(&answer_bytes(answer)?)?)
}

/// `Hub::member_domains` on the owner node.
pub(crate) async fn member_domains(
    state: &Arc<AppState>,
    address: &str,
    room_uri: &str,
) -> Result<BTreeSet<String>, ApiError> {
    let answer = forward(state, address, room_uri, Op::MemberDomains).await?;
    Ok(answer.list.into_iter().collect())
}

/// `Hub::clients` on the owner node.
pub(crate) async fn clients(
    state: &Arc<AppState>,
    address: &str,
    room_uri: &str,
) -> Result<(u64, BTreeSet<String>), ApiError> {
    let answer = forward(state, address, room_uri, Op::Clients).await?;
    let epoch = answer
        .epoch
        .ok_or_else(|| ApiError::internal("the owner node answered no epoch"))?;
    Ok((epoch, answer.list.into_iter().collect()))
}

/// `Hub::remove_clients` or `Hub::remove_user` on the owner node.
pub(crate) async fn removals(
    state: &Arc<AppState>,
    address: &str,
    room_uri: &str,
    op: Op,
) -> Result<Vec<Vec<u8>>, ApiError> {
    let answer = forward(state, address, room_uri, op).await?;
    answer.list.iter().map(|p| unhex("proposal", p)).collect()
}

/// `Hub::rules` on the owner node.
pub(crate) async fn rules(
    state: &Arc<AppState>,
    address: &str,
    room_uri: &str,
    user: &str,
) -> Result<mimi_room::RoomRules, ApiError> {
    let op = Op::Rules {
        user: user.to_owned(),
    };
    let answer = forward(state, address, room_uri, op).await?;
    let role = answer
        .role
        .ok_or_else(|| ApiError::internal("the owner node answered no role"))?;
    let components = answer
        .components
        .iter()
        .map(|(id, v)| Ok((*id, unhex("component", v)?)))
        .collect::<Result<_, ApiError>>()?;
    mimi_room::RoomRules::from_parts(mimi_policy::RoleIndex(role), components)
        .map_err(ApiError::internal)
}

/// `POST /internal/v1/hub`: a room command from another node of this domain, handled here if
/// this node owns the room (or takes it over now), refused with 503 otherwise, so the sender
/// asks again and finds the owner.
pub(crate) async fn serve_internal(
    State(state): State<Arc<AppState>>,
    axum::Extension(peer): axum::Extension<crate::http::PeerDomain>,
    body: axum::body::Bytes,
) -> Response {
    match internal(&state, peer, &body).await {
        Ok(answer) => (StatusCode::OK, Json(answer)).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn internal(
    state: &Arc<AppState>,
    peer: crate::http::PeerDomain,
    body: &[u8],
) -> Result<Answer, ApiError> {
    // Only this domain's nodes hold its certificate.
    if state.cluster.is_none() || peer.0.as_deref() != Some(state.domain()) {
        return Err(ApiError::forbidden("internal to this domain's nodes"));
    }
    let request: Forwarded = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("internal request: {e}")))?;
    let room = request.room;
    match Cluster::place_room(state, &room).await? {
        Place::Here(_) => {}
        Place::Node(_) => {
            return Err(ApiError::unavailable(
                format!("{room} moved to another node; ask again"),
                0,
            ));
        }
    }
    let bytes = |b: Vec<u8>| Answer {
        bytes: Some(hex::encode(b)),
        ..Answer::default()
    };
    Ok(match request.op {
        Op::Update {
            bundle,
            forwarded_by,
        } => {
            let bundle = HandshakeBundle::decode(&unhex("bundle", &bundle)?)?;
            bytes(
                Hub::update_here(state, &room, bundle, forwarded_by)
                    .await?
                    .encode(),
            )
        }
        Op::Submit { request } => {
            let request = SubmitMessageRequest::decode(&unhex("request", &request)?)?;
            bytes(Hub::submit_here(state, &room, request).await?.encode())
        }
        Op::GroupInfo {
            request,
            requester_domain,
        } => {
            let request = GroupInfoRequest::decode(&unhex("request", &request)?)?;
            bytes(
                Hub::group_info_here(state, &room, request, &requester_domain)
                    .await?
                    .encode(),
            )
        }
        Op::MemberDomains => Answer {
            list: Hub::member_domains_here(state, &room)
                .await?
                .into_iter()
                .collect(),
            ..Answer::default()
        },
        Op::Clients => {
            let (epoch, clients) = Hub::clients_here(state, &room).await?;
            Answer {
                list: clients.into_iter().collect(),
                epoch: Some(epoch),
                ..Answer::default()
            }
        }
        Op::RemoveClients { devices } => Answer {
            list: Hub::remove_clients_here(state, &room, devices)
                .await?
                .iter()
                .map(hex::encode)
                .collect(),
            ..Answer::default()
        },
        Op::RemoveUser { user } => Answer {
            list: Hub::remove_user_here(state, &room, user)
                .await?
                .iter()
                .map(hex::encode)
                .collect(),
            ..Answer::default()
        },
        Op::Rules { user } => {
            let rules = Hub::rules_here(state, &room, &user).await?;
            Answer {
                role: Some(rules.role.0),
                components: rules
                    .components
                    .iter()
                    .map(|(id, v)| (*id, hex::encode(v)))
                    .collect(),
                ..Answer::default()
            }
        }
    })
}

/// Inside a transaction that writes for the owner of `room_uri` at lease `generation`: fails
/// unless this node still holds that lease, so a node that lost the room changes nothing.
pub(crate) fn fence(
    tx: &mimi_store::Tx<'_>,
    state: &AppState,
    room_uri: &str,
    generation: Option<i64>,
) -> Result<(), ApiError> {
    let (Some(cluster), Some(generation)) = (&state.cluster, generation) else {
        return Ok(());
    };
    if tx.holds_lease(
        &room_resource(room_uri),
        &cluster.node,
        generation,
        now_ms() as i64,
    )? {
        Ok(())
    } else {
        Err(ApiError::unavailable(
            format!("this node no longer owns {room_uri}; try again"),
            1,
        ))
    }
}

/// Renews this node's leases and records it alive every third of a lease, until `stop`; then
/// gives them up so the other nodes take over at once. Rooms whose lease was lost leave
/// memory, so their next owner here loads them fresh.
pub(crate) async fn run_renewals(
    state: Arc<AppState>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Some(cluster) = &state.cluster else {
        return;
    };
    let every = Duration::from_millis((cluster.lease_ms / 3).max(100) as u64);
    while !*stop.borrow() {
        let (node, address, ttl) = (
            cluster.node.clone(),
            cluster.address.clone(),
            cluster.lease_ms,
        );
        let started = Instant::now();
        let renewed = state
            .write(move |tx| {
                let now = now_ms() as i64;
                tx.heartbeat(&node, &address, now)?;
                Ok(tx.renew_leases(&node, now, ttl)?)
            })
            .await;
        match renewed {
            Ok(leases) => {
                let leases: HashMap<String, i64> = leases.into_iter().collect();
                let lost: Vec<String> = {
                    let mut held = cluster.held.lock().unwrap_or_else(|e| e.into_inner());
                    let lost = held
                        .leases
                        .iter()
                        .filter(|(r, g)| leases.get(*r) != Some(*g))
                        .map(|(r, _)| r.clone())
                        .collect();
                    held.leases = leases;
                    held.confirmed = started;
                    lost
                };
                for resource in lost {
                    tracing::warn!(resource = %resource, "lease lost");
                    if let Some(room) = resource.strip_prefix("room:") {
                        state.hub.forget(room);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew leases"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
    }
    let node = cluster.node.clone();
    match state.write(move |tx| Ok(tx.release_leases(&node)?)).await {
        Ok(n) => tracing::info!(leases = n, "leases given up"),
        Err(e) => tracing::warn!(error = %e, "cannot give up leases"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::test_state_with;

    #[test]
    fn a_forwarded_command_reads_back_as_sent() {
        let sent = Forwarded {
            room: "mimi://a.example/r/x".into(),
            op: Op::RemoveClients {
                devices: vec!["mimi://b.example/d/bob/phone".into()],
            },
        };
        let json = serde_json::to_value(&sent).unwrap();
        assert_eq!(json["op"], "remove_clients");
        assert_eq!(json["room"], "mimi://a.example/r/x");
        let back: Forwarded = serde_json::from_value(json).unwrap();
        assert!(matches!(back.op, Op::RemoveClients { devices } if devices.len() == 1));
        assert!(serde_json::from_str::<Forwarded>(r#"{"room":"r","op":"format_disk"}"#).is_err());
    }

    #[test]
    fn every_error_kind_survives_the_hop_between_nodes() {
        for kind in [
            ErrorKind::Malformed,
            ErrorKind::Unauthenticated,
            ErrorKind::Forbidden,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::TooLarge,
            ErrorKind::Unavailable,
            ErrorKind::TooManyRequests,
            ErrorKind::UpstreamFailed,
            ErrorKind::Internal,
            ErrorKind::UpstreamRefused(StatusCode::IM_A_TEAPOT),
        ] {
            assert_eq!(ErrorKind::from_status(kind.status()), kind);
        }
    }

    /// A node of a one-node cluster on a scratch PostgreSQL database (made on a thread of its
    /// own: the PostgreSQL client refuses to block an async worker).
    fn clustered() -> (
        tempfile::TempDir,
        Arc<AppState>,
        mimi_store::ScratchDatabase,
    ) {
        let scratch = std::thread::spawn(mimi_store::ScratchDatabase::from_env)
            .join()
            .unwrap()
            .unwrap();
        let url = scratch.url().to_owned();
        let (dir, state) = test_state_with(move |config| {
            config.database = Some(url);
            config.cluster = Some(crate::config::Cluster {
                node: "n1".into(),
                address: "127.0.0.1:9".parse().unwrap(),
                lease_ms: 60_000,
            });
        });
        (dir, state, scratch)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_that_lost_a_room_writes_nothing_for_it_and_sends_its_commands_on() {
        let (_dir, state, db) = clustered();
        let room = "mimi://a.example/r/x";
        let Place::Here(Some(generation)) = Cluster::place_room(&state, room).await.unwrap() else {
            panic!("a free room's lease goes to the asking node");
        };
        let fenced = |generation| {
            let (s, inner) = (state.clone(), state.clone());
            async move {
                s.write(move |tx| {
                    fence(tx, &inner, room, Some(generation))?;
                    tx.ensure_user("written-under-the-lease", 0)?;
                    Ok(())
                })
                .await
            }
        };
        fenced(generation).await.unwrap();
        // Another node takes the room over (this one's lease lapsed unnoticed).
        state
            .write(move |tx| {
                tx.heartbeat("n2", "127.0.0.1:1", now_ms() as i64)?;
                tx.release_leases("n1")?;
                let lease = tx.take_lease(&room_resource(room), "n2", now_ms() as i64, 60_000)?;
                assert_eq!(lease.generation, generation + 1);
                Ok(())
            })
            .await
            .unwrap();
        let refused = fenced(generation).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Unavailable);
        // This node still believes it holds the room until its next renewal: renewing tells it.
        {
            let cluster = state.cluster().unwrap();
            let mut held = cluster.held.lock().unwrap();
            held.confirmed = Instant::now() - Duration::from_secs(3_600);
        }
        match Cluster::place_room(&state, room).await.unwrap() {
            Place::Node(address) => assert_eq!(address, "127.0.0.1:1"),
            Place::Here(_) => panic!("the room moved to n2"),
        }
        // n2 is not there: the command is refused for now, not lost silently.
        let error = Hub::member_domains(&state, room).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        drop(db);
    }
}
