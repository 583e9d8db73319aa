//! `mimid admin`: the operator's view of a running provider (issue 13). The server answers on a
//! Unix socket, `admin.sock` in its `dir`, readable and writable by its own user only: whoever
//! can open it can run the provider, so the file's permissions are the authentication. The
//! commands are plain HTTP/1.1 over that socket, answered in JSON.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{Path as UrlPath, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::ApiError;
use crate::state::{AppState, now_ms};

/// The socket's file name in the provider's `dir`.
pub(crate) const SOCKET: &str = "admin.sock";

/// A hosted room, as `mimid admin rooms` lists it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RoomRow {
    /// The room URI.
    pub(crate) room: String,
    /// Its current epoch.
    pub(crate) epoch: u64,
    /// When it last changed, seconds since the UNIX epoch.
    pub(crate) updated_at: u64,
}

/// A peer's fan-out queue, as `mimid admin peers` lists it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PeerRow {
    /// The peer's domain.
    pub(crate) peer: String,
    /// Entries queued for it.
    pub(crate) queued: u64,
    /// Age of the oldest, seconds.
    pub(crate) oldest_secs: u64,
    /// Failed attempts of the entry at the head.
    pub(crate) attempts: u32,
    /// Seconds until the next try (0: now).
    pub(crate) next_retry_secs: u64,
    /// The last delivery failure since the start, if any.
    pub(crate) last_error: Option<String>,
}

/// A local user, as `mimid admin users` lists it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct UserRow {
    /// The user's name.
    pub(crate) user: String,
    /// When it registered, seconds since the UNIX epoch.
    pub(crate) created_at: u64,
    /// Its clients.
    pub(crate) devices: Vec<String>,
}

fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/rooms", get(rooms))
        .route("/peers", get(peers))
        .route("/users", get(users))
        .route("/users/{name}/delete", post(delete_user))
}

async fn rooms(State(state): State<Arc<AppState>>) -> Result<Json<Vec<RoomRow>>, ApiError> {
    let s = state.clone();
    let rows =
        tokio::task::spawn_blocking(move || Ok::<_, ApiError>(s.store.read()?.hosted_rooms()?))
            .await??;
    Ok(Json(
        rows.into_iter()
            .map(|(room, epoch, updated_at)| RoomRow {
                room,
                epoch,
                updated_at,
            })
            .collect(),
    ))
}

async fn peers(State(state): State<Arc<AppState>>) -> Result<Json<Vec<PeerRow>>, ApiError> {
    let s = state.clone();
    let queues =
        tokio::task::spawn_blocking(move || Ok::<_, ApiError>(s.store.read()?.outbox_by_peer()?))
            .await??;
    let now = now_ms();
    Ok(Json(
        queues
            .into_iter()
            .map(|q| PeerRow {
                last_error: state.metrics.last_error(&q.peer).map(|(e, _)| e),
                oldest_secs: (now / 1000).saturating_sub(q.oldest_created_at),
                next_retry_secs: q.next_attempt_at_ms.saturating_sub(now).div_ceil(1000),
                attempts: q.head_attempts,
                queued: q.depth,
                peer: q.peer,
            })
            .collect(),
    ))
}

async fn users(State(state): State<Arc<AppState>>) -> Result<Json<Vec<UserRow>>, ApiError> {
    let s = state.clone();
    let rows =
        tokio::task::spawn_blocking(move || Ok::<_, ApiError>(s.store.read()?.users()?)).await??;
    Ok(Json(
        rows.into_iter()
            .map(|(user, created_at, devices)| UserRow {
                user,
                created_at,
                devices,
            })
            .collect(),
    ))
}

/// Deletes a local user as its own `mimi account delete` would: every device leaves every
/// room (their hubs propose the removals) and the account goes (IN-LIFECYCLE-6).
async fn delete_user(
    State(state): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let s = state.clone();
    let n = name.clone();
    let exists =
        tokio::task::spawn_blocking(move || Ok::<_, ApiError>(s.store.read()?.user_exists(&n)?))
            .await??;
    if !exists {
        return Err(ApiError::not_found(format!("no user {name} here")));
    }
    let user = mimi_protocol::MimiUri::user(state.domain(), &name)
        .map_err(|e| ApiError::bad_request(format!("bad user name: {e}")))?
        .to_string();
    let rooms = crate::devices::delete_account(&state, &name, &user).await?;
    tracing::info!(user = %name, rooms = rooms.len(), "user deleted by the operator");
    Ok(Json(serde_json::json!({ "user": user, "rooms": rooms })))
}

