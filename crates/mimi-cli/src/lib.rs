//! `mimi`, the command-line client: register, rooms, messages, and `mimi demo`, which runs
//! three providers and three users on this machine.
//!
//! Results go to stdout (plain, or JSON with `--json`); diagnostics to stderr. Exit codes: 0
//! success, 1 a clean refusal (the hub said no, nothing found), 2 any other error.

mod commands;
mod demo;
mod identifier_query;
mod output;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for a clean "no": the provider or hub refused, or nothing matched.
const EXIT_REFUSED: u8 = 1;
/// Exit code for every other failure of the request or its surroundings (usage, provider,
/// profile).
const EXIT_ERROR: u8 = 2;
/// Exit code for a failure of `mimi` itself (a bug), so scripts can tell it from their own.
const EXIT_INTERNAL: u8 = 3;

#[derive(Parser)]
#[command(
    name = "mimi",
    version,
    about = "MIMI command-line client",
    after_help = "Exit codes: 0 success, 1 refused or not found, 2 error."
)]
struct Cli {
    /// Profile directory holding this account's state.
    #[arg(long, global = true, default_value = "./mimi-profile")]
    profile: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an account on a provider.
    Register {
        /// The provider's client API, e.g. https://127.0.0.1:8401.
        #[arg(long)]
        server: String,
        /// PEM file of the CA that issued the provider's certificate.
        #[arg(long)]
        ca: PathBuf,
        /// The user name.
        #[arg(long)]
        user: String,
        /// The device name.
        #[arg(long, default_value = "cli")]
        device: String,
    },
    /// Room operations.
    Room {
        #[command(subcommand)]
        command: RoomCommand,
    },
    /// Send a text message; prints its message ID (hex).
    Send {
        /// The room URI.
        room: String,
        /// The text.
        text: String,
        /// Do not fetch pending messages first: send with what this client knows and let the
        /// hub decide (useful to see the hub's own refusals).
        #[arg(long)]
        no_sync: bool,
        /// Reply to this message ID.
        #[arg(long, conflicts_with = "no_sync")]
        reply_to: Option<String>,
        /// Let the message expire this many seconds from now.
        #[arg(long, conflicts_with = "no_sync")]
        expires: Option<u64>,
        /// Send the text as markdown, with a plain-text alternative.
        #[arg(long, conflicts_with = "no_sync")]
        markdown: bool,
        /// Post under a topic (thread) of the room.
        #[arg(long, conflicts_with = "no_sync")]
        topic: Option<String>,
    },
    /// Report a received message as abusive to the room's hub, through your provider; the hub
    /// checks the message against its frank and keeps the report for its operator.
    Report {
        /// The room URI.
        room: String,
        /// The message ID (as `mimi messages` shows it).
        id: String,
        /// Why, in a few words; sent as the report's note.
        #[arg(long)]
        reason: Option<String>,
        /// Print `{"room":..,"id":..,"reported":true}`.
        #[arg(long)]
        json: bool,
    },
    /// React to a message (usually with one emoji).
    React {
        /// The room URI.
        room: String,
        /// The message ID.
        id: String,
        /// The reaction.
        emoji: String,
    },
    /// Withdraw your reaction to a message.
    Unreact {
        /// The room URI.
        room: String,
        /// The message ID.
        id: String,
        /// The reaction to withdraw.
        emoji: String,
    },
    /// Replace the text of one of your messages.
    Edit {
        /// The room URI.
        room: String,
        /// The message ID.
        id: String,
        /// The new text.
        text: String,
        /// Send the edit even for someone else's message; receivers ignore it. For testing
        /// other clients' validation only.
        #[arg(long, hide = true)]
        danger_edit_others: bool,
    },
    /// Report receipts (draft-mahy-mimi-message-status) for the room's messages from others.
    Mark {
        /// The room URI.
        room: String,
        /// The status to report: delivered, read, unread, hidden, ...
        #[arg(long, default_value = "read")]
        status: String,
    },
    /// Send a file, encrypted end to end (the providers store only ciphertext).
    Attach {
        /// The room URI.
        room: String,
        /// The file.
        file: PathBuf,
    },
    /// Download and decrypt a message's attachment, checking it was not tampered with.
    Download {
        /// The room URI.
        room: String,
        /// The message ID.
        id: String,
        /// Where to write the file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Delete one of your messages.
    Delete {
        /// The room URI.
        room: String,
        /// The message ID.
        id: String,
    },
    /// Fetch and process everything pending.
    Sync {
        /// Print a JSON report.
        #[arg(long)]
        json: bool,
    },
    /// List a room's messages in display order.
    Messages {
        /// The room URI.
        room: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Your account.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Your user's devices.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// Consent: who may add you to rooms, and your answers to others (protocol-06 §5.7).
    Consent {
        #[command(subcommand)]
        command: ConsentCommand,
    },
    /// Be found by your phone number or email address: claim, verify, publish, remove.
    Discovery {
        #[command(subcommand)]
        command: DiscoveryCommand,
    },
    /// Who a phone number or email address leads to, each record checked here.
    Lookup {
        /// `phone:+15551234567` or `email:bob@example.org`.
        identifier: String,
        /// Also ask this discovery provider (repeatable).
        #[arg(long = "from")]
        from: Vec<String>,
        /// A JSON list of objects: domain, user, tags, verified (and problem if not).
        #[arg(long)]
        json: bool,
    },
    /// Your profile at your provider (handle, email, phone, name) and which fields users of
    /// other providers may find you by (protocol-06 §5.8). Nothing is searchable until you turn
    /// it on, your nick (your user name) included.
    Profile {
        #[command(subcommand)]
        command: ProfileCommand,
    },
    /// Find users of DOMAIN by the profile fields they made searchable (identifierQuery,
    /// protocol-06 §5.8); prints each found user's URI. Every condition given must match; each
    /// option may be repeated. Exit 1 when DOMAIN finds nobody, finds too many (ambiguous),
    /// forbids the query, or a quota is used up.
    Find {
        /// The provider to ask, e.g. a.example (your own included).
        domain: String,
        /// A handle, exactly, e.g. im:alice@a.example.
        #[arg(long)]
        handle: Vec<String>,
        /// A user name, exactly, e.g. alice.
        #[arg(long)]
        nick: Vec<String>,
        /// An email address, exactly (the domain part in any case).
        #[arg(long)]
        email: Vec<String>,
        /// A phone number, exactly, + and digits, e.g. +12125551212.
        #[arg(long)]
        phone: Vec<String>,
        /// Part of a display name, in any case.
        #[arg(long)]
        name: Vec<String>,
        /// Part of any searchable field.
        #[arg(long)]
        any: Vec<String>,
        /// Print one JSON array: [{"uri", "fields": [{"source", "name", "value"}]}].
        #[arg(long)]
        json: bool,
    },
    /// Work with MIMI content files (draft-ietf-mimi-content-08), offline.
    Content {
        #[command(subcommand)]
        command: ContentCommand,
    },
    /// Run three providers and three users on this machine and show a conversation.
    Demo {
        /// Print a JSON summary instead of the transcript.
        #[arg(long)]
        json: bool,
    },
    /// Measure providers and rooms (see BENCHMARKS.md); build with --release first.
    Bench {
        #[command(subcommand)]
        command: mimi_bench::BenchCommand,
    },
}

#[derive(Subcommand)]
enum ContentCommand {
    /// Decode a CBOR file and print it as JSON (byte strings in hex).
    Decode {
        /// The CBOR file.
        file: PathBuf,
        /// Print JSON (the default; kept for symmetry with other commands).
        #[arg(long)]
        json: bool,
    },
    /// Read the JSON shape `content decode` prints and write deterministic CBOR to stdout.
    Encode {
        /// The JSON file.
        file: PathBuf,
    },
    /// Print the message ID (hex) of a CBOR file.
    Id {
        /// The CBOR file.
        file: PathBuf,
        /// The sender's user URI (default: the senderUri extension).
        #[arg(long)]
        sender: Option<String>,
        /// The room URI (default: the roomUri extension).
        #[arg(long)]
        room: Option<String>,
    },
}

#[derive(Subcommand)]
enum RoomCommand {
    /// Create a room hosted by your provider; prints its URI.
    Create {
        /// The room name.
        name: String,
        /// The room's policy: dm (two people, fixed), private (default), moderated or public.
        #[arg(long, default_value = "private")]
        preset: mimi_client::Preset,
        /// A user (mimi://domain/u/name) to add in the room's first commit (repeatable).
        #[arg(long = "with")]
        with: Vec<String>,
    },
    /// Add a user (mimi://domain/u/name) with all its clients.
    Add {
        /// The room URI.
        room: String,
        /// The user URI.
        user: String,
    },
    /// Remove a user and all its clients.
    Remove {
        /// The room URI.
        room: String,
        /// The user URI.
        user: String,
    },
    /// Remove all of a participant's clients; the user stays listed and may come back with
    /// `room join` (canKick).
    Kick {
        /// The room URI.
        room: String,
        /// The user URI.
        user: String,
    },
    /// Ban a participant: role `banned`, all its clients removed; it cannot post, rejoin or be
    /// added until unbanned (canBan).
    Ban {
        /// The room URI.
        room: String,
        /// The user URI.
        user: String,
    },
    /// Lift a ban: the user becomes an inactive participant whom `room add` can bring back
    /// (canUnBan).
    Unban {
        /// The room URI.
        room: String,
        /// The user URI.
        user: String,
    },
    /// Preauthorize a user (mimi://domain/u/name) or every user of a provider (mimi://domain)
    /// for a role: they may then join by themselves (canChangePreauthorizedUserList).
    Preauth {
        /// The room URI.
        room: String,
        /// The user or provider URI.
        who: String,
        /// The role name or index.
        role: String,
    },
    /// Join a room by external commit: as a new device of a participant, or by yourself where
    /// the room lets you (a public room, or one that preauthorized you).
    Join {
        /// The room URI.
        room: String,
        /// A join link for the room (from `room link`).
        #[arg(long)]
        code: Option<String>,
    },
    /// Ask to be let into a room; its members who may add participants see the knock.
    Knock {
        /// The room URI.
        room: String,
    },
    /// List the pending knocks on a room (for members who may add participants).
    Knocks {
        /// The room URI.
        room: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Let a knocker in: adds the user with its clients (canAddParticipant).
    Admit {
        /// The room URI.
        room: String,
        /// The knocking user's URI.
        user: String,
    },
    /// Turn down a knock.
    Deny {
        /// The room URI.
        room: String,
        /// The knocking user's URI.
        user: String,
    },
    /// Create a join link for the room and print it (canCreateJoinCode); whoever holds it may
    /// join as a member with `room join ROOM --code LINK`.
    Link {
        /// The room URI.
        room: String,
        /// Seconds until the link stops working (default: it does not expire).
        #[arg(long)]
        expires: Option<u64>,
        /// Let the link be used more than once (default: once).
        #[arg(long)]
        multi: bool,
    },
    /// Leave a room.
    Leave {
        /// The room URI.
        room: String,
    },
    /// List participants with roles and clients.
    Members {
        /// The room URI.
        room: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the rooms this client knows.
    List,
    /// Change the room's name, subject, mood, avatar or description (room policy decides who
    /// may change which).
    Set {
        /// The room URI.
        room: String,
        /// What to change.
        field: MetadataFieldArg,
        /// The new value (an empty description removes it).
        value: String,
    },
    /// Move a participant to another role (a role name such as admin or banned, or its index);
    /// banning also removes the user's clients.
    Role {
        /// The room URI.
        room: String,
        /// The user URI.
        user: String,
        /// The role name or index.
        role: String,
    },
    /// Set a policy field by its draft name (base policy fields such as multi_device or
    /// max_users, and the Optionality fields of the other policy components such as
    /// read_receipts or expiring_messages).
    Policy {
        /// The room URI.
        room: String,
        /// The field's draft name.
        field: String,
        /// The new value (true/false, a number or none, optional/required/forbidden, ...).
        value: String,
    },
    /// Replace one component of the room with raw bytes (hex), or remove it: for testing
    /// interoperability with other implementations' components. Policy components must
    /// decode; `join_links` (0x2a) takes a JoinLinksUpdate.
    Component {
        /// The room URI.
        room: String,
        /// The component ID, decimal or 0x-hex.
        id: String,
        /// The new value as hex; omit with --remove.
        value: Option<String>,
        /// Remove the component instead.
        #[arg(long, conflicts_with = "value")]
        remove: bool,
    },
    /// Show the room: metadata, policy, roles, participants and components (one JSON object
    /// with --json).
    Info {
        /// The room URI.
        room: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Application state: read and change the room's application components (IDs
    /// 0x8000..=0xffff), in plaintext or encrypted so that only members can read them.
    State {
        /// The room URI.
        room: String,
        #[command(subcommand)]
        command: StateCommand,
    },
}

/// `mimi room state ROOM ...`: one application component at a time.
#[derive(Subcommand)]
enum StateCommand {
    /// Set component ID (decimal or 0x-hex) to VALUE.
    Put {
        /// The component ID, 0x8000..=0xffff.
        id: String,
        /// The value (its UTF-8 bytes).
        value: String,
        /// Encrypt the value; the members get its key, the providers never see it.
        #[arg(long)]
        encrypted: bool,
    },
    /// Print component ID: as text if it is UTF-8, else in hex.
    Get {
        /// The component ID, 0x8000..=0xffff.
        id: String,
        /// Print JSON: {"id", "encrypted", "value" (text or null), "hex" (or null)}.
        #[arg(long)]
        json: bool,
    },
    /// Remove component ID from the room.
    Delete {
        /// The component ID, 0x8000..=0xffff.
        id: String,
    },
}

/// `mimi account ...`.
#[derive(Subcommand)]
enum AccountCommand {
    /// Delete your account: all your devices leave all their rooms and can no longer sign in.
    Delete,
}

/// `mimi device ...`.
#[derive(Subcommand)]
enum DeviceCommand {
    /// Remove one of your user's devices for good (a lost phone): the hubs of its rooms
    /// propose its removal, and it can no longer sign in.
    Remove {
        /// The device URI, mimi://domain/d/user/device.
        device: String,
    },
}

/// The room-metadata fields `mimi room set` changes.
#[derive(Clone, Copy, clap::ValueEnum)]
enum MetadataFieldArg {
    Name,
    Subject,
    Mood,
    Avatar,
    Description,
}

impl From<MetadataFieldArg> for mimi_client::MetadataField {
    fn from(field: MetadataFieldArg) -> Self {
        match field {
            MetadataFieldArg::Name => Self::Name,
            MetadataFieldArg::Subject => Self::Subject,
            MetadataFieldArg::Mood => Self::Mood,
            MetadataFieldArg::Avatar => Self::Avatar,
            MetadataFieldArg::Description => Self::Description,
        }
    }
}

/// `mimi discovery ...`.
#[derive(Subcommand)]
enum DiscoveryCommand {
    /// Have your provider send a one-time code to IDENTIFIER (`phone:+...` or `email:...`).
    Claim {
        /// The identifier.
        identifier: String,
    },
    /// Prove you hold IDENTIFIER with the CODE it received.
    Verify {
        /// The identifier.
        identifier: String,
        /// The code.
        code: String,
    },
    /// Publish a record leading IDENTIFIER to you (your provider attests it).
    Publish {
        /// The identifier.
        identifier: String,
        /// A label such as personal, business or default (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Also publish to this discovery provider (repeatable).
        #[arg(long = "to")]
        to: Vec<String>,
    },
    /// Withdraw your record and proof for IDENTIFIER.
    Remove {
        /// The identifier.
        identifier: String,
        /// Also withdraw it from this discovery provider (repeatable).
        #[arg(long = "from")]
        from: Vec<String>,
    },
    /// The identifiers you claimed.
    List {
        /// A JSON object: {"claims": [{"identifier", "verified"}]}.
        #[arg(long)]
        json: bool,
    },
}

/// `mimi consent ...`.
#[derive(Subcommand)]
enum ConsentCommand {
    /// Who may fetch your KeyPackages (and so add you) without your grant.
    Mode {
        /// `anyone` (the default; explicit denials still count) or `contacts` (only users you
        /// granted).
        #[arg(value_parser = ["anyone", "contacts"])]
        mode: String,
    },
    /// Your mode, the requests you received and sent, your grants and denials.
    List {
        /// Print one JSON object: {"mode", "entries": [{"target", "requester", "room"?,
        /// "state", "key_packages", "updated_at"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Let USER add you (to ROOM only with --room).
    Grant {
        /// The user URI.
        user: String,
        /// Only for this room.
        #[arg(long)]
        room: Option<String>,
        /// Hand over one KeyPackage of each of your clients with the grant.
        #[arg(long)]
        with_key_packages: bool,
    },
    /// Refuse USER (kept with your provider; USER is not told).
    Deny {
        /// The user URI.
        user: String,
        /// Only for this room.
        #[arg(long)]
        room: Option<String>,
    },
    /// Withdraw a grant to USER (USER's provider is told).
    Revoke {
        /// The user URI.
        user: String,
        /// Only for this room.
        #[arg(long)]
        room: Option<String>,
    },
    /// Ask USER for consent to add them.
    Request {
        /// The user URI.
        user: String,
        /// Only for this room.
        #[arg(long)]
        room: Option<String>,
    },
    /// Withdraw a request to USER (same scope as the request).
    Cancel {
        /// The user URI.
        user: String,
        /// Only for this room.
        #[arg(long)]
        room: Option<String>,
    },
}

#[derive(Subcommand)]
enum ProfileCommand {
    /// Set a field; your provider checks it (an im: handle, an address with one @, + and
    /// digits for a phone).
    Set {
        /// The field.
        #[arg(value_parser = ["handle", "email", "phone", "name"])]
        field: String,
        /// Its value.
        value: String,
    },
    /// Unset a field (whether it is searchable is kept).
    Clear {
        /// The field.
        #[arg(value_parser = ["handle", "email", "phone", "name"])]
        field: String,
    },
    /// Let identifier queries match a field, or stop them (`nick`: your user name).
    Searchable {
        /// The field.
        #[arg(value_parser = ["handle", "email", "phone", "name", "nick"])]
        field: String,
        /// `on` or `off`.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Your profile: each field, its value and whether it is searchable.
    Show {
        /// Print one JSON object: {"user", "fields": [{"field", "value"?, "searchable"}]}.
        #[arg(long)]
        json: bool,
    },
}

/// The `mimi` command line; returns the process exit code.
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MIMI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mimi: error: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mimi: error: {e:#}");
            let refused = e
                .downcast_ref::<mimi_client::ClientError>()
                .is_some_and(|c| {
                    matches!(
                        c,
                        mimi_client::ClientError::Refused(_)
                            | mimi_client::ClientError::Stale(_)
                            | mimi_client::ClientError::NotAllowed(_)
                    )
                });
            if let Some(hint) = hint_for(&e) {
                eprintln!("hint: {hint}");
            }
            let internal = e
                .downcast_ref::<mimi_client::ClientError>()
                .is_some_and(|c| matches!(c, mimi_client::ClientError::Internal(_)));
            ExitCode::from(if refused {
                EXIT_REFUSED
            } else if internal {
                EXIT_INTERNAL
            } else {
                EXIT_ERROR
            })
        }
    }
}

fn hint_for(e: &anyhow::Error) -> Option<&'static str> {
    match e.downcast_ref::<mimi_client::ClientError>()? {
        mimi_client::ClientError::Provider(_) => {
            Some("is mimid running and reachable at the profile's server address?")
        }
        _ => None,
    }
}
