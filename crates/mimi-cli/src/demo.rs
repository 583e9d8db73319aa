//! `mimi demo`: three providers (a.example hosts the room, b.example and c.example follow) on
//! loopback with temporary state, three users, the whole flow of the walking skeleton, and a
//! check of every expected outcome.

use crate::output::out;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mimi_client::{Client, ClientError};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// How long to wait for fan-out to reach a client before a check fails.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);

const DOMAINS: [&str; 3] = ["a.example", "b.example", "c.example"];

#[derive(Serialize)]
struct Check {
    name: String,
    ok: bool,
    detail: String,
}

#[derive(Serialize)]
struct Step {
    at_ms: u128,
    took_ms: u128,
    what: String,
}

#[derive(Serialize)]
struct Summary {
    ok: bool,
    providers: BTreeMap<String, String>,
    room: String,
    checks: Vec<Check>,
    steps: Vec<Step>,
}

struct Transcript {
    start: Instant,
    json: bool,
    steps: Vec<Step>,
    checks: Vec<Check>,
}

impl Transcript {
    fn step(&mut self, began: Instant, what: String) {
        let step = Step {
            at_ms: self.start.elapsed().as_millis(),
            took_ms: began.elapsed().as_millis(),
            what,
        };
        if !self.json {
            out!("[{:>6} ms] {} ({} ms)", step.at_ms, step.what, step.took_ms);
        }
        self.steps.push(step);
    }

    fn check(&mut self, name: &str, ok: bool, detail: String) {
        if !self.json {
            out!(
                "           check {}: {} {}",
                name,
                if ok { "ok" } else { "FAILED" },
                detail
            );
        }
        self.checks.push(Check {
            name: name.into(),
            ok,
            detail,
        });
    }
}

pub(crate) async fn run(json: bool) -> anyhow::Result<()> {
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let ca_dir = temp.path().join("ca");
    let mut listeners = Vec::new();
    for _ in DOMAINS {
        listeners.push(TcpListener::bind("127.0.0.1:0").await?);
    }
    let addrs: Vec<SocketAddr> = listeners
        .iter()
        .map(|l| l.local_addr())
        .collect::<Result<_, _>>()?;
    let mut stops = Vec::new();
    let mut servers = Vec::new();
    let mut providers = BTreeMap::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let peers = DOMAINS
            .iter()
            .zip(&addrs)
            .filter(|(d, _)| **d != DOMAINS[i])
            .map(|(d, a)| (d.to_string(), format!("https://{a}")))
            .collect();
        let dir = temp.path().join(DOMAINS[i]);
        let path = mimi_server::init(DOMAINS[i], addrs[i], &dir, &ca_dir, peers)?;
        let mut config = mimi_server::Config::load(&path)?;
        // a.example looks identifiers up at b.example too (issue 12, IN-DISC-5).
        if i == 0 {
            config.discovery.providers = vec![DOMAINS[1].to_string()];
        }
        let (stop, stopped) = oneshot::channel::<()>();
        stops.push(stop);
        servers.push(tokio::spawn(mimi_server::run(config, listener, async {
            let _ = stopped.await;
        })));
        providers.insert(DOMAINS[i].to_string(), format!("https://{}", addrs[i]));
    }
    let mut t = Transcript {
        start: Instant::now(),
        json,
        steps: Vec::new(),
        checks: Vec::new(),
    };
    if !json {
        for (d, url) in &providers {
            out!("provider {d} at {url}");
        }
    }
    let outcome = conversation(&mut t, temp.path(), &ca_dir, &addrs).await;
    for stop in stops {
        let _ = stop.send(());
    }
    for server in servers {
        let _ = server.await;
    }
    let room = match &outcome {
        Ok(room) => room.clone(),
        Err(e) => {
            t.check("demo ran to the end", false, format!("{e:#}"));
            String::new()
        }
    };
    let ok = outcome.is_ok() && t.checks.iter().all(|c| c.ok);
    let summary = Summary {
        ok,
        providers,
        room,
        checks: t.checks,
        steps: t.steps,
    };
    if json {
        out!("{}", serde_json::to_string(&summary)?);
    } else {
        out!(
            "{}",
            if ok {
                "demo ok: every check passed"
            } else {
                "demo FAILED"
            }
        );
    }
    if ok {
        Ok(())
    } else {
        anyhow::bail!("the demo's checks did not all pass")
    }
}

