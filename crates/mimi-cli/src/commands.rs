//! One function per command: parse, call the client SDK, print.

use crate::output::out;
use anyhow::Context as _;
use mimi_client::Client;

use crate::{
    Cli, Command, ConsentCommand, ContentCommand, DiscoveryCommand, RoomCommand, StateCommand,
};

pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    let profile = cli.profile;
    match cli.command {
        Command::Register {
            server,
            ca,
            user,
            device,
        } => {
            let ca_pem = std::fs::read_to_string(&ca)
                .with_context(|| format!("cannot read CA certificate {}", ca.display()))?;
            let client = Client::register(&profile, &server, &ca_pem, &user, &device).await?;
            out!("{}", client.device_uri());
        }
        Command::Room { command } => room(&profile, command).await?,
        Command::Send {
            room,
            text,
            no_sync,
            reply_to,
            expires,
            markdown,
            topic,
        } => {
            let mut client = Client::open(&profile)?;
            let id = if no_sync {
                client.post(&room, &text).await?
            } else {
                let options = mimi_client::SendOptions {
                    text,
                    reply_to,
                    expires_secs: expires,
                    markdown,
                    topic,
                };
                client.send_with(&room, &options).await?
            };
            out!("{id}");
        }
        Command::Report {
            room,
            id,
            reason,
            json,
        } => {
            Client::open(&profile)?
                .report(&room, &id, reason.as_deref())
                .await?;
            if json {
                out!(
                    "{}",
                    serde_json::json!({ "room": room, "id": id, "reported": true })
                );
            } else {
                out!("reported {id}");
            }
        }
        Command::React { room, id, emoji } => {
            out!(
                "{}",
                Client::open(&profile)?.react(&room, &id, &emoji).await?
            );
        }
        Command::Unreact { room, id, emoji } => {
            out!(
                "{}",
                Client::open(&profile)?.unreact(&room, &id, &emoji).await?
            );
        }
        Command::Edit {
            room,
            id,
            text,
            danger_edit_others,
        } => {
            let mut client = Client::open(&profile)?;
            out!(
                "{}",
                client.edit(&room, &id, &text, danger_edit_others).await?
            );
        }
        Command::Mark { room, status } => {
            let status = mimi_client::MessageStatus::from_name(&status)
                .with_context(|| format!("unknown status {status:?} (try read or delivered)"))?;
            let count = Client::open(&profile)?.mark(&room, status).await?;
            out!("{count}");
        }
        Command::Attach { room, file } => {
            out!("{}", Client::open(&profile)?.attach(&room, &file).await?);
        }
        Command::Download { room, id, out } => {
            let bytes = Client::open(&profile)?.download(&room, &id, &out).await?;
            out!("{bytes}");
        }
        Command::Delete { room, id } => {
            out!("{}", Client::open(&profile)?.delete(&room, &id).await?);
        }
        Command::Sync { json } => {
            let mut client = Client::open(&profile)?;
            let report = client.sync().await?;
            for e in &report.errors {
                eprintln!("mimi: warning: {e}");
            }
            if json {
                out!("{}", serde_json::to_string(&report)?);
            } else {
                out!(
                    "{} messages, {} handshakes, {} rooms joined",
                    report.messages,
                    report.handshakes,
                    report.joined.len()
                );
            }
        }
        Command::Messages { room, json } => {
            let client = Client::open(&profile)?;
            let messages = client.messages(&room)?;
            if json {
                out!("{}", serde_json::to_string(&messages)?);
            } else {
                for m in messages {
                    out!("{}", human_line(&m));
                }
            }
        }
        Command::Demo { json } => crate::demo::run(json).await?,
        Command::Bench { command } => out!("{}", mimi_bench::run(command).await?),
        Command::Content { command } => content(command)?,
        Command::Consent { command } => consent(&profile, command).await?,
        Command::Discovery { command } => discovery(&profile, command).await?,
        Command::Lookup {
            identifier,
            from,
            json,
        } => {
            let mut client = Client::open(&profile)?;
            let found = client.lookup(&identifier, &from).await?;
            if json {
                out!("{}", serde_json::to_string(&found)?);
            } else if found.is_empty() {
                out!("{identifier}: no record");
            } else {
                for r in &found {
                    let who = r.user.as_deref().unwrap_or("(opted out)");
                    let tags = if r.tags.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", r.tags.join(", "))
                    };
                    let status = match &r.problem {
                        None => "verified".to_owned(),
                        Some(why) => format!("UNVERIFIED: {why}"),
                    };
                    out!("{who} at {}{tags}: {status}", r.domain);
                }
            }
        }
        Command::Profile { command } => crate::identifier_query::profile(&profile, command).await?,
        Command::Find {
            domain,
            handle,
            nick,
            email,
            phone,
            name,
            any,
            json,
        } => {
            let query = crate::identifier_query::Query {
                handle,
                nick,
                email,
                phone,
                name,
                any,
            };
            crate::identifier_query::find(&profile, &domain, query, json).await?
        }
        Command::Account {
            command: crate::AccountCommand::Delete,
        } => {
            let mut client = Client::open(&profile)?;
            for room in client.delete_account().await? {
                out!("{room}");
            }
        }
        Command::Device {
            command: crate::DeviceCommand::Remove { device },
        } => {
            let mut client = Client::open(&profile)?;
            for room in client.remove_device(&device).await? {
                out!("{room}");
            }
        }
    }
    Ok(())
}