/// The admin socket of the provider whose config is `config`.
pub(crate) fn socket_path(config: &Config) -> PathBuf {
    config.dir.join(SOCKET)
}

/// Serves the admin commands on `listener` (the socket at `path`) until `stop` turns true,
/// then removes the socket file.
pub(crate) async fn serve(
    listener: tokio::net::UnixListener,
    path: PathBuf,
    state: Arc<AppState>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let router = routes().with_state(state);
    crate::metrics::serve_until_stopped(listener, router, stop, "admin socket").await;
    let _ = std::fs::remove_file(&path);
}

/// Binds the socket, replacing one a crashed run left, with permissions for our user only.
pub(crate) fn bind(path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    if path.exists() {
        // A live server answers on it; a dead one's file only blocks the bind.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("another mimid serves {}", path.display());
        }
        std::fs::remove_file(path)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Sends one command to the running provider of `config`: the status and the body.
pub(crate) fn call(config: &Config, method: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let socket = socket_path(config);
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).with_context(|| {
        format!(
            "cannot reach the running mimid at {} (is it serving this config?)",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(120)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8(answer).context("the answer is not UTF-8")?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .context("the answer is not HTTP")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("the answer has no status")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        unchunk(body)?
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

/// The body of a chunked HTTP/1.1 answer.
fn unchunk(mut rest: &str) -> anyhow::Result<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").context("a bad chunk")?;
        let size = usize::from_str_radix(size.trim(), 16).context("a bad chunk size")?;
        if size == 0 {
            return Ok(body);
        }
        body.push_str(after.get(..size).context("a short chunk")?);
        rest = after.get(size + 2..).context("a short chunk")?;
    }
}

/// `mimid admin ...`: runs one command against the running provider and prints its answer.
pub(crate) fn run(config: &Config, command: &AdminCommand) -> anyhow::Result<String> {
    let (method, path, json) = match command {
        AdminCommand::Rooms { json } => ("GET", "/rooms".to_owned(), *json),
        AdminCommand::Peers { json } => ("GET", "/peers".to_owned(), *json),
        AdminCommand::Users { json } => ("GET", "/users".to_owned(), *json),
        AdminCommand::DeleteUser { user } => ("POST", format!("/users/{user}/delete"), true),
    };
    let (status, body) = call(config, method, &path)?;
    if status != 200 {
        anyhow::bail!("mimid answered {status}: {}", body.trim());
    }
    if json {
        return Ok(body);
    }
    let mut out = String::new();
    match command {
        AdminCommand::Rooms { .. } => {
            for r in serde_json::from_str::<Vec<RoomRow>>(&body)? {
                out.push_str(&format!(
                    "{}\tepoch {}\tupdated {}\n",
                    r.room, r.epoch, r.updated_at
                ));
            }
        }
        AdminCommand::Peers { .. } => {
            for p in serde_json::from_str::<Vec<PeerRow>>(&body)? {
                out.push_str(&format!(
                    "{}\t{} queued, oldest {} s\tretry in {} s after {} attempts\t{}\n",
                    p.peer,
                    p.queued,
                    p.oldest_secs,
                    p.next_retry_secs,
                    p.attempts,
                    p.last_error
                        .as_deref()
                        .unwrap_or("no error since the start")
                ));
            }
        }
        AdminCommand::Users { .. } => {
            for u in serde_json::from_str::<Vec<UserRow>>(&body)? {
                out.push_str(&format!("{}\t{}\n", u.user, u.devices.join(" ")));
            }
        }
        AdminCommand::DeleteUser { .. } => out.push_str(&body),
    }
    Ok(out)
}

/// The operator's commands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum AdminCommand {
    /// The rooms this provider hosts.
    Rooms {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Peers with fan-out queued: depth, oldest entry, next retry, last error.
    Peers {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Local users and their devices.
    Users {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a local user: its devices leave every room, then the account goes.
    DeleteUser {
        /// The user's name.
        user: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(
            unchunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            "abcde"
        );
        assert!(unchunk("zz\r\nabc").is_err());
        assert!(unchunk("9\r\nabc").is_err());
    }
}
