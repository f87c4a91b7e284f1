//! The `nats-server` test harness itself: isolation, cleanup on drop, restart, config.

use std::net::{Ipv4Addr, TcpStream};

use peerscrip_tests::{HarnessError, NatsServer};

fn accepts_connections(port: u16) -> bool {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
}

#[test]
fn two_servers_are_isolated() {
    let a = NatsServer::start().expect("start a");
    let b = NatsServer::start().expect("start b");
    assert_ne!(a.port(), b.port());
    assert_ne!(a.store_dir(), b.store_dir());
    assert_ne!(a.server_name(), b.server_name());
    assert!(a.store_dir().is_dir());
    assert!(b.store_dir().is_dir());
    assert_eq!(a.url(), format!("nats://127.0.0.1:{}", a.port()));
}

#[test]
fn drop_kills_the_server_and_removes_its_directory() {
    let server = NatsServer::start().expect("start");
    let port = server.port();
    let store = server.store_dir();
    assert!(accepts_connections(port));
    drop(server);
    assert!(!accepts_connections(port), "port {port} still accepts");
    assert!(!store.exists(), "{} still exists", store.display());
}

#[test]
fn restart_keeps_port_and_store() {
    let mut server = NatsServer::start().expect("start");
    let (port, store) = (server.port(), server.store_dir());
    // A marker in the store survives the restart: the same directory is reused.
    let marker = store.join("marker");
    std::fs::write(&marker, b"kept").unwrap();
    server.restart().expect("restart");
    assert_eq!(server.port(), port);
    assert_eq!(server.store_dir(), store);
    assert!(accepts_connections(port));
    assert_eq!(std::fs::read(&marker).unwrap(), b"kept");
    // Both runs logged to the same file.
    let log = std::fs::read_to_string(server.log_path()).unwrap();
    assert_eq!(log.matches("Server is ready").count(), 2, "{log}");
}

#[tokio::test]
async fn config_text_is_applied() {
    let server = NatsServer::start_with_config("max_payload: 200000\n").expect("start");
    let client = async_nats::connect(server.url()).await.unwrap();
    assert_eq!(client.server_info().max_payload, 200_000);
}

#[test]
fn refused_config_reports_the_log_tail() {
    let err = NatsServer::start_with_config("this is { not a config").unwrap_err();
    match &err {
        HarnessError::Exited { log_tail, .. } => {
            assert!(!log_tail.trim().is_empty(), "empty log tail");
        }
        other => panic!("expected Exited, got {other:?}"),
    }
}
