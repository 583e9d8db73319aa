//! The loopback DNS server answers what it was given, over UDP and TCP, to a real resolver.

use std::net::{IpAddr, Ipv4Addr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use mimi_test_support::{DnsRecord, DnsServer};

fn resolver(server: &DnsServer, protocol: Protocol) -> TokioResolver {
    let mut config = ResolverConfig::new();
    config.add_name_server(NameServerConfig::new(server.addr(), protocol));
    TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
        .with_options(ResolverOpts::default())
        .build()
}

#[test]
fn answers_srv_and_address_records_and_nothing_else() {
    let server = DnsServer::start(&[
        DnsRecord::MimiSrv {
            domain: "a.example".into(),
            target: "mimi.a.example".into(),
            port: 8443,
        },
        DnsRecord::A {
            name: "mimi.a.example".into(),
            ip: Ipv4Addr::new(127, 0, 0, 7),
        },
    ])
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for protocol in [Protocol::Udp, Protocol::Tcp] {
            let dns = resolver(&server, protocol);
            let srv = dns.srv_lookup("_mimi._tcp.a.example.").await.unwrap();
            let record = srv.iter().next().unwrap();
            assert_eq!(record.port(), 8443);
            assert_eq!(record.target().to_utf8(), "mimi.a.example.");
            let ips: Vec<IpAddr> = dns
                .lookup_ip("mimi.a.example.")
                .await
                .unwrap()
                .iter()
                .collect();
            assert_eq!(ips, [IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7))]);
            assert!(dns.srv_lookup("_mimi._tcp.b.example.").await.is_err());
            assert!(dns.lookup_ip("b.example.").await.is_err());
        }
    });
}
