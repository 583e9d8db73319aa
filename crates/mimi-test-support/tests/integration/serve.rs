//! Starting and dropping real `mimid` processes.

use std::net::TcpStream;
use std::path::Path;

use mimi_test_support::{Error, Logs, Serve, init_mesh, set_config_value, workspace_binary};

#[test]
fn starts_a_mesh_sees_it_ready_and_leaves_no_process_behind() {
    let mimid = workspace_binary("mimid").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mesh = init_mesh(
        &mimid,
        &["a.example", "b.example"],
        dir.path(),
        &dir.path().join("ca"),
    )
    .unwrap();
    assert_eq!(mesh.len(), 2);
    assert_ne!(mesh[0].addr, mesh[1].addr);
    let a_config = std::fs::read_to_string(&mesh[0].config).unwrap();
    assert!(
        a_config.contains(&format!("https://{}", mesh[1].addr)),
        "a.example's config does not name b.example as a peer:\n{a_config}"
    );
    let mut pids = Vec::new();
    for provider in &mesh {
        let logs = Logs::in_dir(&provider.dir);
        let running = Serve::new(
            &mimid,
            &provider.config,
            &provider.domain,
            provider.addr,
            &logs,
        )
        .start()
        .unwrap();
        assert_eq!(running.addr(), provider.addr);
        TcpStream::connect(running.addr()).expect("a ready mimid accepts connections");
        let stdout = std::fs::read_to_string(&logs.stdout).unwrap();
        assert!(
            stdout.contains(&format!("ready {}", provider.addr)),
            "stdout log: {stdout}"
        );
        let pid = running.pid();
        assert!(alive(pid));
        drop(running);
        assert!(
            !alive(pid),
            "mimid {pid} still exists after its handle was dropped"
        );
        pids.push(pid);
    }
    assert_ne!(pids[0], pids[1]);
}

#[test]
fn a_mimid_that_cannot_start_is_reported_with_its_stderr() {
    let mimid = workspace_binary("mimid").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mesh = init_mesh(&mimid, &["a.example"], dir.path(), &dir.path().join("ca")).unwrap();
    let a = &mesh[0];
    // A config mimid refuses: the server exits before it is ready.
    set_config_value(&a.config, "inline_tree_bytes", "\"many\"").unwrap();
    let logs = Logs::in_dir(&a.dir);
    let err = Serve::new(&mimid, &a.config, &a.domain, a.addr, &logs)
        .start()
        .unwrap_err();
    match err {
        Error::NotReady { name, stderr, .. } => {
            assert_eq!(name, "a.example");
            assert!(
                stderr.contains("inline_tree_bytes"),
                "stderr does not name the bad setting: {stderr}"
            );
        }
        other => panic!("expected NotReady, got {other}"),
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
