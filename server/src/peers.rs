//! The other replicas of a deployment, for owner forwarding: which route
//! lives at which address.
//!
//! A session id names its owner's route (`r2.<random>`), but a route is
//! not an address, and nothing a client sends is ever turned into one: a
//! replica connects only to the addresses it was configured with (the
//! `--peers` entries, resolved again at every refresh, and the lines of
//! `--peers-file`), and learns which route each serves by asking it
//! ([`Peers::refresh`], with a probe the transport supplies). A session id
//! whose route none of them serves gets `404` without any connection to
//! what the id names. That is what keeps forwarding from becoming an open
//! proxy on a network where `ip-169-254-169-254` is a valid route.
//!
//! This module knows no HTTP: the probe is a function from an address to
//! the route found there.

use crate::config::Config;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::Duration;
use tokio::time::Instant;

/// Bound on resolving one `--peers` name: a resolver that does not answer
/// must not hold up the refresh of the others.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest route a replica mints (see [`crate::affinity::route_key`]);
/// a peer that claims a longer or stranger one is ignored.
const MAX_ROUTE: usize = 63;

/// What a peer says of itself when asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub route: String,
    /// Whether it takes new sessions (not draining, not full).
    pub ready: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Peer {
    addr: SocketAddr,
    ready: bool,
}

