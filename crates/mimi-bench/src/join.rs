//! `mimi bench join`: what joining a large room costs. A new user's client joins from a
//! Welcome (with the ratchet tree the hub supplies), then a second device of that user joins
//! by external commit: it asks the hub for the GroupInfo (the hub's serving time is measured),
//! builds the commit, and the hub validates it. Bytes on the wire are reported for each step.

use std::time::Instant;

use anyhow::Context as _;
use mimi_protocol::{
    Credential, GroupInfoRatchetTreeTbe, GroupInfoRequest, GroupInfoRequestTbs, GroupInfoResponse,
    GroupInfoResult, HpkePublicKey, MlsMessage, Protocol, RatchetTreeOption, SignaturePublicKey,
    Wire,
};
use mimi_room::MemberState;
use serde::Serialize;

use super::world::{DOMAINS, World, issue_device, ms_since, now_secs, update_body};
use super::{Machine, Spread, report};

/// Options of `mimi bench join`.
#[derive(clap::Args)]
pub struct Args {
    /// Room sizes (member clients), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    sizes: Vec<usize>,
    /// Joins of each kind per size.
    #[arg(long, default_value_t = 3)]
    samples: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Target from issue 4: a client joins a 10,000-member room in under a second.
const TARGET_MS: f64 = 1000.0;

#[derive(Serialize)]
struct Output {
    benchmark: &'static str,
    machine: Machine,
    samples: usize,
    target_join_ms: f64,
    results: Vec<SizeResult>,
}

#[derive(Serialize)]
struct SizeResult {
    members: usize,
    setup_secs: f64,
    /// Client: process the Welcome with the supplied tree and check every member, ms.
    welcome_join_ms: Spread,
    /// Bare OpenMLS processing the same Welcome and tree, no MIMI checks, ms.
    welcome_join_bare_ms: Spread,
    /// Client: serialize its new state for saving, ms (what the SDK writes after a join).
    welcome_save_ms: Spread,
    /// Hub: answer a GroupInfoRequest (verify, encrypt GroupInfo and tree, sign), ms.
    hub_group_info_ms: Spread,
    /// Client: decrypt the answer, check the tree and build the external commit, ms.
    external_join_ms: Spread,
    /// Bare OpenMLS building an external commit from the same GroupInfo and tree, ms.
    external_join_bare_ms: Spread,
    /// Hub: validate and apply the external commit, save and queue its fan-out, ms.
    hub_external_commit_ms: Spread,
    bytes: Bytes,
}

#[derive(Serialize)]
struct Bytes {
    welcome: usize,
    ratchet_tree: usize,
    group_info_request: usize,
    group_info_response: usize,
    external_commit_request: usize,
}

/// Runs the benchmark.
pub(crate) async fn run(args: Args) -> anyhow::Result<String> {
    let mut results = Vec::new();
    for &members in &args.sizes {
        eprintln!("join bench: building a room of {members} members...");
        results.push(one_size(members, args.samples.max(1)).await?);
    }
    let output = Output {
        benchmark: "join",
        machine: Machine::this(),
        samples: args.samples,
        target_join_ms: TARGET_MS,
        results,
    };
    report(args.json, &output, &table(&output))
}

async fn one_size(members: usize, samples: usize) -> anyhow::Result<SizeResult> {
    let temp = tempfile::tempdir()?;
    let setup = Instant::now();
    let w = World::build(temp.path(), members).await?;
    let setup_secs = setup.elapsed().as_secs_f64();
    let joiner_domain = DOMAINS[1];
    let mut t = Timings::default();
    let mut bytes = Bytes {
        welcome: 0,
        ratchet_tree: 0,
        group_info_request: 0,
        group_info_response: 0,
        external_commit_request: 0,
    };
    for sample in 0..samples {
        // A new user, invited by the creator.
        let user = format!("joiner{sample}");
        let phone = MemberState::new();
        let phone_id = issue_device(&w.identities, &phone, joiner_domain, &user, "phone")?;
        let kp = phone.key_packages(&phone_id, 1)?;
        let user_uri = format!("mimi://{joiner_domain}/u/{user}");
        let add = w
            .creator
            .add_users(&w.creator_id, &w.room, &[(user_uri.clone(), kp)])?;
        w.submit(&add).await?;
        w.creator.merge_pending_commit(&w.room)?;
        let welcome = add.welcome.as_ref().context("add without Welcome")?;
        // The hub fans the Welcome out with the tree it tracks; this is that tree.
        let tree = w
            .creator
            .export_group_info(&w.creator_id, &w.room)?
            .ratchet_tree;
        bytes.welcome = welcome.len();
        bytes.ratchet_tree = tree.len();
        // The floor: the same Welcome into a copy of the joiner's state, OpenMLS alone.
        let copy = MemberState::from_snapshot(&phone.snapshot()?)?;
        let start = Instant::now();
        mimi_room::baseline::bare_join(&copy, welcome, &tree)?;
        t.welcome_join_bare.push(ms_since(start));
        drop(copy);
        let start = Instant::now();
        phone.join(&w.anchor, welcome, &tree, now_secs())?;
        t.welcome_join.push(ms_since(start));
        let start = Instant::now();
        let saved = phone.snapshot()?;
        t.welcome_save.push(ms_since(start));
        drop(saved);

        // The same user's laptop joins by external commit.
        let laptop = MemberState::new();
        let laptop_id = issue_device(&w.identities, &laptop, joiner_domain, &user, "laptop")?;
        let (hpke_public, hpke_private) = mimi_room::new_hpke_keypair()?;
        let tbs = GroupInfoRequestTbs {
            protocol: Protocol::Mls10,
            cipher_suite: mimi_room::WIRE_CIPHERSUITE,
            requesting_signature_key: SignaturePublicKey(laptop_id.signature_public_key.clone()),
            requesting_credential: Credential::decode(&mimi_room::credential_bytes(&laptop_id)?)?,
            group_info_public_key: HpkePublicKey(hpke_public),
            joining_code: None,
        };
        let signature =
            mimi_room::sign_with_label(&laptop, &laptop_id, "GroupInfoRequestTBS", &tbs.encode())?;
        let request = GroupInfoRequest {
            protocol: tbs.protocol,
            cipher_suite: tbs.cipher_suite,
            requesting_signature_key: tbs.requesting_signature_key,
            requesting_credential: tbs.requesting_credential,
            group_info_public_key: tbs.group_info_public_key,
            joining_code: Vec::new(),
            signature,
        }
        .encode();
        bytes.group_info_request = request.len();
        let start = Instant::now();
        let answer = w.hub.group_info(&w.room, request, joiner_domain).await?;
        t.hub_group_info.push(ms_since(start));
        bytes.group_info_response = answer.len();

        let start = Instant::now();
        let response = GroupInfoResponse::decode(&answer)?;
        let response_tbs = response.tbs().context("GroupInfo refused")?;
        let GroupInfoResult::Success(success) = response.result else {
            anyhow::bail!("the hub refused the GroupInfo request");
        };
        mimi_room::verify_with_label(
            &success.hub_sender.signature_key.0,
            "GroupInfoResponseTBS",
            &response_tbs.encode(),
            &success.signature,
        )?;
        let plaintext = mimi_room::decrypt_with_label(
            &hpke_private,
            "GroupInfo and ratchet_tree encryption",
            w.room.as_bytes(),
            &success.encrypted_groupinfo_and_tree.kem_output,
            &success.encrypted_groupinfo_and_tree.ciphertext,
        )?;
        let tbe = GroupInfoRatchetTreeTbe::decode(&plaintext)?;
        let RatchetTreeOption::Full { ratchet_tree } = &tbe.ratchet_tree_option else {
            anyhow::bail!("GroupInfo answer without a tree");
        };
        let group_info = MlsMessage::from(tbe.group_info.clone());
        let copy = MemberState::from_snapshot(&laptop.snapshot()?)?;
        let paused = ms_since(start);
        let bare_start = Instant::now();
        mimi_room::baseline::bare_external_join(
            &copy,
            &laptop_id,
            group_info.as_bytes(),
            ratchet_tree,
        )?;
        t.external_join_bare.push(ms_since(bare_start));
        drop(copy);
        let start = Instant::now();
        let (_, pending) = laptop.join_by_external_commit(
            &w.anchor,
            &laptop_id,
            group_info.as_bytes(),
            ratchet_tree,
            &success.hub_sender.encode(),
            now_secs(),
        )?;
        t.external_join.push(paused + ms_since(start));
        bytes.external_commit_request = update_body(&pending)?.len();
        let start = Instant::now();
        w.submit(&pending).await?;
        t.hub_external_commit.push(ms_since(start));
        // The creator follows, so its next commit is for the right epoch.
        w.creator
            .process(&w.anchor, &w.room, &pending.commit, now_secs())?;
    }
    let spread = |v: &[f64]| Spread::of(v).expect("at least one sample");
    Ok(SizeResult {
        members,
        setup_secs,
        welcome_join_ms: spread(&t.welcome_join),
        welcome_join_bare_ms: spread(&t.welcome_join_bare),
        welcome_save_ms: spread(&t.welcome_save),
        hub_group_info_ms: spread(&t.hub_group_info),
        external_join_ms: spread(&t.external_join),
        external_join_bare_ms: spread(&t.external_join_bare),
        hub_external_commit_ms: spread(&t.hub_external_commit),
        bytes,
    })
}

#[derive(Default)]
struct Timings {
    welcome_join: Vec<f64>,
    welcome_join_bare: Vec<f64>,
    external_join_bare: Vec<f64>,
    welcome_save: Vec<f64>,
    hub_group_info: Vec<f64>,
    external_join: Vec<f64>,
    hub_external_commit: Vec<f64>,
}

fn table(output: &Output) -> String {
    let m = &output.machine;
    let mut t = format!(
        "joining large rooms ({} cores, {}; {} samples; medians, max in brackets)\n",
        m.cores, m.cpu, output.samples
    );
    for r in &output.results {
        let f = |s: &Spread| format!("{:.1} ms [{:.1}]", s.median, s.max);
        t.push_str(&format!(
            "{} members (setup {:.1} s)\n  \
             join from Welcome:     {}   (+ save {}; bare OpenMLS {})\n  \
             hub serves GroupInfo:  {}\n  \
             external commit built: {}   (bare OpenMLS {})\n  \
             hub applies it:        {}\n  \
             bytes: Welcome {}, tree {}, GroupInfo request {}, response {}, external commit {}\n",
            r.members,
            r.setup_secs,
            f(&r.welcome_join_ms),
            f(&r.welcome_save_ms),
            f(&r.welcome_join_bare_ms),
            f(&r.hub_group_info_ms),
            f(&r.external_join_ms),
            f(&r.external_join_bare_ms),
            f(&r.hub_external_commit_ms),
            r.bytes.welcome,
            r.bytes.ratchet_tree,
            r.bytes.group_info_request,
            r.bytes.group_info_response,
            r.bytes.external_commit_request,
        ));
    }
    t.push_str(&format!(
        "target: join under {:.0} ms",
        output.target_join_ms
    ));
    t
}