async fn discovery(profile: &std::path::Path, command: DiscoveryCommand) -> anyhow::Result<()> {
    let mut client = Client::open(profile)?;
    match command {
        DiscoveryCommand::Claim { identifier } => {
            client.discovery_claim(&identifier).await?;
            out!("a code was sent to {identifier}; run `mimi discovery verify {identifier} CODE`");
        }
        DiscoveryCommand::Verify { identifier, code } => {
            client.discovery_verify(&identifier, &code).await?;
            out!("{identifier} verified");
        }
        DiscoveryCommand::Publish {
            identifier,
            tags,
            to,
        } => {
            for domain in client.discovery_publish(&identifier, &tags, &to).await? {
                out!("{domain}");
            }
        }
        DiscoveryCommand::Remove { identifier, from } => {
            client.discovery_remove(&identifier, &from).await?;
            out!("{identifier} removed");
        }
        DiscoveryCommand::List { json } => {
            let claims = client.discovery_claims().await?;
            if json {
                out!("{}", serde_json::to_string(&claims)?);
            } else {
                for c in &claims.claims {
                    let state = if c.verified { "verified" } else { "claimed" };
                    out!("{} {state}", c.identifier);
                }
            }
        }
    }
    Ok(())
}

async fn consent(profile: &std::path::Path, command: ConsentCommand) -> anyhow::Result<()> {
    let mut client = Client::open(profile)?;
    let (action, user, room, with_key_packages) = match command {
        ConsentCommand::Mode { mode } => {
            let list = client.set_consent_mode(&mode).await?;
            out!("consent mode: {}", list.mode);
            return Ok(());
        }
        ConsentCommand::List { json } => {
            let list = client.consent_list().await?;
            if json {
                out!("{}", serde_json::to_string(&list)?);
            } else {
                print_consent(client.user_uri(), &list);
            }
            return Ok(());
        }
        ConsentCommand::Grant {
            user,
            room,
            with_key_packages,
        } => ("grant", user, room, with_key_packages),
        ConsentCommand::Deny { user, room } => ("deny", user, room, false),
        ConsentCommand::Revoke { user, room } => ("revoke", user, room, false),
        ConsentCommand::Request { user, room } => ("request", user, room, false),
        ConsentCommand::Cancel { user, room } => ("cancel", user, room, false),
    };
    client
        .consent(action, &user, room.as_deref(), with_key_packages)
        .await?;
    Ok(())
}

/// One line per scope, from our side: "from USER: requested", "to USER: granted".
fn print_consent(me: &str, list: &mimi_client::ConsentList) {
    out!("mode: {}", list.mode);
    for e in &list.entries {
        let room = e
            .room
            .as_deref()
            .map(|r| format!(" in {r}"))
            .unwrap_or_default();
        let kps = if e.key_packages > 0 {
            format!(" ({} key packages)", e.key_packages)
        } else {
            String::new()
        };
        if e.target == me {
            out!("{} -> me{room}: {}{kps}", e.requester, e.state);
        } else {
            out!("me -> {}{room}: {}{kps}", e.target, e.state);
        }
    }
}

