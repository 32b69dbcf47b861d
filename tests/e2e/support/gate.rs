//! A network fault between the operator and a real server: a TCP relay on a
//! loopback port that can be shut (connections refused, open ones cut) and
//! opened again on the same port.

use std::net::SocketAddr;

use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

pub struct Gate {
    listen: SocketAddr,
    upstream: SocketAddr,
    relay: Option<JoinHandle<()>>,
}

impl Gate {
    /// An open gate to `upstream` (host:port) on a free loopback port.
    pub async fn open_to(upstream: &str) -> Self {
        let upstream: SocketAddr = tokio::net::lookup_host(upstream)
            .await
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| panic!("cannot resolve {upstream}"));
        let mut gate = Self {
            listen: "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
            upstream,
            relay: None,
        };
        gate.open();
        gate
    }

    /// `http://127.0.0.1:<port>`: where to reach the upstream through the gate.
    pub fn url(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// Listens again on the same port and relays every connection.
    pub fn open(&mut self) {
        let socket = TcpSocket::new_v4().unwrap_or_else(|e| panic!("{e}"));
        socket.set_reuseaddr(true).unwrap_or_else(|e| panic!("{e}"));
        socket
            .bind(self.listen)
            .unwrap_or_else(|e| panic!("binding {}: {e}", self.listen));
        let listener = socket.listen(64).unwrap_or_else(|e| panic!("{e}"));
        self.listen = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let upstream = self.upstream;
        self.relay = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
            // Dropping the set cuts the connections still open.
        }));
    }

    /// Stops listening (new connections are refused) and cuts open ones.
    pub async fn shut(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.abort();
            let _ = relay.await;
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
    }
}
