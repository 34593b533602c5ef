//! The cluster's `redis-server`: answers once started, not while paused,
//! again when resumed; a kill and a restart bring it back on the same
//! port, empty; dropping it ends the process (a paused one too).

use std::time::Duration;
use tether_cluster::redis::RedisServer;

/// The pid of the process listening on loopback `port`, from /proc.
fn listener_pid(port: u16) -> Option<i32> {
    let hex = format!(":{port:04X}");
    let tcp = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inode = tcp.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() >= 10 && f[1].ends_with(&hex) && f[3] == "0A").then(|| f[9].to_owned())
    })?;
    let socket = format!("socket:[{inode}]");
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let e = e.ok()?;
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        std::fs::read_dir(e.path().join("fd"))
            .ok()?
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .any(|l| l.to_string_lossy() == socket)
            .then_some(pid)
    })
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim().to_owned()))
        .is_some_and(|r| !r.starts_with('Z') && !r.starts_with('X'))
}

async fn gone(pid: i32) -> bool {
    for _ in 0..100 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn paused_killed_restarted_and_dropped() {
    let dir = tempdir();
    let mut redis = RedisServer::start(&dir).await.expect("redis-server starts");
    assert!(redis.answers().await);
    assert!(redis.url().ends_with(&format!(":{}", redis.port())));
    let pid = listener_pid(redis.port()).expect("redis-server listens");

    redis.pause();
    assert!(!redis.answers().await, "a paused server answers nothing");
    redis.resume();
    assert!(redis.answers().await);

    let port = redis.port();
    redis.kill().await;
    assert!(!redis.is_running());
    assert!(gone(pid).await, "killed");
    assert!(!redis.answers().await);
    redis.restart().await.expect("starts again");
    assert_eq!(redis.port(), port, "on the same port");
    assert!(redis.answers().await);

    let pid = listener_pid(port).expect("redis-server listens again");
    redis.pause();
    drop(redis);
    assert!(gone(pid).await, "dropping a paused server ends it");
    let _ = std::fs::remove_dir_all(dir);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tether-redis-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}