async fn conversation(
    t: &mut Transcript,
    dir: &std::path::Path,
    ca_dir: &std::path::Path,
    addrs: &[SocketAddr],
) -> anyhow::Result<String> {
    let ca_pem = std::fs::read_to_string(ca_dir.join("ca.pem"))?;
    let mut register = async |user: &str, i: usize| -> anyhow::Result<Client> {
        let began = Instant::now();
        let client = Client::register(
            &dir.join(format!("{user}-profile")),
            &format!("https://{}", addrs[i]),
            &ca_pem,
            user,
            "laptop",
        )
        .await?;
        t.step(
            began,
            format!(
                "{user} registered at {} as {}",
                DOMAINS[i],
                client.device_uri()
            ),
        );
        Ok(client)
    };
    let mut alice = register("alice", 0).await?;
    let mut bob = register("bob", 1).await?;
    let mut cathy = register("cathy", 2).await?;

    let began = Instant::now();
    let room = alice.create_room("clubhouse").await?;
    t.step(began, format!("alice created {room} (hub a.example)"));

    // Bob makes himself findable by his phone number; Alice finds him by it.
    let began = Instant::now();
    let phone = "phone:+15551234567";
    bob.discovery_claim(phone).await?;
    let codes = std::fs::read_to_string(dir.join(DOMAINS[1]).join("verification-codes.log"))?;
    let code = codes
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(&format!("{phone} ")))
        .context("b.example's verifier wrote no code")?
        .to_owned();
    bob.discovery_verify(phone, &code).await?;
    bob.discovery_publish(phone, &["personal".to_string()], &[])
        .await?;
    t.step(
        began,
        format!("bob proved {phone} with the code b.example sent and published it, signed by him and attested by b.example"),
    );
    let began = Instant::now();
    let found = alice.resolve_identifier(phone).await?;
    t.step(
        began,
        format!("alice looked {phone} up through a.example: {found}, both signatures checked"),
    );
    t.check(
        "alice found bob by his phone number",
        found == bob.user_uri(),
        found.clone(),
    );

    let began = Instant::now();
    alice.add(&room, &found).await?;
    t.step(began, "alice added bob: KeyPackage from b.example via the hub, one commit with the participant-list add".into());
    let began = Instant::now();
    let joined = wait(&mut bob, |c| {
        c.rooms()
            .map(|r| r.iter().any(|(u, a)| *u == room && *a))
            .unwrap_or(false)
    })
    .await;
    t.step(
        began,
        "bob joined from the Welcome a.example routed to b.example".into(),
    );
    t.check("bob joined", joined, String::new());

    let began = Instant::now();
    bob.add(&room, cathy.user_uri()).await?;
    t.step(
        began,
        "bob added cathy: b.example asked the hub, the hub asked c.example".into(),
    );
    let began = Instant::now();
    let joined = wait(&mut cathy, |c| {
        c.rooms()
            .map(|r| r.iter().any(|(u, a)| *u == room && *a))
            .unwrap_or(false)
    })
    .await;
    t.step(began, "cathy joined".into());
    t.check("cathy joined", joined, String::new());

    for (client, text) in [
        (&mut alice, "hello from a.example"),
        (&mut bob, "hi from b.example"),
        (&mut cathy, "hey from c.example"),
    ] {
        let began = Instant::now();
        let id = client.send(&room, text).await?;
        t.step(
            began,
            format!(
                "{} sent {text:?} (id {}), accepted by the hub",
                client.user_uri(),
                &id[..16]
            ),
        );
    }
    for client in [&mut alice, &mut bob, &mut cathy] {
        let began = Instant::now();
        let all = wait(client, |c| {
            c.messages(&room).map(|m| m.len() == 3).unwrap_or(false)
        })
        .await;
        let order: Vec<String> = client
            .messages(&room)?
            .into_iter()
            .filter_map(|m| m.text)
            .collect();
        t.step(
            began,
            format!("{} has {} messages", client.user_uri(), order.len()),
        );
        t.check(
            &format!("{} received all three", client.user_uri()),
            all,
            order.join(" | "),
        );
    }
    let orders: Vec<Vec<String>> = [&alice, &bob, &cathy]
        .iter()
        .map(|c| {
            c.messages(&room)
                .map(|m| m.into_iter().map(|m| m.id).collect())
                .unwrap_or_default()
        })
        .collect();
    t.check(
        "everyone sees the same order",
        orders.iter().all(|o| *o == orders[0]),
        String::new(),
    );

    let began = Instant::now();
    cathy.leave(&room).await?;
    t.step(
        began,
        "cathy proposed to leave (SelfRemove + participant-list removal), the hub queued it".into(),
    );
    let began = Instant::now();
    alice.send(&room, "bye cathy").await?;
    t.step(
        began,
        "alice committed cathy's pending departure, then sent".into(),
    );
    // Cathy's own client knows she is leaving and does not even try.
    let refused = cathy.post(&room, "am I still here?").await;
    t.check(
        "cathy's client refuses to post while she is leaving",
        matches!(&refused, Err(ClientError::NotAllowed(_))),
        format!("{:?}", refused.err().map(|e| e.to_string())),
    );
    let left = wait(&mut cathy, |c| {
        c.rooms()
            .map(|r| r.iter().any(|(u, a)| *u == room && !*a))
            .unwrap_or(false)
    })
    .await;
    t.check("cathy saw her removal", left, String::new());
    let began = Instant::now();
    alice.remove(&room, bob.user_uri()).await?;
    t.step(
        began,
        "alice removed bob (participant list and all his clients in one commit)".into(),
    );
    let refused = bob.post(&room, "let me back in").await;
    t.check(
        "the hub refuses a removed user's post",
        matches!(&refused, Err(ClientError::Refused(_))),
        format!("{:?}", refused.err().map(|e| e.to_string())),
    );
    let removed = wait(&mut bob, |c| {
        c.rooms()
            .map(|r| r.iter().any(|(u, a)| *u == room && !*a))
            .unwrap_or(false)
    })
    .await;
    t.check("bob saw his removal", removed, String::new());
    let members = alice.members(&room)?;
    t.check(
        "only alice is left",
        members.len() == 1 && members[0].user == alice.user_uri(),
        members
            .iter()
            .map(|m| m.user.clone())
            .collect::<Vec<_>>()
            .join(", "),
    );
    Ok(room)
}

/// Syncs `client` until `done` holds or the delivery timeout passes.
async fn wait(client: &mut Client, done: impl Fn(&Client) -> bool) -> bool {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        if client.sync().await.is_ok() && done(client) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