pub struct Peers {
    own_route: String,
    /// `--peers`: `host:port` entries, resolved at every refresh.
    entries: Vec<String>,
    /// `--peers-file`, read again at every refresh.
    file: Option<PathBuf>,
    /// Route -> the live peer that serves it, this replica left out.
    routes: RwLock<HashMap<String, Peer>>,
    /// Turns through the ready peers for requests that need no particular
    /// one (see [`Peers::ready`]).
    turn: std::sync::atomic::AtomicUsize,
    /// When the last refresh started; one refresh runs at a time.
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl Peers {
    /// The peer directory the configuration asks for, or `None` when this
    /// replica forwards nothing (no peers configured).
    pub fn from_config(config: &Config, own_route: &str) -> Option<Peers> {
        config.forwards().then(|| Peers {
            own_route: own_route.to_owned(),
            entries: config
                .peers
                .iter()
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
            file: config.peers_file.clone(),
            routes: RwLock::new(HashMap::new()),
            turn: std::sync::atomic::AtomicUsize::new(0),
            last_refresh: tokio::sync::Mutex::new(None),
        })
    }

    /// Where the replica that owns `route` listens, if it is a live peer.
    pub fn owner(&self, route: &str) -> Option<SocketAddr> {
        self.read().get(route).map(|p| p.addr)
    }

    /// The peers that took new sessions when last asked, starting with a
    /// different one at each call so that such requests spread evenly.
    pub fn ready(&self) -> Vec<SocketAddr> {
        let mut ready: Vec<SocketAddr> = self
            .read()
            .values()
            .filter(|p| p.ready)
            .map(|p| p.addr)
            .collect();
        ready.sort_unstable();
        if !ready.is_empty() {
            let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let n = ready.len();
            ready.rotate_left(turn % n);
        }
        ready
    }

    /// Forgets `route` after its owner at `addr` refused a connection: it
    /// is gone, and its sessions with it. The next refresh brings it back
    /// if it was only a blip.
    pub fn forget(&self, route: &str, addr: SocketAddr) {
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        if routes.get(route).map(|p| p.addr) == Some(addr) {
            routes.remove(route);
        }
    }

    /// Every live peer's address (a change to tell them all of).
    pub fn all(&self) -> Vec<SocketAddr> {
        self.read().values().map(|p| p.addr).collect()
    }

    /// How many other live replicas this one knows.
    pub fn known(&self) -> usize {
        self.read().len()
    }

    /// Looks up every configured address and asks each, and each peer known
    /// already, with `probe`, which route it serves and whether it is
    /// ready; the answers replace what was known. Addresses that do not
    /// answer are left out: a replica that stopped is forgotten.
    pub async fn refresh<F, Fut>(&self, probe: F)
    where
        F: Fn(SocketAddr) -> Fut,
        Fut: Future<Output = Option<Identity>>,
    {
        let mut last = self.last_refresh.lock().await;
        *last = Some(Instant::now());
        self.refresh_locked(&probe).await;
    }

    /// Refreshes unless a refresh started less than `min_age` ago (or is
    /// running: then this waits for it). A request whose route is unknown
    /// calls this, so that a replica that just started is found before the
    /// next periodic refresh, while a flood of made-up routes costs at most
    /// one round of probes of the configured peers per `min_age`.
    pub async fn refresh_unless_recent<F, Fut>(&self, min_age: Duration, probe: F)
    where
        F: Fn(SocketAddr) -> Fut,
        Fut: Future<Output = Option<Identity>>,
    {
        let mut last = self.last_refresh.lock().await;
        if last.is_some_and(|t| t.elapsed() < min_age) {
            return;
        }
        *last = Some(Instant::now());
        self.refresh_locked(&probe).await;
    }

    async fn refresh_locked<F, Fut>(&self, probe: &F)
    where
        F: Fn(SocketAddr) -> Fut,
        Fut: Future<Output = Option<Identity>>,
    {
        // The peers known now are asked again even if the configuration
        // no longer names them: a DNS name may drop a stopping replica's
        // record (ECS Cloud Map does) while it still serves its sessions
        // for the deregistration delay, and a resolver may give only some
        // of the records at a time (Cloud Map: eight); a peer is forgotten
        // once it stops answering.
        let mut addrs = self.addresses().await;
        addrs.extend(self.read().values().map(|p| p.addr));
        addrs.sort_unstable();
        addrs.dedup();
        let answers = futures::future::join_all(addrs.iter().map(|a| probe(*a))).await;
        let mut found = HashMap::new();
        for (addr, identity) in addrs.into_iter().zip(answers) {
            let Some(Identity { route, ready }) = identity.filter(|i| is_route(&i.route)) else {
                continue;
            };
            if route == self.own_route {
                continue;
            }
            if let Some(first) = found.get(&route) {
                let first: &Peer = first;
                tracing::warn!(
                    route,
                    first = %first.addr,
                    other = %addr,
                    "two peers serve the same route; forwarding to the first"
                );
                continue;
            }
            found.insert(route, Peer { addr, ready });
        }
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        let addrs = |m: &HashMap<String, Peer>| {
            let mut a: Vec<(String, SocketAddr)> =
                m.iter().map(|(r, p)| (r.clone(), p.addr)).collect();
            a.sort_unstable();
            a
        };
        if addrs(&routes) != addrs(&found) {
            tracing::info!(peers = ?addrs(&found), "peers changed");
        }
        *routes = found;
    }

    /// Every address the configuration names now, without duplicates.
    async fn addresses(&self) -> Vec<SocketAddr> {
        let mut entries = self.entries.clone();
        if let Some(file) = &self.file {
            match tokio::fs::read_to_string(file).await {
                Ok(text) => entries.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_owned),
                ),
                // Written by a supervisor once the replicas are up.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(file = %file.display(), "peers file: {e}"),
            }
        }
        let lookups = entries.iter().map(|entry| async move {
            match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(entry.as_str()))
                .await
            {
                Ok(Ok(addrs)) => addrs.collect(),
                Ok(Err(e)) => {
                    tracing::warn!(peer = entry, "peer address: {e}");
                    Vec::new()
                }
                Err(_) => {
                    tracing::warn!(
                        peer = entry,
                        "peer address: no answer within {RESOLVE_TIMEOUT:?}"
                    );
                    Vec::new()
                }
            }
        });
        let mut all: Vec<SocketAddr> = futures::future::join_all(lookups)
            .await
            .into_iter()
            .flatten()
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Peer>> {
        self.routes.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether `s` could be a route this project mints.
fn is_route(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ROUTE
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(route: &str) -> Option<Identity> {
        Some(Identity {
            route: route.to_owned(),
            ready: true,
        })
    }

    fn peers(entries: &[&str], file: Option<PathBuf>) -> Peers {
        let mut config = Config::local();
        config.peers = entries.iter().map(|e| (*e).to_owned()).collect();
        config.peers_file = file;
        Peers::from_config(&config, "me").expect("peers are configured")
    }

    #[test]
    fn no_peers_means_no_forwarding() {
        assert!(Peers::from_config(&Config::local(), "me").is_none());
    }

    #[tokio::test]
    async fn routes_come_from_what_each_configured_address_answers() {
        let dir = std::env::temp_dir().join(format!("tether-peers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("peers");
        std::fs::write(
            &file,
            "# the supervisor's list\n127.0.0.1:7002\n\n127.0.0.1:7003\n",
        )
        .unwrap();
        let p = peers(&["127.0.0.1:7001", "localhost:7001"], Some(file));
        p.refresh(|addr| async move {
            match addr.port() {
                7001 => ready("me"),
                7002 => ready("r2"),
                7003 => ready("ip-169-254-169-254/../x"),
                _ => None,
            }
        })
        .await;
        assert_eq!(p.owner("r2"), Some("127.0.0.1:7002".parse().unwrap()));
        assert_eq!(p.owner("me"), None, "a replica never forwards to itself");
        assert_eq!(p.known(), 1, "a peer claiming a malformed route is ignored");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_peer_that_stops_answering_is_forgotten_at_the_next_refresh() {
        let p = peers(&["127.0.0.1:7002"], None);
        p.refresh(|_| async { ready("r2") }).await;
        assert_eq!(p.known(), 1);
        p.refresh(|_| async { None }).await;
        assert_eq!(p.owner("r2"), None);
    }

    #[tokio::test]
    async fn refreshes_on_unknown_routes_are_rate_limited() {
        let p = peers(&["127.0.0.1:7002"], None);
        let probes = std::sync::atomic::AtomicUsize::new(0);
        let probe = |_| {
            probes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async { ready("r2") }
        };
        for _ in 0..10 {
            p.refresh_unless_recent(Duration::from_secs(60), probe)
                .await;
        }
        assert_eq!(probes.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn forgetting_an_owner_does_not_forget_its_successor() {
        let p = peers(&["127.0.0.1:7002"], None);
        p.refresh(|_| async { ready("r2") }).await;
        p.forget("r2", "127.0.0.1:9999".parse().unwrap());
        assert!(p.owner("r2").is_some());
        p.forget("r2", "127.0.0.1:7002".parse().unwrap());
        assert!(p.owner("r2").is_none());
    }
}

#[cfg(test)]
mod ready_tests {
    use super::*;

    #[tokio::test]
    async fn only_ready_peers_take_requests_that_need_no_owner_in_turn() {
        let mut config = Config::local();
        config.peers = vec![
            "127.0.0.1:7001".into(),
            "127.0.0.1:7002".into(),
            "127.0.0.1:7003".into(),
        ];
        let p = Peers::from_config(&config, "me").expect("peers");
        p.refresh(|addr| async move {
            Some(Identity {
                route: format!("r{}", addr.port() - 7000),
                ready: addr.port() != 7003,
            })
        })
        .await;
        let first = p.ready();
        let second = p.ready();
        assert_eq!(first.len(), 2, "the draining peer is left out: {first:?}");
        assert_ne!(first[0], second[0], "the first choice turns");
        assert!(
            p.owner("r3").is_some(),
            "a draining peer still owns its sessions"
        );
    }
}

#[cfg(test)]
mod kept_tests {
    use super::*;

    #[tokio::test]
    async fn a_peer_that_left_the_configuration_is_kept_while_it_answers() {
        let dir = std::env::temp_dir().join(format!("tether-peers-kept-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("peers");
        std::fs::write(&file, "127.0.0.1:7002\n").unwrap();
        let mut config = Config::local();
        config.peers_file = Some(file.clone());
        let p = Peers::from_config(&config, "me").expect("peers");
        let alive = std::sync::atomic::AtomicBool::new(true);
        let probe = |_| {
            let up = alive.load(std::sync::atomic::Ordering::Relaxed);
            async move {
                up.then(|| Identity {
                    route: "r2".to_owned(),
                    ready: false,
                })
            }
        };
        p.refresh(probe).await;
        // Its record is gone (a stopping task), but it still serves.
        std::fs::write(&file, "").unwrap();
        p.refresh(probe).await;
        assert!(p.owner("r2").is_some(), "forgotten while it still answers");
        alive.store(false, std::sync::atomic::Ordering::Relaxed);
        p.refresh(probe).await;
        assert!(p.owner("r2").is_none(), "kept after it stopped answering");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