async fn room(profile: &std::path::Path, command: RoomCommand) -> anyhow::Result<()> {
    let mut client = Client::open(profile)?;
    match command {
        RoomCommand::Create { name, preset, with } => {
            let room = client.create_room_with(&name, preset).await?;
            // Printed first: if adding fails, the room exists all the same.
            out!("{room}");
            // The initial participants arrive together, in the room's first commit.
            if !with.is_empty() {
                client.add_users(&room, &with).await?;
            }
        }
        RoomCommand::Add { room, user } => {
            // A phone number or email address is looked up first (IN-DISC-5).
            let user = if user.starts_with("phone:") || user.starts_with("email:") {
                client.resolve_identifier(&user).await?
            } else {
                user
            };
            client.add(&room, &user).await?
        }
        RoomCommand::Remove { room, user } => client.remove(&room, &user).await?,
        RoomCommand::Kick { room, user } => client.kick(&room, &user).await?,
        RoomCommand::Ban { room, user } => client.ban(&room, &user).await?,
        RoomCommand::Unban { room, user } => client.unban(&room, &user).await?,
        RoomCommand::Preauth { room, who, role } => client.preauthorize(&room, &who, &role).await?,
        RoomCommand::Join { room, code } => client.join_with_link(&room, code.as_deref()).await?,
        RoomCommand::Knock { room } => client.knock(&room).await?,
        RoomCommand::Knocks { room, json } => {
            let knocks = client.knocks(&room).await?;
            if json {
                let list: Vec<serde_json::Value> = knocks
                    .iter()
                    .map(|(user, at)| serde_json::json!({ "user": user, "knocked_at": at }))
                    .collect();
                out!("{}", serde_json::to_string(&list)?);
            } else {
                for (user, at) in knocks {
                    out!("{user} (since {at})");
                }
            }
        }
        RoomCommand::Admit { room, user } => client.add(&room, &user).await?,
        RoomCommand::Deny { room, user } => client.deny_knock(&room, &user).await?,
        RoomCommand::Link {
            room,
            expires,
            multi,
        } => {
            let link = client.create_join_link(&room, expires, multi).await?;
            out!("{link}");
        }
        RoomCommand::Leave { room } => client.leave(&room).await?,
        RoomCommand::Members { room, json } => {
            client.sync().await?;
            let members = client.members(&room)?;
            if json {
                out!("{}", serde_json::to_string(&members)?);
            } else {
                for m in members {
                    out!("{} (role {}): {}", m.user, m.role, m.clients.join(", "));
                }
            }
        }
        RoomCommand::List => {
            for (room, active) in client.rooms()? {
                out!("{room}{}", if active { "" } else { " (left)" });
            }
        }
        RoomCommand::Set { room, field, value } => {
            client
                .set_room_metadata(&room, field.into(), &value)
                .await?
        }
        RoomCommand::Role { room, user, role } => client.set_role(&room, &user, &role).await?,
        RoomCommand::Component {
            room,
            id,
            value,
            remove,
        } => {
            let id = parse_component_id(&id)?;
            let value = match (value, remove) {
                (Some(hex_value), false) => Some(
                    hex::decode(hex_value.trim())
                        .map_err(|e| mimi_client::ClientError::Usage(format!("value: {e}")))?,
                ),
                (None, true) => None,
                _ => {
                    return Err(mimi_client::ClientError::Usage(
                        "give a hex value or --remove".into(),
                    )
                    .into());
                }
            };
            client.set_component(&room, id, value).await?
        }
        RoomCommand::Policy { room, field, value } => {
            client.set_policy_field(&room, &field, &value).await?
        }
        RoomCommand::State { room, command } => app_state(&mut client, &room, command).await?,
        RoomCommand::Info { room, json } => {
            client.sync().await?;
            let info = room_info(&client, &room)?;
            if json {
                out!("{}", serde_json::to_string(&info)?);
            } else {
                let metadata = &info["metadata"];
                out!("{room}");
                for field in ["name", "subject", "mood", "avatar"] {
                    out!("  {field}: {}", metadata[field].as_str().unwrap_or(""));
                }
                for d in metadata["descriptions"].as_array().into_iter().flatten() {
                    out!("  description: {}", d["content"].as_str().unwrap_or(""));
                }
                let policy = &info["policy"];
                for field in [
                    "fixed_membership",
                    "multi_device",
                    "max_users",
                    "max_clients",
                ] {
                    out!("  {field}: {}", policy[field]);
                }
                for r in info["roles"].as_array().into_iter().flatten() {
                    out!(
                        "  role {}: {}",
                        r["index"],
                        r["name"].as_str().unwrap_or("")
                    );
                }
                for p in info["participants"].as_array().into_iter().flatten() {
                    out!(
                        "  {} (role {}{})",
                        p["user"].as_str().unwrap_or(""),
                        p["role"],
                        if p["active"] == true {
                            ""
                        } else {
                            ", inactive"
                        }
                    );
                }
                for c in info["components"].as_array().into_iter().flatten() {
                    out!(
                        "  component {:#06x} {}{}",
                        c["id"].as_u64().unwrap_or(0),
                        c["name"].as_str().unwrap_or("(application)"),
                        if c["encrypted"] == true {
                            " (encrypted)"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
    }
    Ok(())
}

/// `mimi room state ROOM put|get|delete`.
async fn app_state(client: &mut Client, room: &str, command: StateCommand) -> anyhow::Result<()> {
    match command {
        StateCommand::Put {
            id,
            value,
            encrypted,
        } => {
            let id = parse_component_id(&id)?;
            client
                .put_app_state(room, id, value.as_bytes(), encrypted)
                .await?;
        }
        StateCommand::Delete { id } => {
            let id = parse_component_id(&id)?;
            client.delete_app_state(room, id).await?;
        }
        StateCommand::Get { id, json } => {
            let id = parse_component_id(&id)?;
            client.sync().await?;
            let Some(state) = client.app_state(room, id)? else {
                return Err(mimi_client::ClientError::NotAllowed(format!(
                    "component {id:#06x} is not set in {room}"
                ))
                .into());
            };
            let text = state
                .value
                .as_ref()
                .and_then(|v| std::str::from_utf8(v).ok());
            if json {
                out!(
                    "{}",
                    serde_json::json!({
                        "id": id,
                        "encrypted": state.encrypted,
                        "value": text,
                        "hex": state.value.as_deref().map(hex::encode),
                    })
                );
                return Ok(());
            }
            match (&state.value, text) {
                (_, Some(text)) => out!("{text}"),
                (Some(bytes), None) => out!("{}", hex::encode(bytes)),
                (None, _) => {
                    return Err(mimi_client::ClientError::NotAllowed(format!(
                        "component {id:#06x} of {room} is encrypted and its key is not available"
                    ))
                    .into());
                }
            }
        }
    }
    Ok(())
}

fn content(command: ContentCommand) -> anyhow::Result<()> {
    use std::io::Write as _;

    use mimi_content::MimiContent;

    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    match command {
        ContentCommand::Decode { file, json: _ } => {
            let content = MimiContent::decode(&read(&file)?)
                .with_context(|| format!("{} is not valid MIMI content", file.display()))?;
            out!("{}", serde_json::to_string_pretty(&content.to_json())?);
        }
        ContentCommand::Encode { file } => {
            let json: serde_json::Value = serde_json::from_slice(&read(&file)?)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let content = MimiContent::from_json(&json)
                .with_context(|| format!("{} is not MIMI content", file.display()))?;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&content.encode())?;
            stdout.flush()?;
        }
        ContentCommand::Id { file, sender, room } => {
            let content = MimiContent::decode(&read(&file)?)
                .with_context(|| format!("{} is not valid MIMI content", file.display()))?;
            let sender = sender
                .or_else(|| content.extensions.sender_uri().map(str::to_owned))
                .context("no --sender and no senderUri extension")?;
            let room = room
                .or_else(|| content.extensions.room_uri().map(str::to_owned))
                .context("no --room and no roomUri extension")?;
            out!("{}", content.try_message_id(&sender, &room)?);
        }
    }
    Ok(())
}

/// One message as a line: time, short ID, sender, reply, text or state, reactions.
fn human_line(m: &mimi_client::StoredMessage) -> String {
    let short = |id: &str| id.chars().take(12).collect::<String>();
    let mut line = format!("{} {} {}:", m.timestamp, short(&m.id), m.sender);
    if let Some(topic) = &m.topic {
        line.push_str(&format!(" #{topic}"));
    }
    if let Some(to) = &m.reply_to {
        line.push_str(&format!(" (reply to {})", short(to)));
    }
    match (&m.invalid, m.deleted, &m.text) {
        (Some(why), _, _) => line.push_str(&format!(" [invalid: {why}]")),
        (None, true, _) => line.push_str(" [deleted]"),
        (None, false, Some(text)) => line.push_str(&format!(" {text}")),
        (None, false, None) => line.push_str(" [no text]"),
    }
    if let Some(a) = &m.attachment {
        line.push_str(&format!(" [attachment {} ({} bytes)]", a.filename, a.size));
    }
    if m.expired {
        line.push_str(" [expired]");
    }
    if m.edited && !m.deleted {
        line.push_str(" [edited]");
    }
    for (status, users) in &m.receipts {
        line.push_str(&format!(" {status}:{}", users.len()));
    }
    for (reaction, users) in &m.reactions {
        line.push_str(&format!(" {reaction}x{}", users.len()));
    }
    line
}

/// `mimi room info --json`: the room, its metadata and participants. The policy, roles and
/// other components of issue 10 are not shown yet.
/// A component ID in decimal or 0x-hex.
fn parse_component_id(text: &str) -> Result<u16, mimi_client::ClientError> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex_digits) => u16::from_str_radix(hex_digits, 16),
        None => text.parse::<u16>(),
    };
    parsed.map_err(|_| {
        mimi_client::ClientError::Usage(format!("{text:?} is not a component ID (0..=65535)"))
    })
}

fn room_info(client: &Client, room: &str) -> anyhow::Result<serde_json::Value> {
    use serde_json::{Value, json};
    let view = client.room_state(room)?;
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let metadata = match &view.metadata {
        Some(m) => json!({
            "name": m.name,
            "subject": m.subject,
            "mood": m.mood,
            "avatar": m.avatar.as_str(),
            "descriptions": m.descriptions.iter().map(|d| json!({
                "media_type": text(&d.media_type),
                "language": text(&d.language_tag),
                "content": text(&d.content),
            })).collect::<Vec<_>>(),
        }),
        None => json!({
            "name": "", "subject": "", "mood": "", "avatar": "", "descriptions": [],
        }),
    };
    // The base policy's fields at the top, each other policy component under its name.
    let mut policy = serde_json::to_value(&view.base_policy)?;
    let mut components = Vec::new();
    for (id, bytes) in &view.components {
        let component = mimi_policy::PolicyComponent::decode(*id, bytes)
            .ok()
            .flatten()
            .and_then(|c| serde_json::to_value(c).ok());
        if let (Some(Value::Object(extra)), Value::Object(policy)) = (&component, &mut policy) {
            let skip = [
                mimi_policy::RoleData::COMPONENT_ID,
                mimi_policy::BaseRoomPolicy::COMPONENT_ID,
            ];
            if !skip.contains(id) {
                policy.extend(extra.clone());
            }
        }
        components.push(json!({
            "id": id,
            "name": mimi_protocol::ComponentId(*id).name(),
            "encrypted": mimi_client::is_encrypted_app_value(*id, bytes),
            "value": hex::encode(bytes),
        }));
    }
    let roles: Vec<Value> = view
        .roles
        .roles
        .iter()
        .map(|role| {
            let mut value = serde_json::to_value(role).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut value {
                map.insert("index".into(), json!(role.role_index.0));
                map.insert("name".into(), json!(role.name_lossy()));
                let capabilities = map.get("role_capabilities").cloned().unwrap_or(json!([]));
                map.insert("capabilities".into(), capabilities);
            }
            value
        })
        .collect();
    let participants: Vec<Value> = view
        .participants
        .iter()
        .map(|p| {
            json!({
                "user": p.user,
                "role": p.role,
                "active": view.members.get(&p.user).is_some_and(|c| !c.is_empty()),
            })
        })
        .collect();
    Ok(json!({
        "room": room,
        "epoch": view.epoch,
        "metadata": metadata,
        "policy": policy,
        "roles": roles,
        "participants": participants,
        "components": components,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_ids_are_decimal_or_hex() {
        assert_eq!(parse_component_id("32769").unwrap(), 0x8001);
        assert_eq!(parse_component_id("0x8001").unwrap(), 0x8001);
        assert_eq!(parse_component_id("0XFFFF").unwrap(), 0xFFFF);
        for bad in ["", "0x", "65536", "0x10000", "-1", "8001h", "0xg"] {
            let e = parse_component_id(bad).unwrap_err();
            assert!(e.to_string().contains("component ID"), "{bad}: {e}");
        }
    }
}
