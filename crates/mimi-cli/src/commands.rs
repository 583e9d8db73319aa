//! One function per command: parse, call the client SDK, print.

use crate::output::out;
use anyhow::Context as _;
use mimi_client::Client;

use crate::{Cli, Command, RoomCommand};

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
        } => {
            let mut client = Client::open(&profile)?;
            let id = if no_sync {
                client.post(&room, &text).await?
            } else {
                client.send(&room, &text).await?
            };
            out!("{id}");
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
                    out!(
                        "{} {}: {}",
                        m.timestamp,
                        m.sender,
                        m.text.unwrap_or_default()
                    );
                }
            }
        }
        Command::Demo { json } => crate::demo::run(json).await?,
    }
    Ok(())
}

async fn room(profile: &std::path::Path, command: RoomCommand) -> anyhow::Result<()> {
    let mut client = Client::open(profile)?;
    match command {
        RoomCommand::Create { name } => out!("{}", client.create_room(&name).await?),
        RoomCommand::Add { room, user } => client.add(&room, &user).await?,
        RoomCommand::Remove { room, user } => client.remove(&room, &user).await?,
        RoomCommand::Join { room } => client.join(&room).await?,
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
    }
    Ok(())
}
